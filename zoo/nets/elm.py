"""Extreme Learning Machine (Redes Neurais e Deep Learning; Huang 2006): a random, fixed hidden layer and output weights
solved in closed form by ridge least squares, ``W2 = (HᵀH + ridge·I)⁻¹ HᵀT`` (the Moore–Penrose pseudo-inverse when
ridge is 0).

No backpropagation: the task feeds every training batch to :meth:`ELM.accumulate` (HᵀH and HᵀT are summed, so the
training set never has to fit in memory at once) and :meth:`ELM.solve` runs once, after the pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ZooError
from zoo.nets.width_rules import widths_for

if TYPE_CHECKING:
    from zoo.spec import DataSpec

ACTIVATIONS = ("sigmoid", "tanh", "relu", "rbf")
CHUNK_ROWS = 2048  # batches are summed in chunks of at least this many rows: one large product beats many thin ones


class ELM(nn.Module):
    """``out = [g(W1 x + b), 1] @ W2``; W1 and b are seeded random buffers, W2 the least-squares solution."""

    @classmethod
    def from_spec(cls, spec: DataSpec, out_features: int, hidden: Any = (500,), **settings: Any) -> ELM:
        """``hidden``: one width, or a width rule (``zoo.nets.width_rules``)."""
        return cls(spec.num_features, out_features, widths_for(spec, out_features, hidden), **settings)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: list[int] = (500,),
        activation: str = "sigmoid",
        ridge: float = 1e-3,
        seed: int = 0,
    ) -> None:
        super().__init__()
        hidden = list(hidden) if isinstance(hidden, list | tuple) else [hidden]
        if len(hidden) != 1 or isinstance(hidden[0], bool) or not isinstance(hidden[0], int) or hidden[0] < 1:
            raise ZooError(f"model.net.hidden={hidden} is not valid for an ELM; give one width >= 1, e.g. [500]")
        if activation not in ACTIVATIONS:
            raise ZooError(f"model.net.activation={activation!r} is not an ELM activation; use {'|'.join(ACTIVATIONS)}")
        if not ridge >= 0:
            raise ZooError(f"model.ridge={ridge} must be >= 0 (0 = Moore-Penrose pseudo-inverse)")
        units = hidden[0]
        gen = torch.Generator().manual_seed(seed)
        # Inputs are standardised: unit-variance pre-activations keep sigmoid/tanh out of saturation.
        self.register_buffer("weight", torch.randn(units, in_features, generator=gen) / in_features**0.5)
        self.register_buffer("bias", torch.randn(units, generator=gen))
        self.register_buffer("output", torch.zeros(units + 1, out_features))
        self.activation, self.ridge = activation, float(ridge)
        self._hth: torch.Tensor | None = None  # sums of the pass in progress (float64 for a stable solve)
        self._htt: torch.Tensor | None = None
        self._rows: list[tuple[torch.Tensor, torch.Tensor]] = []  # batches not yet summed (see accumulate)
        self._chunk = max(CHUNK_ROWS, units)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The random features ``[g(W1 x + b), 1]`` (the constant column is the output bias)."""
        x = x.flatten(1).to(self.weight.dtype)
        if self.activation == "rbf":  # centres = W1's rows, width set by the input dimension
            h = torch.exp(-torch.cdist(x, self.weight * x.shape[1] ** 0.5).pow(2) / x.shape[1])
        else:
            h = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[self.activation](
                x @ self.weight.T + self.bias
            )
        return F.pad(h, (0, 1), value=1.0)  # no batch size in the graph: ONNX and torch.export keep it dynamic

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._rows or self._hth is not None:  # a pass still pending (validation runs before the epoch-end hooks)
            self.solve()  # never in an exported graph: a loaded net has nothing pending
        return self.hidden(x) @ self.output

    @torch.no_grad()
    def accumulate(self, x: torch.Tensor, targets: torch.Tensor) -> None:
        """Add one batch's ``HᵀH`` and ``HᵀT`` (batches are kept until a chunk is full, then summed at once)."""
        self._rows.append((x.flatten(1), targets.reshape(len(x), -1)))
        if sum(len(r[0]) for r in self._rows) >= self._chunk:
            self._sum_rows()

    def _sum_rows(self) -> None:
        if not self._rows:
            return
        x, t = (torch.cat(parts) for parts in zip(*self._rows, strict=True))
        self._rows = []
        h = self.hidden(x).double()  # float64: HᵀH squares the condition number
        hth, htt = gram(h), h.T @ t.double()
        self._hth = hth if self._hth is None else self._hth + hth
        self._htt = htt if self._htt is None else self._htt + htt

    @torch.no_grad()
    def solve(self) -> None:
        """Solve for the output weights from the accumulated sums (summed over processes under DDP), if any."""
        self._sum_rows()
        if self._hth is None:
            return
        hth, htt = self._hth, self._htt
        self._hth = self._htt = None
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(hth)
            torch.distributed.all_reduce(htt)
        if self.ridge > 0:  # HᵀH + ridge·I is symmetric positive definite: Cholesky, half LU's work
            system = hth + self.ridge * torch.eye(len(hth), dtype=hth.dtype, device=hth.device)
            factor, info = torch.linalg.cholesky_ex(system)
            solution = torch.cholesky_solve(htt, factor) if int(info) == 0 else torch.linalg.solve(system, htt)
        else:  # pinv(HᵀH) HᵀT = H⁺T, the minimum-norm least-squares solution
            solution = torch.linalg.pinv(hth, hermitian=True) @ htt
        self.output.copy_(solution.to(self.output.dtype))


def gram(h: torch.Tensor, blocks: int = 4) -> torch.Tensor:
    """``HᵀH``, computed block row by block row of its upper triangle and mirrored: ``k(k+1)/2`` of the ``k²``
    blocks, 10/16 of a full product's work for ``k=4`` (torch has no BLAS ``syrk``). Stays in torch's own BLAS:
    handing the product to NumPy's would wake a second thread pool that then fights torch's for the cores."""
    n = h.shape[1]
    if n < 64 * blocks:  # small widths: one product is cheaper than the extra kernel launches
        return h.T @ h
    cuts = [round(i * n / blocks) for i in range(blocks + 1)]
    out = torch.empty(n, n, dtype=h.dtype, device=h.device)
    for start, stop in zip(cuts, cuts[1:], strict=False):
        row = h[:, start:stop].T @ h[:, start:]  # block row [start:stop, start:]
        out[start:stop, start:] = row
        out[start:, start:stop] = row.T
    return out
