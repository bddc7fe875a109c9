"""Augmentation applied to whole batches (random crop with padding, horizontal flip), on the batch's device, and to
the batch's targets where they are pictures too: segmentation masks move with their images, detection boxes are
shifted, clipped and mirrored with them.

Random draws come from a generator the batch iterator seeds with ``seed + epoch``, so an epoch's augmentation does
not depend on how many times the process started (a resumed run sees the same images as an uninterrupted one).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zoo.data.device import to_device
from zoo.errors import ZooError

TARGETS = ("labels", "masks", "boxes")  # what ``y`` holds: one label per image, a mask ``[N, H, W]``, boxes


@dataclass
class Draw:
    """One batch's random choices: crop offsets ``dy``, ``dx`` in ``0..2p`` and which images are mirrored."""

    dy: torch.Tensor | None
    dx: torch.Tensor | None
    flip: torch.Tensor | None

    def part(self, start: int, stop: int) -> Draw:
        """The choices of images ``start`` to ``stop`` of a draw made for several batches in a row."""
        return Draw(*(None if t is None else t[start:stop] for t in (self.dy, self.dx, self.flip)))

    def copy_(self, other: Draw) -> Draw:
        """``other``'s choices written into this draw's tensors (fixed buffers of the same sizes)."""
        for mine, theirs in zip((self.dy, self.dx, self.flip), (other.dy, other.dx, other.flip), strict=True):
            if mine is not None:
                mine.copy_(theirs, non_blocking=True)
        return self

    def empty_like(self) -> Draw:
        return Draw(*(None if t is None else torch.empty_like(t) for t in (self.dy, self.dx, self.flip)))


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
        return self.images(x, self.draws_in_a_row([len(x)], generator, x.device))

    def batch(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, targets: str = "labels"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and their ``targets`` (see TARGETS) under the same draw."""
        return self.apply(x, y, self.draws_in_a_row([len(x)], generator, x.device), targets)

    def apply(
        self, x: torch.Tensor, y: torch.Tensor, draw: Draw, targets: str = "labels"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and their ``targets`` under a given draw (see :meth:`draws_in_a_row`)."""
        if targets == "masks":  # the mask as one more channel: cropped and mirrored exactly as its image
            both = self.images(torch.cat([x, y.unsqueeze(1).to(x.dtype)], dim=1), draw)
            return both[:, :-1], both[:, -1].to(y.dtype)
        if targets == "boxes":
            return self.images(x, draw), self.boxes(y, draw, *x.shape[-2:])
        return self.images(x, draw), y

    def draw(self, n: int, generator: torch.Generator) -> Draw:
        dy = dx = flip = None
        if self.crop_padding:
            dy, dx = torch.randint(0, 2 * self.crop_padding + 1, (2, n), generator=generator)
        if self.hflip:
            flip = torch.rand(n, generator=generator) < 0.5
        return Draw(dy, dx, flip)

    def draws_in_a_row(self, sizes: list[int], generator: torch.Generator, device: torch.device | str) -> Draw | None:
        """The draws of batches of ``sizes`` in a row as one draw (batch ``i`` is its images ``sum(sizes[:i])``
        onwards; None for no batch), sent to ``device`` in one copy per parameter, from page-locked memory without
        waiting: a copy from ordinary memory to a GPU waits for all the work queued there first (one stall per
        batch)."""
        draws = [self.draw(n, generator) for n in sizes]
        if not draws:
            return None
        fields = []
        for name in ("dy", "dx", "flip"):
            parts = [getattr(d, name) for d in draws]
            fields.append(None if parts[0] is None else to_device(torch.cat(parts), device))
        return Draw(*fields)

    def images(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        n, _, h, w = x.shape
        if draw.dy is not None:
            p = self.crop_padding
            dy, dx = draw.dy.to(x.device), draw.dx.to(x.device)
            rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # [N, 1, H, 1]
            cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # [N, 1, 1, W]
            padded = F.pad(x, (p, p, p, p))
            batch = torch.arange(n, device=x.device)[:, None, None, None]
            chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = padded[batch, chans, rows, cols]
        if draw.flip is not None:
            x = torch.where(draw.flip.to(x.device)[:, None, None, None], x.flip(3), x)
        return x

    def boxes(self, y: torch.Tensor, draw: Draw, h: int, w: int) -> torch.Tensor:
        """``y``: ``[N, M, 5]`` rows ``(class, x1, y1, x2, y2)`` in pixels, class -1 for padding. A shift clips the
        boxes to the picture; one pushed wholly out becomes a padding row."""
        n = len(y)
        y = y.clone()
        valid = y[..., 0] >= 0
        if draw.dy is not None:
            p = self.crop_padding
            shift_x, shift_y = (p - draw.dx).to(y), (p - draw.dy).to(y)  # the picture moved by p - offset
            y[..., 1::2] = (y[..., 1::2] + shift_x.view(n, 1, 1)).clamp(0, w)
            y[..., 2::2] = (y[..., 2::2] + shift_y.view(n, 1, 1)).clamp(0, h)
            valid &= (y[..., 3] > y[..., 1]) & (y[..., 4] > y[..., 2])
        if draw.flip is not None:
            mirrored = torch.stack([y[..., 0], w - y[..., 3], y[..., 2], w - y[..., 1], y[..., 4]], dim=-1)
            y = torch.where(draw.flip.to(y.device).view(n, 1, 1), mirrored, y)
        return torch.where(valid.unsqueeze(-1), y, torch.full_like(y, -1.0))
