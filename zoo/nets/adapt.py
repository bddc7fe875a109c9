"""The first layer of every image model: raw pixels in, the net's expected size and normalisation out.

A net may declare what it wants through attributes: ``input_size`` (``(H, W)``, e.g. LeNet-5's 32x32 or a
pretrained backbone's 224x224; ``None`` takes any size), ``input_fit`` (``auto``, ``pad`` or ``resize``) and
``input_mean``/``input_std`` (a pretrained backbone's normalisation; otherwise the training split's statistics).
Channels are the net's own business (timm adapts a pretrained stem to ``in_chans``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ZooError

FITS = ("auto", "pad", "resize")
AUTO_PAD = 8  # ``auto`` pads when the net wants at most this many more pixels per side (MNIST 28 -> LeNet 32)


class ImageInput(nn.Module):
    """uint8 (or 0..255 float) ``[N, C, H, W]`` -> float, fitted to ``size``, normalised per channel."""

    def __init__(
        self,
        in_channels: int,
        in_size: tuple[int, int],
        mean: list[float],
        std: list[float],
        size: tuple[int, int] | None = None,
        fit: str = "auto",
    ) -> None:
        super().__init__()
        if fit not in FITS:
            raise ZooError(f"model.net.fit={fit!r} is not valid; choose one of {', '.join(FITS)}")
        self.in_size = tuple(in_size)
        self.mean, self.std = list(mean), list(std)
        self.size = tuple(size) if size else self.in_size
        grow = [o - i for i, o in zip(self.in_size, self.size, strict=True)]
        can_pad = all(g >= 0 for g in grow)
        if fit == "pad" and not can_pad:
            raise ZooError(
                f"model.net.fit=pad cannot shrink {self.in_size[0]}x{self.in_size[1]} images to "
                f"{self.size[0]}x{self.size[1]}; use fit=resize or auto"
            )
        self.mode = "pad" if fit == "pad" or (fit == "auto" and can_pad and max(grow) <= AUTO_PAD) else "resize"
        if self.size == self.in_size:
            self.mode = "none"
        # one statistic per channel, or one per pixel (``data.normalize=pixel``: each pixel standardised like a
        # table's column, applied before the size changes)
        self.per_pixel = len(mean) > 1 and len(mean) == in_channels * self.in_size[0] * self.in_size[1]
        shape = (1, in_channels, *self.in_size) if self.per_pixel else (1, -1, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(shape)
        std_t = torch.tensor(std, dtype=torch.float32).view(shape)
        # (x / 255 - mean) / std as one multiply-add; not saved: it is rebuilt from the spec
        self.register_buffer("scale", 1.0 / (255.0 * std_t), persistent=False)
        self.register_buffer("shift", -mean_t / std_t, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.per_pixel:
            x = x * self.scale + self.shift
        if self.mode == "pad":  # black borders, centred, before normalising (as LeNet-5 padded MNIST)
            (h, w), (oh, ow) = self.in_size, self.size
            top, left = (oh - h) // 2, (ow - w) // 2
            x = F.pad(x, (left, ow - w - left, top, oh - h - top))
        elif self.mode == "resize":
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=False)
        return x if self.per_pixel else x * self.scale + self.shift

    def extra_repr(self) -> str:
        return f"in_size={self.in_size}, size={self.size}, mode={self.mode}"
