"""The course's convolutional net (exemplo 07): conv + max-pool blocks that shrink the image and deepen it, then
a dense classifier on the flattened features."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from torch import nn

from zoo.errors import ZooError
from zoo.nets.conv_arith import conv_output_size, pool_output_size
from zoo.nets.fast_ops import Dropout
from zoo.nets.mlp import ACTIVATIONS
from zoo.nets.width_rules import widths_for

if TYPE_CHECKING:
    from zoo.spec import DataSpec


class CNN(nn.Module):
    """``[conv -> (batch norm) -> activation] * convs_per_block -> max pool -> (dropout)`` per entry of ``channels``,
    then ``flatten -> [dense -> activation -> dropout] * len(hidden) -> output``.

    ``padding`` is ``same`` (keep the size, as Keras' ``padding="same"``) or ``valid`` (no padding, the slides' first
    case). ``global_pool`` averages each feature map instead of flattening (fewer weights, any input size).
    """

    channels_last_on_cpu = True  # NHWC trains 1.3-1.4x faster on the CPU (zoo.protocols.NHWCOnCPU)

    @classmethod
    def from_spec(cls, spec: DataSpec, out_features: int, hidden: Any = (128,), **settings: Any) -> CNN:
        """``hidden`` may name width rules, as the MLP's (``zoo.nets.width_rules``)."""
        return cls(list(spec.input_shape), out_features, hidden=widths_for(spec, out_features, hidden), **settings)

    def __init__(
        self,
        input_shape: list[int],
        out_features: int,
        channels: list[int] | tuple[int, ...] = (32, 64),
        kernel_size: int = 3,
        padding: str = "same",
        convs_per_block: int = 1,
        pool: int = 2,
        activation: str = "relu",
        batch_norm: bool = False,
        conv_dropout: float = 0.0,
        hidden: list[int] | tuple[int, ...] = (128,),
        dropout: float = 0.0,
        global_pool: bool = False,
    ) -> None:
        super().__init__()
        if not channels or any(not isinstance(c, int) or c < 1 for c in channels):
            raise ZooError(f"model.net.channels={list(channels)} must be a non-empty list of positive integers")
        if padding not in ("same", "valid"):
            raise ZooError(f"model.net.padding={padding!r} is not valid; choose same or valid")
        if activation not in ACTIVATIONS:
            raise ZooError(f"model.net.activation={activation!r} is not valid; choose one of {', '.join(ACTIVATIONS)}")
        for key, p in (("dropout", dropout), ("conv_dropout", conv_dropout)):
            if not 0.0 <= p < 1.0:
                raise ZooError(f"model.net.{key}={p} must lie in [0, 1)")
        c, h, w = input_shape
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i, width in enumerate(channels):
            for j in range(convs_per_block):
                name = f"{i}" if convs_per_block == 1 else f"{i}_{j}"
                layers[f"conv{name}"] = nn.Conv2d(c, width, kernel_size, padding=padding, bias=not batch_norm)
                h, w = (self._shrink(conv_output_size, s, kernel_size, 1, padding, i, channels) for s in (h, w))
                if batch_norm:
                    layers[f"bn{name}"] = nn.BatchNorm2d(width)
                layers[f"act{name}"] = ACTIVATIONS[activation]()
                c = width
            if pool > 1:
                layers[f"pool{i}"] = nn.MaxPool2d(pool)
                h, w = (self._shrink(pool_output_size, s, pool, pool, 0, i, channels) for s in (h, w))
            if conv_dropout:
                layers[f"dropout{i}"] = Dropout(conv_dropout)
        self.features = nn.Sequential(layers)
        head: OrderedDict[str, nn.Module] = OrderedDict()
        if global_pool:
            head["pool"] = nn.AdaptiveAvgPool2d(1)
        head["flatten"] = nn.Flatten()
        n = c if global_pool else c * h * w
        self.num_features = n
        for i, units in enumerate(hidden):
            head[f"dense{i}"] = nn.Linear(n, units)
            head[f"act{i}"] = ACTIVATIONS[activation]()
            if dropout:
                head[f"dropout{i}"] = Dropout(dropout)
            n = units
        if dropout and not hidden:
            head["dropout"] = Dropout(dropout)
        head["output"] = nn.Linear(n, out_features)
        self.head = nn.Sequential(head)

    @staticmethod
    def _shrink(size_fn, size: int, kernel: int, stride: int, padding, block: int, channels) -> int:
        try:
            return size_fn(size, kernel, stride, padding)
        except ZooError as err:
            raise ZooError(
                f"model=cnn: block {block + 1} of {len(channels)} (model.net.channels={list(channels)}) gets "
                f"{size}-pixel maps: {err}"
            ) from None

    def forward(self, x):
        return self.head(self.features(x))
