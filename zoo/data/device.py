"""Where in-memory data lives: moved to a GPU once when it fits there, so that no batch crosses the bus again; copies
to a GPU go through pinned memory, queued behind the work there."""

from __future__ import annotations

import logging
from typing import Any

import torch

log = logging.getLogger(__name__)

DEVICE_SHARE = 0.5  # data kept on the GPU only while it takes at most this share of the free memory


def fits_on_device(nbytes: int, device: torch.device, free_bytes: int | None) -> bool:
    """Whether tensors of ``nbytes`` should move to ``device`` once, for good: a GPU with room to spare."""
    return device.type == "cuda" and free_bytes is not None and nbytes <= DEVICE_SHARE * free_bytes


def keep_on_device(
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]], device: torch.device
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The splits moved to ``device`` when they fit there (then no batch crosses the bus again), else as they are."""
    tensors = [t for pair in splits.values() for t in pair if isinstance(t, torch.Tensor)]
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    if not fits_on_device(nbytes, device, free):
        return splits
    log.info("keeping the data on %s (%.1f MB)", device, nbytes / 1e6)
    return {name: tuple(_to(t, device) for t in pair) for name, pair in splits.items()}


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    return value


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A CPU tensor on ``device``; to a GPU through pinned memory, queued behind the work there: a copy from pageable
    memory waits for all of it first (a stall). The caching host allocator keeps the pinned copy until it is done."""
    device = torch.device(device)
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)
