"""In-memory batching by slicing tensors: a DataLoader that collates sample by sample costs 2-6x on small models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from zoo.data.augment import Augment
from zoo.data.device import to_device


class TensorBatches:
    """Iterates ``(x, y)`` mini-batches over tensors that already sit in memory.

    Shuffling draws from a generator seeded with ``seed + epoch``; Lightning calls ``set_epoch`` (through the
    ``sampler`` attribute, as for a DataLoader), so the order of an epoch does not depend on how many times the
    process started. Under ``torch.distributed`` each rank takes every ``world_size``-th sample of the permutation.
    ``augment``, when given, transforms each batch with draws from a generator seeded the same way (and by rank);
    ``targets`` says what ``y`` holds (labels, masks or boxes; see ``zoo.data.augment``), so it moves with the images.
    ``group`` > 1 yields lists of that many mini-batches (the last list may be shorter): ``steps_per_execution``.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        augment: Augment | None = None,
        targets: str = "labels",
        group: int = 1,
    ) -> None:
        self.x, self.y = x, y
        self.targets = targets
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.augment = augment if augment is not None and augment.active else None
        self.group = group
        self.epoch = 0
        self.sampler = self  # Lightning looks for ``dataloader.sampler.set_epoch``
        self.batch_sampler = None  # ...and inspects this as it would on a DataLoader

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> torch.Tensor | None:
        rank, world = _rank_and_world()
        if not self.shuffle and world == 1:
            return None
        n = len(self.x)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)  # on the CPU: the same order on any device
            order = torch.randperm(n, generator=gen)
        else:
            order = torch.arange(n)
        # Sent once an epoch to where the data is, without a stall (a CPU index into GPU tensors is copied at every
        # batch, each copy waiting for the GPU's queued work).
        return to_device(order[rank::world], self.x.device)

    def __len__(self) -> int:
        rank, world = _rank_and_world()
        return -(-len(self._bounds(len(range(rank, len(self.x), world)))) // self.group)

    def _bounds(self, n: int) -> list[tuple[int, int]]:
        """Each mini-batch's (start, stop) over ``n`` samples. A last batch of one sample joins the one before it:
        batch norm cannot train on a single sample (404 rows in batches of 16 would end on one). ``batch_size=1``
        (SGD) stays one sample a step."""
        starts = list(range(0, n, self.batch_size))
        if self.batch_size > 1 and len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()
        return list(zip(starts, [*starts[1:], n], strict=True))

    def __iter__(self) -> Iterator[Any]:
        if self.group == 1:
            yield from self._mini_batches()
            return
        group = []
        for batch in self._mini_batches():
            group.append(batch)
            if len(group) == self.group:
                yield group
                group = []
        if group:
            yield group

    def _mini_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = self._batches()
        if self.augment is None:
            yield from batches
            return
        rank, world = _rank_and_world()
        gen = torch.Generator().manual_seed((self.seed + self.epoch) * 1_000_003 + rank)
        sizes = [stop - start for start, stop in self._bounds(len(range(rank, len(self.x), world)))]
        draws = self.augment.draws(sizes, gen, self.x.device)  # the epoch's, drawn up front
        for (x, y), draw in zip(batches, draws, strict=True):
            yield self.augment.apply(x, y, draw, self.targets)

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = self._indices()
        if idx is None:
            for start, stop in self._bounds(len(self.x)):
                yield self.x[start:stop], self.y[start:stop]
            return
        for start, stop in self._bounds(len(idx)):
            take = idx[start:stop]
            yield self.x[take], self.y[take]


def _rank_and_world() -> tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
