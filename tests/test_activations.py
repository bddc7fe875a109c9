"""The activations figure: derivatives by autograd on torch's own functions equal the closed forms, the sigmoid's
saturation bounds are where σ' falls under 1% of its peak, and the script writes its figure or says in one line why
it cannot."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import torch

from tests.conftest import ROOT
from zoo.plots.activations import LARGE_WEIGHT, SATURATION, curve, curves, grid, saturated_regions, saturated_share


def script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": ""}
    command = [sys.executable, str(ROOT / "scripts" / "activations.py"), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_autograd_derivatives_equal_the_closed_forms():
    x = grid()
    found = curves(x)
    sigma, tanh = torch.sigmoid(x).numpy(), torch.tanh(x).numpy()
    np.testing.assert_allclose(found["sigmoid"].derivative, sigma * (1 - sigma), atol=1e-6)
    np.testing.assert_allclose(found["tanh"].derivative, 1 - tanh**2, atol=1e-6)
    np.testing.assert_array_equal(found["relu"].derivative, (x > 0).double().numpy())  # a step, 0 at x = 0
    erf = np.vectorize(math.erf)(x.numpy() / math.sqrt(2))  # gelu(x) = x Φ(x): gelu' = Φ(x) + x φ(x)
    phi = np.exp(-(x.numpy() ** 2) / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(found["gelu"].derivative, (1 + erf) / 2 + x.numpy() * phi, atol=1e-6)


def test_saturation_bounds_are_where_the_sigmoid_derivative_falls_under_one_percent_of_its_peak():
    x = grid()
    regions = saturated_regions(curves(x)["sigmoid"])
    # σ(1 - σ) = 0.01 x 0.25 at σ = (1 ± sqrt(1 - 0.01)) / 2, i.e. x = ± logit((1 + sqrt(0.99)) / 2) = ±5.99
    bound = math.log((1 + math.sqrt(1 - SATURATION)) / (1 - math.sqrt(1 - SATURATION)))
    step = float(x[1] - x[0])
    assert len(regions) == 2
    (start, left), (right, end) = regions
    assert (start, end) == (float(x[0]), float(x[-1]))  # saturated on to the edges of the drawn range
    assert abs(left + bound) <= step and abs(right - bound) <= step
    heavy = curve(torch.sigmoid, x, LARGE_WEIGHT)  # the same sigmoid read at 10x: saturated 10 times sooner
    assert abs(saturated_regions(heavy)[1][0] - bound / LARGE_WEIGHT) <= step
    assert saturated_share(heavy) > 0.9 > 0.3 > saturated_share(curves(x)["sigmoid"])


def test_script_writes_the_figure_and_prints_the_table_and_the_bounds(tmp_path):
    out = tmp_path / "figures" / "activations.png"
    proc = script("--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes().startswith(b"\x89PNG")
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["activation", "f'(-4)", "f'(-1)", "f'(0)", "f'(1)", "f'(4)"]
    assert lines[2].split() == ["sigmoid", "0.0177", "0.1966", "0.2500", "0.1966", "0.0177"]
    assert "sigmoid saturates (sigmoid'(x) < 0.01 x 0.25 = 0.0025): x <= -5.99 and x >= 5.99" in lines
    assert any(line.startswith("large weights: sigmoid(10x) saturates for x <= -0.60 and x >= 0.60") for line in lines)
    assert lines[-1] == f"figure: {out}"


def test_script_out_in_a_folder_that_cannot_be_made_exits_2_with_one_line(tmp_path):
    (tmp_path / "a_file").write_text("")
    proc = script("--out", str(tmp_path / "a_file" / "activations.png"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"error: --out {tmp_path / 'a_file' / 'activations.png'}: cannot write the figure ({tmp_path / 'a_file'} is "
        "a file, not a folder); give a file in a folder you can write"
    ]
