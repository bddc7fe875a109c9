"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998), as published and in its modern form.

Published: 32x32 input, C1 (6 maps, 5x5) - S2 (2x2 subsampling) - C3 (16 maps, 5x5, each connected to a subset
of S2's maps by the paper's Table I) - S4 - C5 (120 maps, 5x5) - F6 (84 units) - output, tanh throughout and
average pooling. Two simplifications, as in every re-implementation: S2/S4's trainable coefficient and bias are
left to the next layer's weights, and the output is a linear layer with softmax instead of Euclidean RBF units.
Modern: ReLU, max pooling, C3 fully connected.

The net wants 32x32 (its ``pixel_input``); zoo's first layer pads 28x28 MNIST with black borders as the paper did and
resizes other sizes (the 8x8 digits), see ``zoo.nets.adapt``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ZooError
from zoo.nets.fast_ops import AvgPool2d, Conv2d, Tanh
from zoo.protocols import PixelInput

if TYPE_CHECKING:
    from zoo.spec import DataSpec

VARIANTS = ("classic", "modern")


def c3_connections() -> torch.Tensor:
    """Table I of the paper: which of S2's 6 maps feed each of C3's 16 maps (60 connections, 1,516 parameters)."""
    table = torch.zeros(16, 6)
    for i in range(6):
        table[i, [(i + k) % 6 for k in range(3)]] = 1  # contiguous triples
        table[6 + i, [(i + k) % 6 for k in range(4)]] = 1  # contiguous quadruples
    for j, maps in enumerate(([0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5])):  # discontinuous quadruples
        table[12 + j, maps] = 1
    table[15] = 1  # all six
    return table


class SparseConv2d(nn.Conv2d):
    """A convolution whose output maps see only the input maps a 0/1 ``connections[out, in]`` table allows."""

    def __init__(self, connections: torch.Tensor, kernel_size: int) -> None:
        out_channels, in_channels = connections.shape
        super().__init__(in_channels, out_channels, kernel_size)
        self.register_buffer("mask", connections[:, :, None, None].clone())
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias)


class LeNet5(nn.Module):
    """LeNet-5 for ``input_shape[0]`` channels and ``out_features`` classes; ``variant`` = classic or modern."""

    @classmethod
    def from_spec(cls, spec: DataSpec, out_features: int, **settings: Any) -> LeNet5:
        return cls(list(spec.input_shape), out_features, **settings)

    def __init__(self, input_shape: list[int], out_features: int, variant: str = "classic", fit: str = "auto") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ZooError(f"model.variant={variant!r} is not valid; choose one of {', '.join(VARIANTS)}")
        self.pixel_input = PixelInput(size=(32, 32), fit=fit)  # 28x28 MNIST padded, as the paper did
        classic = variant == "classic"
        act = Tanh if classic else nn.ReLU
        pool = AvgPool2d if classic else nn.MaxPool2d
        c3 = SparseConv2d(c3_connections(), 5) if classic else nn.Conv2d(6, 16, 5)
        self.features = nn.Sequential(
            OrderedDict(
                c1=nn.Conv2d(input_shape[0], 6, 5),  # 32 -> 28
                act1=act(),
                s2=pool(2),  # 28 -> 14
                c3=c3,  # 14 -> 10
                act3=act(),
                s4=pool(2),  # 10 -> 5
                c5=Conv2d(16, 120, 5),  # 5 -> 1: a dense layer, computed as one (fast_ops)
                act5=act(),
            )
        )
        self.num_features = 120
        self.head = nn.Sequential(
            OrderedDict(flatten=nn.Flatten(), f6=nn.Linear(120, 84), act6=act(), output=nn.Linear(84, out_features))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
