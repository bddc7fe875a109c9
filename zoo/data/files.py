"""Pictures left on disk, for folders too large for memory (``data=images data.in_memory=false``).

:class:`ImageFiles` stands where an in-memory split holds its ``uint8 [N, C, H, W]`` tensor: it has the same
``shape`` and indexing (an index array or a mask gives a subset), so splitting, class subsets and the spec work
unchanged. Batches come from a ``torch.utils.data.DataLoader`` whose worker processes decode the pictures
(``data.num_workers``), into page-locked (pinned) memory when they go to a GPU, so the copy overlaps the step.
Under DDP Lightning gives that loader a distributed sampler. Normalisation statistics come from a seeded sample of
the training pictures (:data:`STATS_SAMPLE`), not all of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from zoo.data.pictures import read_image, read_images
from zoo.errors import ZooError

STATS_SAMPLE = 1000  # training pictures decoded for the mean/std the net's first layer normalises with
MAX_AUTO_WORKERS = 8


class ImageFiles:
    """``N`` picture files read as ``uint8 [C, size, size]`` tensors in ``color`` (rgb or grey) when indexed by an
    integer; indexed by an array, a list or a boolean mask, the subset of those files."""

    def __init__(self, files: list[Path], color: str, size: int) -> None:
        self.files, self.color, self.size = list(files), color, size

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.files), 3 if self.color == "rgb" else 1, self.size, self.size)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: Any) -> torch.Tensor | ImageFiles:
        if isinstance(index, int | np.integer):
            # a copy: PIL's pixels are read-only, and torch wants tensors it may write
            return torch.from_numpy(read_image(self.files[index], self.color, self.size).copy())
        index = index.numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
        picked = np.arange(len(self.files))[index]
        return ImageFiles([self.files[i] for i in picked], self.color, self.size)

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """Up to ``n`` of the pictures, chosen with ``seed``, decoded into one tensor (for statistics)."""
        chosen = np.sort(np.random.default_rng(seed).permutation(len(self.files))[:n])
        return torch.from_numpy(np.stack(read_images([self.files[i] for i in chosen], self.color, self.size)))


class FileSplit(Dataset):
    """One split as a map-style dataset: ``(picture, label)`` pairs, the picture decoded on demand."""

    def __init__(self, images: ImageFiles, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]


def separator_hint(columns: list[str], sep: str) -> str:
    """Where a header read as one column holds another separator (``review;stars`` split on ``,``), the setting
    that splits it; else nothing."""
    if len(columns) != 1:
        return ""
    found = next((c for c in (";", "\t", "|", ",") if c != sep and c in str(columns[0])), None)
    if found is None:
        return ""
    shown = "\\t" if found == "\t" else found  # as typed in a shell: quoted for Hydra, then for the shell
    return f" (the header is one column: is it separated by '{shown}'? give 'data.sep=\"{shown}\"')"


def check_workers(value: Any) -> int:
    """``data.num_workers``: ``auto`` (one per core, at most :data:`MAX_AUTO_WORKERS`) or an integer >= 0."""
    if value == "auto":
        return min(MAX_AUTO_WORKERS, len(os.sched_getaffinity(0)))
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ZooError(f"data.num_workers={value!r} must be auto or an integer >= 0 (0 decodes in the main process)")
    return value


def check_in_memory(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ZooError(f"data.in_memory={value!r} must be true (decode every picture once) or false (stream them)")
    return value


def file_loader(
    images: ImageFiles, labels: torch.Tensor, batch_size: int, shuffle: bool, seed: int, workers: int, device: Any
) -> DataLoader:
    """A DataLoader over one split: ``workers`` processes decode the pictures (kept alive across epochs), batches
    are pinned when ``device`` is a GPU, a seeded order when shuffled."""
    return DataLoader(
        FileSplit(images, labels),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed) if shuffle else None,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.device(device).type == "cuda",
    )
