"""U-Net (Ronneberger, Fischer and Brox, 2015): an encoder that halves the image and doubles the maps at each
level, a decoder that upsamples back and concatenates the encoder's maps of the same size (the skip connections),
and a 1x1 convolution giving each pixel its class scores. The encoder may be any timm backbone (``features_only``),
pretrained for transfer learning."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ZooError
from zoo.nets.timm_net import create_timm, weights_source
from zoo.protocols import PixelInput

if TYPE_CHECKING:
    from zoo.spec import DataSpec

UPSAMPLE = ("transpose", "bilinear")


def double_conv(c_in: int, c_out: int, batch_norm: bool = True, dropout: float = 0.0) -> nn.Sequential:
    """``[3x3 conv -> (batch norm) -> ReLU] x 2`` at the same size: one U-Net level."""
    layers: list[nn.Module] = []
    for c in (c_in, c_out):
        layers += [nn.Conv2d(c, c_out, 3, padding=1, bias=not batch_norm)]
        layers += [nn.BatchNorm2d(c_out)] if batch_norm else []
        layers += [nn.ReLU(inplace=True)]
    if dropout:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


class Up(nn.Module):
    """Upsample to the skip connection's size, concatenate it, then a double conv."""

    def __init__(self, c_in: int, c_skip: int, c_out: int, mode: str, batch_norm: bool, dropout: float) -> None:
        super().__init__()
        self.mode = mode
        # the original's 2x2 up-convolution halves the maps; bilinear upsampling keeps them and costs no weights
        self.up = nn.ConvTranspose2d(c_in, c_in // 2, 2, stride=2) if mode == "transpose" else nn.Identity()
        c_up = c_in // 2 if mode == "transpose" else c_in
        self.conv = double_conv(c_up + c_skip, c_out, batch_norm, dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        size = skip.shape[-2:] if skip is not None else tuple(2 * s for s in x.shape[-2:])
        x = self.up(x)
        if x.shape[-2:] != size:  # bilinear always, transpose only when a timm stage is not 2x
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.conv(x if skip is None else torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """``depth`` halvings from ``base_width`` maps (64 in the paper), a mirror-image decoder, ``out_features``
    scores per pixel. Convolutions keep the size (``padding=1``), so any input size works: it is padded to a
    multiple of ``2**depth`` and the output cropped back. With ``encoder`` (a timm name) the encoder's own feature
    levels set the depth; ``pretrained``/``weights`` load it as :class:`zoo.nets.timm_net.TimmNet` does."""

    @classmethod
    def from_spec(cls, spec: DataSpec, out_features: int, **settings: Any) -> UNet:
        return cls(list(spec.input_shape), out_features, **settings)

    def __init__(
        self,
        input_shape: list[int],
        out_features: int,
        depth: int = 4,
        base_width: int = 64,
        batch_norm: bool = True,
        upsample: str = "transpose",
        dropout: float = 0.0,
        encoder: str | None = None,
        pretrained: bool = False,
        weights: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 6:
            raise ZooError(f"model.net.depth={depth!r} must be an integer in 1..6 (halvings of the image)")
        if isinstance(base_width, bool) or not isinstance(base_width, int) or base_width < 1:
            raise ZooError(f"model.net.base_width={base_width!r} must be a positive integer (maps at full size)")
        if upsample not in UPSAMPLE:
            raise ZooError(f"model.net.upsample={upsample!r} is not valid; choose one of {', '.join(UPSAMPLE)}")
        if not 0.0 <= dropout < 1.0:
            raise ZooError(f"model.net.dropout={dropout} must lie in [0, 1)")
        if (pretrained or weights) and not encoder:
            raise ZooError("model.pretrained/model.weights need a timm encoder: set model.encoder=NAME (e.g. resnet18)")
        channels = input_shape[0]
        self.channels_last_on_cpu = not encoder  # NHWC: 1.45x faster on the CPU; a timm encoder is slower there
        if encoder:
            self.encoder = TimmEncoder(encoder, channels, pretrained, weights, max(input_shape[1:]))
            widths, self.multiple = self.encoder.widths, self.encoder.reductions[-1]
            if pretrained or weights:  # the input layer normalises as the backbone was trained
                self.pixel_input = PixelInput(mean=self.encoder.mean, std=self.encoder.std)
            skips = widths[:-1]
        else:
            widths = [base_width * 2**i for i in range(depth + 1)]
            self.encoder = ClassicEncoder(channels, widths, batch_norm, dropout)
            self.multiple = 2**depth
            skips = widths[:-1]
        ups, c = [], widths[-1]
        for c_skip in reversed(skips):
            ups.append(Up(c, c_skip, c_skip, upsample, batch_norm, dropout))
            c = c_skip
        if encoder and self.encoder.reductions[0] > 1:  # timm's first level is already halved: one more, no skip
            ups.append(Up(c, 0, base_width, upsample, batch_norm, dropout))
            c = base_width
        self.decoder = nn.ModuleList(ups)
        self.output = nn.Conv2d(c, out_features, 1)

    @property
    def features(self) -> nn.Module:
        """The encoder: what :class:`zoo.callbacks.Finetune` freezes for transfer learning."""
        return self.encoder

    @property
    def head(self) -> nn.ModuleList:
        return nn.ModuleList([self.decoder, self.output])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (math.ceil(s / self.multiple) * self.multiple - s for s in (h, w))
        if ph or pw:  # every halving must be exact for the skip connections to line up
            x = F.pad(x, (0, pw, 0, ph))
        levels = self.encoder(x)
        x = levels[-1]
        for up, skip in zip(self.decoder, [*reversed(levels[:-1]), None], strict=False):
            x = up(x, skip)
        return self.output(x)[..., :h, :w]


class ClassicEncoder(nn.Module):
    """The paper's contracting path: a double conv, then ``[2x2 max pool -> double conv]`` per level."""

    def __init__(self, channels: int, widths: list[int], batch_norm: bool, dropout: float) -> None:
        super().__init__()
        self.levels = nn.ModuleList([double_conv(channels, widths[0], batch_norm)])
        for c_in, c_out in zip(widths, widths[1:], strict=False):
            self.levels.append(nn.Sequential(nn.MaxPool2d(2), double_conv(c_in, c_out, batch_norm, dropout)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = []
        for level in self.levels:
            x = level(x)
            levels.append(x)
        return levels


class TimmEncoder(nn.Module):
    """A timm backbone's feature maps at each level (``features_only=True``), shallowest first."""

    def __init__(self, name: str, channels: int, pretrained: bool, weights: str | None, size: int) -> None:
        super().__init__()
        timm_name, extra = weights_source(name, weights)
        kwargs: dict[str, Any] = {"in_chans": channels, "features_only": True, **extra}
        self.model = create_timm(timm_name, pretrained or weights is not None, size, kwargs, name, weights)
        self.widths = list(self.model.feature_info.channels())
        self.reductions = list(self.model.feature_info.reduction())
        cfg = getattr(self.model, "pretrained_cfg", {}) or {}
        self.mean, self.std = list(cfg.get("mean", (0.5,) * 3)), list(cfg.get("std", (0.5,) * 3))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model(x)
