"""Activation functions from the command line.

``python scripts/activations.py`` draws relu, sigmoid, tanh and gelu and their derivatives (autograd on the torch
functions zoo's nets use), the regions where the sigmoid saturates, and σ(x) against σ(10x) (large weights push the
sigmoid into saturation) to ``activations.png``, and prints the derivatives at a few points and the saturation
bounds. ``--out FILE`` chooses where the figure goes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from zoo.errors import ZooError, report_user_errors
from zoo.plots.activations import (
    ACTIVATIONS,
    LARGE_WEIGHT,
    SATURATION,
    curve,
    curves,
    grid,
    plot_activations,
    saturated_regions,
    saturated_share,
)

POINTS = (-4.0, -1.0, 0.0, 1.0, 4.0)  # where the table reads each derivative


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: where to write the figure."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("activations.png"), help="where to write the figure")
    return parser.parse_args(argv)


def bounds(regions: list[tuple[float, float]], low: float, high: float) -> str:
    """Saturated regions as inequalities: a region reaching the drawn range's edge goes on beyond it."""
    parts = []
    for start, end in regions:
        if start <= low and end >= high:
            parts.append("everywhere")
        elif start <= low:
            parts.append(f"x <= {end:.2f}")
        elif end >= high:
            parts.append(f"x >= {start:.2f}")
        else:
            parts.append(f"{start:.2f} <= x <= {end:.2f}")
    return " and ".join(parts) or "nowhere"


def run(args: argparse.Namespace) -> None:
    """Draw the figure, then print the derivatives and saturation bounds."""
    x = grid()
    try:
        path = plot_activations(args.out, x)
    except OSError as err:
        where = next((p for p in args.out.parents if p.exists()), None)
        reason = f"{where} is a file, not a folder" if where is not None and not where.is_dir() else err.strerror
        raise ZooError(
            f"--out {args.out}: cannot write the figure ({reason}); give a file in a folder you can write"
        ) from None
    low, high = float(x[0]), float(x[-1])
    at = curves(torch.tensor(POINTS, dtype=torch.float64))
    print("activation".ljust(12) + "".join(f"f'({p:g})".rjust(10) for p in POINTS))
    for name in ACTIVATIONS:
        print(f"{name:<12}" + "".join(f"{d:>10.4f}" for d in at[name].derivative))
    sigmoid, heavy = curves(x)["sigmoid"], curve(ACTIVATIONS["sigmoid"], x, LARGE_WEIGHT)
    peak = float(sigmoid.derivative.max())
    print(
        f"sigmoid saturates (sigmoid'(x) < {SATURATION:g} x {peak:g} = {SATURATION * peak:g}): "
        f"{bounds(saturated_regions(sigmoid), low, high)}"
    )
    print(
        f"large weights: sigmoid({LARGE_WEIGHT:g}x) saturates for {bounds(saturated_regions(heavy), low, high)}, "
        f"{saturated_share(heavy):.0%} of x in [{low:g}, {high:g}] against {saturated_share(sigmoid):.0%} for "
        "sigmoid(x)"
    )
    print(f"figure: {path}")


if __name__ == "__main__":
    report_user_errors(run, parse_args())
