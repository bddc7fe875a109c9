"""Activation functions and their derivatives, from the torch functions zoo's nets call (``torch.nn.functional``),
differentiated by autograd: the curves are what backpropagation multiplies by, not formulas copied beside them.

Three panels: relu, sigmoid, tanh and gelu; their derivatives, with the regions where the sigmoid saturates (its
derivative under 1% of its peak: a neuron there barely learns) shaded; and the slides' "large weights" example,
σ(x) against σ(10x): the same inputs times larger weights land in the saturated regions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zoo.plots import _pyplot, tight

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "gelu": F.gelu,
}
SATURATION = 0.01  # saturated where the derivative is below this share of its peak
LARGE_WEIGHT = 10.0  # the slides' σ(10x₁ + 10x₂)
X_RANGE = (-8.0, 8.0)
POINTS = 3201  # 0.005 apart over X_RANGE


@dataclass(frozen=True)
class Curve:
    """An activation's values and derivative at ``x`` (float64 NumPy arrays)."""

    x: np.ndarray
    value: np.ndarray
    derivative: np.ndarray


def grid(low: float = X_RANGE[0], high: float = X_RANGE[1], points: int = POINTS) -> torch.Tensor:
    """Evenly spaced float64 inputs: float64 so that autograd's derivatives match the closed forms to 1e-12."""
    return torch.linspace(low, high, points, dtype=torch.float64)


def curve(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, weight: float = 1.0) -> Curve:
    """``fn(weight * x)`` and its derivative with respect to the pre-activation ``z = weight * x``, by autograd:
    ``fn'(z)`` is the factor backpropagation multiplies by at that neuron, so ``weight`` moves where it is read."""
    z = (weight * x.detach()).requires_grad_(True)
    value = fn(z)
    (derivative,) = torch.autograd.grad(value.sum(), z)  # elementwise: d sum / d z_i = fn'(z_i)
    return Curve(x.detach().numpy(), value.detach().numpy(), derivative.numpy())


def curves(x: torch.Tensor | None = None) -> dict[str, Curve]:
    """Every activation of :data:`ACTIVATIONS` on ``x`` (default :func:`grid`)."""
    x = grid() if x is None else x
    return {name: curve(fn, x) for name, fn in ACTIVATIONS.items()}


def saturated_regions(c: Curve, share: float = SATURATION) -> list[tuple[float, float]]:
    """The ``(first x, last x)`` of each run of points where the derivative is below ``share`` of its peak on the
    grid; a run that reaches the grid's edge ends there (the function stays saturated beyond it)."""
    low = np.abs(c.derivative) < share * np.abs(c.derivative).max()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], low.astype(np.int8), [0]])))
    return [(float(c.x[start]), float(c.x[end - 1])) for start, end in zip(edges[::2], edges[1::2], strict=True)]


def saturated_share(c: Curve, share: float = SATURATION, peak: float | None = None) -> float:
    """The share of the grid where the derivative is below ``share`` of ``peak`` (default: its own peak)."""
    peak = np.abs(c.derivative).max() if peak is None else peak
    return float(np.mean(np.abs(c.derivative) < share * peak))


def _shade(ax, regions: list[tuple[float, float]], color: str, label: str) -> None:
    for n, (start, end) in enumerate(regions):
        ax.axvspan(start, end, color=color, alpha=0.15, lw=0, label=label if n == 0 else None)


def plot_activations(path: str | Path, x: torch.Tensor | None = None, weight: float = LARGE_WEIGHT) -> Path:
    """The three panels (functions, derivatives with the sigmoid's saturated regions, σ(x) against σ(weight·x))
    as a PNG at ``path``; its folder is made if missing."""
    plt = _pyplot()
    x = grid() if x is None else x
    found = curves(x)
    sigmoid = found["sigmoid"]
    regions = saturated_regions(sigmoid)
    heavy = curve(F.sigmoid, x, weight)
    heavy_regions = saturated_regions(heavy)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for name, c in found.items():
        axes[0].plot(c.x, c.value, label=name)
        axes[1].plot(c.x, c.derivative, label=f"{name}'")
    axes[0].set_title("activations f(x)")
    axes[0].set_ylim(-1.5, 3)
    axes[1].set_title(f"derivatives f'(x), by autograd; shaded: sigmoid' < {SATURATION:g} x peak")
    _shade(axes[1], regions, "tab:orange", "sigmoid saturated")
    axes[1].set_ylim(-0.2, 1.2)
    axes[2].plot(x.numpy(), sigmoid.value, color="tab:orange", label="σ(x)")
    axes[2].plot(x.numpy(), heavy.value, color="tab:red", label=f"σ({weight:g}x)")
    axes[2].plot(x.numpy(), sigmoid.derivative, "--", color="tab:orange", label="σ'(x)")
    axes[2].plot(x.numpy(), heavy.derivative, "--", color="tab:red", label=f"σ'({weight:g}x)")
    _shade(axes[2], heavy_regions, "tab:red", f"σ({weight:g}x) saturated")
    axes[2].set_title(f"large weights: σ(x) vs σ({weight:g}x)")
    for ax in axes:
        ax.axhline(0, color="0.6", lw=0.8)
        ax.axvline(0, color="0.6", lw=0.8)
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    tight(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
