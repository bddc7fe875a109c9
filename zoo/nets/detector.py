"""A one-stage, anchor-free object detector in the YOLO spirit: a conv backbone down to ``stride``, then a head that
predicts, for every cell of the resulting grid, whether an object's centre lies near it, its box and its class.

The output is a map ``[N, 5 + classes, H / stride, W / stride]`` whose channels per cell are ``objectness`` (a logit),
``tx, ty`` (the box centre, within a cell of this cell's centre, through a sigmoid), ``tw, th`` (log box width and
height in strides) and one logit per class; :class:`zoo.tasks.detection.DetectionTask` turns it into boxes, trains
and judges it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ZooError
from zoo.nets.timm_net import weights_source

if TYPE_CHECKING:
    from zoo.spec import DataSpec

BOX_CHANNELS = 5  # objectness, tx, ty, tw, th; class logits follow
PRIOR = 0.01  # the objectness a fresh head predicts everywhere: most cells hold no object (RetinaNet's prior)


def conv_bn(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class Detector(nn.Module):
    """Backbone -> ``stride``-pixel grid -> ``[conv 3x3 -> BN -> ReLU] -> conv 1x1`` head.

    The own backbone has one stage per entry of ``widths`` (``convs_per_stage`` 3x3 conv-BN-ReLU layers each); each
    stage's first conv halves the resolution until ``stride`` is reached, later stages keep it. ``backbone`` names a
    timm model instead (randomly initialised, its ``features_only`` level at ``stride``). Any input size works:
    inputs are padded on the right and bottom to a multiple of ``stride``.
    """

    @classmethod
    def from_spec(cls, spec: DataSpec, out_features: int, **settings: Any) -> Detector:
        return cls(list(spec.input_shape), out_features, **settings)

    def __init__(
        self,
        input_shape: list[int],
        out_features: int,
        widths: list[int] | tuple[int, ...] = (16, 32, 64),
        convs_per_stage: int = 2,
        stride: int = 8,
        head_width: int = 64,
        backbone: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1 or stride & (stride - 1):
            raise ZooError(f"model.net.stride={stride!r} must be a power of two (1, 2, 4, 8, 16...)")
        if not isinstance(head_width, int) or head_width < 1:
            raise ZooError(f"model.net.head_width={head_width!r} must be a positive integer")
        self.stride = stride
        self.num_classes = out_features
        channels = input_shape[0]
        self.channels_last_on_cpu = not backbone  # NHWC: 1.15x faster on the CPU; a timm backbone is slower there
        if backbone:
            self.features, width = _timm_features(backbone, channels, stride)
        else:
            self.features, width = _own_features(channels, list(widths), convs_per_stage, stride)
        self.head = nn.Sequential(conv_bn(width, head_width), nn.Conv2d(head_width, BOX_CHANNELS + out_features, 1))
        nn.init.constant_(self.head[-1].bias[0], -math.log((1 - PRIOR) / PRIOR))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.stride, -w % self.stride
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.head(self.features(x))


def _own_features(channels: int, widths: list[int], convs_per_stage: int, stride: int) -> tuple[nn.Sequential, int]:
    downsamples = int(math.log2(stride))
    if not widths or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in widths):
        raise ZooError(f"model.net.widths={widths} must be a non-empty list of positive integers")
    if len(widths) < downsamples:
        raise ZooError(
            f"model.net.widths={widths} has {len(widths)} stages but stride {stride} needs {downsamples} "
            "(each halves the resolution); add stages or lower model.net.stride"
        )
    if isinstance(convs_per_stage, bool) or not isinstance(convs_per_stage, int) or convs_per_stage < 1:
        raise ZooError(f"model.net.convs_per_stage={convs_per_stage!r} must be a positive integer")
    stages = []
    for i, width in enumerate(widths):
        layers = [conv_bn(channels, width, stride=2 if i < downsamples else 1)]
        layers += [conv_bn(width, width) for _ in range(convs_per_stage - 1)]
        stages.append(nn.Sequential(*layers))
        channels = width
    return nn.Sequential(*stages), channels


class _TimmLevel(nn.Module):
    """One level of a timm ``features_only`` model (which returns a list)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[0]


def _timm_features(name: str, channels: int, stride: int) -> tuple[nn.Module, int]:
    import timm

    weights_source(name, None)  # an unknown name gets the close ones
    probe = timm.create_model(name, features_only=True, pretrained=False, in_chans=channels)
    reductions = probe.feature_info.reduction()
    if stride not in reductions:
        raise ZooError(
            f"model.net.stride={stride}: backbone {name!r} has feature maps at strides "
            f"{', '.join(map(str, reductions))}; choose one of those"
        )
    level = reductions.index(stride)
    model = timm.create_model(name, features_only=True, pretrained=False, in_chans=channels, out_indices=(level,))
    return _TimmLevel(model), model.feature_info.channels()[0]
