"""ResNets for small images (He, Zhang, Ren and Sun, 2015): a 3x3 stem without max pooling, so 8x8 to 32x32
inputs keep enough resolution, then stages of residual blocks ("pass the inputs on to the layers ahead").

``depth`` picks the architecture: 20, 32, 44, 56 or 110 are the paper's CIFAR-10 nets (three stages of 16, 32 and
64 maps, 6n+2 layers); 18 and 34 are the ImageNet ResNets' four stages (64 to 512 maps) on the small-image stem.
Where a block changes size, its shortcut is a 1x1 convolution with batch norm (the paper's option B).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from zoo.errors import ZooError

if TYPE_CHECKING:
    from zoo.spec import DataSpec

# depth -> (blocks per stage, maps per stage)
DEPTHS: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    20: ((3, 3, 3), (16, 32, 64)),
    32: ((5, 5, 5), (16, 32, 64)),
    44: ((7, 7, 7), (16, 32, 64)),
    56: ((9, 9, 9), (16, 32, 64)),
    110: ((18, 18, 18), (16, 32, 64)),
    18: ((2, 2, 2, 2), (64, 128, 256, 512)),
    34: ((3, 4, 6, 3), (64, 128, 256, 512)),
}


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a shortcut: ``relu(F(x) + shortcut(x))``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        nn.init.zeros_(self.bn2.weight)  # each block starts as the identity (Goyal et al., 2017): deep nets train

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet-``depth`` for ``input_shape`` images and ``out_features`` classes; ``width`` scales every stage."""

    channels_last_on_cpu = True  # NHWC trains 1.1x faster on the CPU (zoo.protocols.NHWCOnCPU)

    @classmethod
    def from_spec(cls, spec: DataSpec, out_features: int, **settings: Any) -> ResNet:
        return cls(list(spec.input_shape), out_features, **settings)

    def __init__(self, input_shape: list[int], out_features: int, depth: int = 20, width: float = 1.0) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ZooError(f"model.depth={depth!r} is not available; choose one of {', '.join(map(str, DEPTHS))}")
        if width <= 0:
            raise ZooError(f"model.net.width={width} must be > 0 (1.0 is the paper's width)")
        blocks, maps = DEPTHS[depth]
        maps = [max(1, round(m * width)) for m in maps]
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            stem=nn.Conv2d(input_shape[0], maps[0], 3, padding=1, bias=False),
            bn=nn.BatchNorm2d(maps[0]),
            relu=nn.ReLU(inplace=True),
        )
        c = maps[0]
        for s, (n, m) in enumerate(zip(blocks, maps, strict=True)):
            stage = [BasicBlock(c if b == 0 else m, m, stride=2 if s > 0 and b == 0 else 1) for b in range(n)]
            layers[f"stage{s + 1}"] = nn.Sequential(*stage)
            c = m
        self.features = nn.Sequential(layers)
        self.num_features = c
        self.head = nn.Sequential(
            OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), output=nn.Linear(c, out_features))
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
