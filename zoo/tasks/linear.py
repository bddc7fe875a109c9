"""What the first lessons compute by hand and draw, for a net of one dense layer (``zoo.nets.linear.Linear``):
the derivatives of the loss written out (``model.gradients=manual``), and the path gradient descent takes over the
loss surface L(w, b), with the line it fits, in the data's own units.

Everything here reads the units the net learns in: standardised inputs and, for regression, the standardised target
(``zoo.data.tabular``); :func:`in_data_units` turns w and b back into the data's own.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from zoo.errors import ZooError

BY_HAND = ("mse", "bce", "cross_entropy")  # the losses whose derivative the slides write out
MAX_PATH_STEPS = 50_000  # steps recorded for the loss-surface figure; a longer run draws its first ones
GRID = 81  # points per axis of the loss surface


def output_gradient(loss: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """∂L/∂ŷ for each output of a batch, as the slides derive it (``target``: what the loss compares ``out`` with,
    the standardised target for ``mse``, 0/1 for ``bce``, class indices for ``cross_entropy``).

    MSE over N samples and K outputs, L = 1/(NK) Σ (ŷ - y)²:
        ∂L/∂ŷ = 2 (ŷ - y) / (NK)
    Binary cross-entropy on the logit z, ŷ = σ(z), L = -1/N Σ [y log ŷ + (1 - y) log(1 - ŷ)]; with σ'(z) = ŷ(1 - ŷ)
    the chain rule leaves
        ∂L/∂z = (σ(z) - y) / N
    Softmax cross-entropy, p = softmax(z), L = -1/N Σ log p_y:
        ∂L/∂z = (p - onehot(y)) / N
    """
    if loss == "mse":
        return 2 * (out - target) / out.numel()
    if loss == "bce":
        return (torch.sigmoid(out) - target.float().view_as(out)) / out.numel()
    if loss == "cross_entropy":
        return (F.softmax(out, dim=1) - F.one_hot(target, out.shape[1]).to(out.dtype)) / len(out)
    raise ZooError(
        f"model.gradients=manual derives {', '.join(BY_HAND)}; model.loss={loss} needs model.gradients=autograd"
    )


def dense_gradients(
    inputs: torch.Tensor, grad_out: torch.Tensor, weight: torch.Tensor, l1: float = 0.0, l2: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """∂L/∂W and ∂L/∂b of ŷ = x Wᵀ + b from ∂L/∂ŷ (the computation graph's last edge, then the dense layer):
        ∂L/∂W = Σ_n ∂L/∂ŷ_n x_nᵀ        ∂L/∂b = Σ_n ∂L/∂ŷ_n
    plus the penalties' own derivatives on W (never on b): l1 · sign(W) for L1, 2 · l2 · W for L2."""
    grad_weight = grad_out.T @ inputs
    if l1:
        grad_weight = grad_weight + l1 * torch.sign(weight)
    if l2:
        grad_weight = grad_weight + 2 * l2 * weight
    return grad_weight, grad_out.sum(0)


def dense_layer(net: nn.Module) -> nn.Linear | None:
    """The net's only layer with weights, when it is a single ``nn.Linear`` (a linear or logistic regression)."""
    with_weights = [m for m in net.modules() if any(True for _ in m.parameters(recurse=False))]
    return with_weights[0] if len(with_weights) == 1 and isinstance(with_weights[0], nn.Linear) else None


class GradientDescentPath:
    """w and b before every optimiser step of a one-output dense layer on one or two inputs, kept on the device
    (no host sync per step), and once more after the last step."""

    def __init__(self, layer: nn.Linear) -> None:
        self.layer = layer
        self.points: list[torch.Tensor] = []
        self.epochs: list[int] = []

    @staticmethod
    def fits(layer: nn.Linear | None) -> bool:
        return layer is not None and layer.out_features == 1 and layer.in_features <= 2 and layer.bias is not None

    def record(self, epoch: int) -> None:
        if len(self.points) < MAX_PATH_STEPS:
            self.points.append(torch.cat([self.layer.weight.detach()[0], self.layer.bias.detach()]).clone())
            self.epochs.append(epoch)

    def table(self) -> tuple[list[str], list[list[float]]]:
        """Columns ``step, epoch, w, b`` (``w1, w2, b`` for two inputs) and one row per recorded point."""
        values = torch.stack(self.points).double().cpu().tolist() if self.points else []
        names = ["w"] if self.layer.in_features == 1 else ["w1", "w2"]
        rows = [[i, e, *v] for i, (e, v) in enumerate(zip(self.epochs, values, strict=True))]
        return ["step", "epoch", *names, "b"], rows


def least_squares(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The closed-form minimum of the MSE, ``[w..., b]``: the normal equations solved by least squares."""
    design = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    return torch.linalg.lstsq(design, y.double().reshape(len(y), 1)).solution[:, 0]


def loss_surface(x: torch.Tensor, y: torch.Tensor, path: list[list[float]], loss: nn.Module) -> dict[str, Any]:
    """The training loss over a grid of two parameters around the path and the minimum: (w, b) for one input, (w1, w2)
    with b at its least-squares value for two. ``x`` standardised ``[N, F]``, ``y`` as the loss reads it ``[N, 1]``;
    ``path`` rows of ``[w..., b]``. Returns the grid axes ``x``/``y``, ``loss`` ``[len(y), len(x)]``, the ``minimum``
    on those axes (closed form for MSE, else the grid's lowest point), the ``labels``, the ``path`` on the axes and the
    least-squares ``solution`` ``[w..., b]``."""
    x, y = x.double(), y.double().reshape(len(y), 1)
    best = least_squares(x, y)
    features = x.shape[1]
    labels = ["w", "b"] if features == 1 else ["w1", "w2"]
    points = torch.tensor(path, dtype=torch.float64).reshape(-1, features + 1) if path else best[None]
    axes = []
    for i in (0, 1):  # (w, b) or (w1, w2): the first two of [w..., b]
        values = torch.cat([points[:, i], best[i : i + 1]])
        low, high = float(values.min()), float(values.max())
        margin = max(high - low, 0.5) * 0.25
        axes.append(torch.linspace(low - margin, high + margin, GRID, dtype=torch.float64))
    grid_a, grid_b = torch.meshgrid(axes[1], axes[0], indexing="ij")  # rows: second axis, columns: first
    if features == 1:
        out = x @ grid_b.reshape(1, -1) + grid_a.reshape(1, -1)  # [N, G]: ŷ = w x + b at every grid point
    else:
        out = x @ torch.stack([grid_b.reshape(-1), grid_a.reshape(-1)]) + best[2]
    each = type(loss)(reduction="none")(out, y.expand_as(out))
    surface = each.mean(0).reshape(GRID, GRID)
    if isinstance(loss, nn.MSELoss):
        minimum = [float(best[0]), float(best[1])]
    else:
        row, col = divmod(int(surface.argmin()), GRID)
        minimum = [float(axes[0][col]), float(axes[1][row])]
    return {
        "x": axes[0].numpy(),
        "y": axes[1].numpy(),
        "loss": surface.numpy(),
        "minimum": minimum,
        "labels": labels,
        "path": points[:, :2].numpy(),
        "closed_form": isinstance(loss, nn.MSELoss),
        "solution": best.tolist(),
    }


def in_data_units(
    params: list[float], x_mean: list[float], x_std: list[float], y_mean: float, y_std: float
) -> tuple[list[float], float]:
    """``[w..., b]`` learnt on standardised x and y as the data's own: ŷ = Σ w_i x_i + b with
    w_i = w'_i σ_y / σ_i and b = σ_y b' + μ_y - Σ w_i μ_i."""
    weights = [w * y_std / s for w, s in zip(params[:-1], x_std, strict=True)]
    bias = y_std * params[-1] + y_mean - sum(w * m for w, m in zip(weights, x_mean, strict=True))
    return weights, bias


def equation(target: str, features: list[str], weights: list[float], bias: float) -> str:
    """``price_k = 2.98 × area_m2 + 21.3``."""
    terms = " + ".join(f"{w:.4g} × {name}" for w, name in zip(weights, features, strict=True))
    sign = "-" if bias < 0 else "+"
    return f"{target} = {terms} {sign} {abs(bias):.4g}"


def path_losses(x: torch.Tensor, y: torch.Tensor, path: list[list[float]], loss: nn.Module) -> list[float]:
    """The training loss at each point ``[w..., b]`` of the path, in chunks of points (no ``[N, steps]`` matrix)."""
    x, y = x.double(), y.double().reshape(len(y), 1)
    points = torch.tensor(path, dtype=torch.float64)
    each = type(loss)(reduction="none")
    chunk = max(1, 4_000_000 // max(len(x), 1))
    losses = []
    for part in points.split(chunk):
        out = x @ part[:, :-1].T + part[:, -1]  # [N, chunk]
        losses += each(out, y.expand_as(out)).mean(0).tolist()
    return losses


def distance_to_minimum(point: list[float], minimum: list[float]) -> float:
    """How far ``point`` ([w..., b]) is from the minimum on the surface's two axes, relative to the minimum's size
    (0.01: within 1%)."""
    gap = math.dist(point[: len(minimum)], minimum)
    return gap / max(math.hypot(*minimum), 1e-12)
