"""Convolution arithmetic against torch itself: every size torch gives, and an error wherever torch refuses."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterable

import pytest
import torch
from torch import nn

from tests.conftest import ROOT
from zoo.errors import ZooError
from zoo.nets.conv_arith import (
    SLIDE_CASES,
    conv_output_size,
    conv_transpose_output_size,
    plot_conv_cases,
    pool_output_size,
)

SIZES, KERNELS, STRIDES, PADDINGS, DILATIONS = range(1, 13), range(1, 6), range(1, 4), range(3), range(1, 3)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Run torch on one thread: on layers this small a second one only waits, seconds in all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def torch_size(make_layer: Callable[[], nn.Module], size: int) -> int | None:
    """Output size of the layer on a 1x1xSIZExSIZE input, or None where torch refuses it (or returns nothing)."""
    try:
        with torch.inference_mode():
            out = make_layer()(torch.zeros(1, 1, size, size))
    except (RuntimeError, ValueError):
        return None
    assert out.shape[-2] == out.shape[-1]
    # An output size of 0 is refused by torch's native conv_transpose2d but comes back empty from its oneDNN path
    return out.shape[-1] or None


def our_size(fn: Callable[..., int], *args, **kwargs) -> int | None:
    """Output size from zoo, or None where it raises ZooError."""
    try:
        return fn(*args, **kwargs)
    except ZooError:
        return None


def disagreements(grid: Iterable[tuple], ours: Callable[..., int | None], theirs: Callable[..., int | None]):
    """Grid points where zoo and torch differ, plus how many points torch refused (so both ways get checked)."""
    bad, refused = [], 0
    for point in grid:
        expected = theirs(*point)
        refused += expected is None
        if (got := ours(*point)) != expected:
            bad.append((point, got, expected))
    return bad[:10], refused


def test_conv_output_size_matches_conv2d_and_refuses_what_it_refuses():
    grid = itertools.product(SIZES, KERNELS, STRIDES, PADDINGS, DILATIONS)
    bad, refused = disagreements(
        grid,
        lambda i, k, s, p, d: our_size(conv_output_size, i, k, s, p, d),
        lambda i, k, s, p, d: torch_size(lambda: nn.Conv2d(1, 1, k, s, p, d, bias=False), i),
    )
    assert bad == []
    assert refused > 0


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_output_size_matches_maxpool2d(ceil_mode):
    grid = itertools.product(SIZES, KERNELS, [None, *STRIDES], PADDINGS, DILATIONS)
    bad, refused = disagreements(
        grid,
        lambda i, k, s, p, d: our_size(pool_output_size, i, k, s, p, d, ceil_mode),
        lambda i, k, s, p, d: torch_size(lambda: nn.MaxPool2d(k, s, p, d, ceil_mode=ceil_mode), i),
    )
    assert bad == []
    assert refused > 0


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_output_size_matches_avgpool2d(ceil_mode):
    grid = itertools.product(SIZES, KERNELS, [None, *STRIDES], PADDINGS)
    bad, refused = disagreements(
        grid,
        lambda i, k, s, p: our_size(pool_output_size, i, k, s, p, ceil_mode=ceil_mode),
        lambda i, k, s, p: torch_size(lambda: nn.AvgPool2d(k, s, p, ceil_mode=ceil_mode), i),
    )
    assert bad == []
    assert refused > 0


def test_conv_transpose_output_size_matches_convtranspose2d():
    grid = itertools.product(range(1, 7), KERNELS, STRIDES, PADDINGS, range(3), DILATIONS)
    bad, refused = disagreements(
        grid,
        lambda i, k, s, p, op, d: our_size(conv_transpose_output_size, i, k, s, p, op, d),
        lambda i, k, s, p, op, d: torch_size(lambda: nn.ConvTranspose2d(1, 1, k, s, p, op, dilation=d, bias=False), i),
    )
    assert bad == []
    assert refused > 0


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_padding_same_and_valid_match_torch():
    for i, k, d in itertools.product(SIZES, KERNELS, range(1, 4)):
        assert conv_output_size(i, k, padding="same", dilation=d) == i
        assert torch_size(lambda: nn.Conv2d(1, 1, k, padding="same", dilation=d), i) == i  # noqa: B023
        valid = torch_size(lambda: nn.Conv2d(1, 1, k, padding="valid", dilation=d), i)  # noqa: B023
        assert our_size(conv_output_size, i, k, padding="valid", dilation=d) == valid
    assert torch_size(lambda: nn.Conv2d(1, 1, 3, stride=2, padding="same"), 8) is None
    with pytest.raises(ZooError, match="padding 'same' needs stride 1"):
        conv_output_size(8, 3, stride=2, padding="same")


def test_slide_cases_give_the_slide_outputs_and_match_torch():
    expected = {
        "No padding, no strides": 2,
        "Arbitrary padding, no strides": 6,
        "Half padding, no strides": 5,
        "Full padding, no strides": 7,
        "No padding, strides": 2,
        "Padding, strides": 3,
        "Padding, strides (odd)": 3,
    }
    assert {case.title: case.output for case in SLIDE_CASES} == expected
    for case in SLIDE_CASES:
        conv = nn.Conv2d(1, 1, case.kernel, case.stride, case.padding)
        assert torch_size(lambda: conv, case.size) == case.output  # noqa: B023


def test_errors_name_the_problem_and_the_fix():
    with pytest.raises(ZooError) as err:
        conv_output_size(3, 5)
    assert str(err.value) == (
        "a 5x5 kernel does not fit a 3-pixel input with padding 0 (output size would be -1); "
        "use padding >= 1, a smaller kernel, or fewer pooling layers before it"
    )
    for call, message in [
        (lambda: conv_output_size(0, 3), "size 0 is invalid; use size >= 1"),
        (lambda: conv_output_size(5, 3, padding=-1), "padding -1 is invalid; use padding >= 0"),
        (lambda: conv_output_size(5, 3, padding="full"), "padding 'full' is unknown"),
        (lambda: pool_output_size(5, 2, stride=0), "stride 0 is invalid; use stride >= 1"),
        (lambda: pool_output_size(5, 3, padding=2), "padding 2 is more than half the 3x3 pooling window"),
        (lambda: conv_transpose_output_size(3, 3, stride=2, output_padding=2), "use output_padding <= 1"),
        (lambda: conv_transpose_output_size(1, 3, padding=2), "use padding <= 1"),
    ]:
        with pytest.raises(ZooError, match=message):
            call()


def test_pool_stride_defaults_to_the_kernel():
    assert pool_output_size(28, 2) == 14
    assert pool_output_size(7, 2) == 3
    assert pool_output_size(7, 2, ceil_mode=True) == 4


def test_plot_conv_cases_writes_a_png(tmp_path):
    path = plot_conv_cases(tmp_path / "figures" / "cases.png")
    data = path.read_bytes()
    assert path.parent == tmp_path / "figures"
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": ""}
    command = [sys.executable, str(ROOT / "scripts" / "conv_arithmetic.py"), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_script_prints_one_layer_output_size():
    proc = script("--size", "28", "--kernel", "5")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "output size: 24\n"


def test_script_bad_layer_exits_2_with_one_error_line():
    proc = script("--size", "3", "--kernel", "5")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: a 5x5 kernel does not fit a 3-pixel input")
    assert len(proc.stderr.splitlines()) == 1


def test_module_imports_neither_torch_nor_matplotlib():
    code = "import sys, zoo.nets.conv_arith; assert not {'torch', 'matplotlib'} & set(sys.modules), 'heavy import'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
