"""Augmentation applied to whole batches (random crop with padding, horizontal flip), on the batch's device.

Random draws come from a generator the batch iterator seeds with ``seed + epoch``, so an epoch's augmentation does
not depend on how many times the process started (a resumed run sees the same images as an uninterrupted one).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zoo.errors import ZooError


@dataclass(frozen=True)
class Augment:
    """``crop_padding``: pad by this many (black) pixels and crop back at a random offset; ``hflip``: mirror half."""

    crop_padding: int = 0
    hflip: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.crop_padding, bool) or not isinstance(self.crop_padding, int) or self.crop_padding < 0:
            raise ZooError(f"data.augment.crop_padding={self.crop_padding!r} must be an integer >= 0 (0 turns it off)")
        if not isinstance(self.hflip, bool):
            raise ZooError(f"data.augment.hflip={self.hflip!r} must be true or false")

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.hflip

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``x``: ``[N, C, H, W]`` of any dtype; the parameters are drawn on the CPU, applied where ``x`` lives."""
        n, _, h, w = x.shape
        if self.crop_padding:
            p = self.crop_padding
            dy, dx = (torch.randint(0, 2 * p + 1, (2, n), generator=generator)).to(x.device)
            rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # [N, 1, H, 1]
            cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # [N, 1, 1, W]
            padded = F.pad(x, (p, p, p, p))
            batch = torch.arange(n, device=x.device)[:, None, None, None]
            chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = padded[batch, chans, rows, cols]
        if self.hflip:
            flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)[:, None, None, None]
            x = torch.where(flip, x.flip(3), x)
        return x
