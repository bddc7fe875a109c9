"""In-memory batching by slicing tensors: a DataLoader that collates sample by sample costs 2-6x on small models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from zoo.data.augment import Augment, Draw
from zoo.data.device import to_device


class TensorBatches:
    """Iterates ``(x, y)`` mini-batches over tensors that already sit in memory.

    Shuffling draws from a generator seeded with ``seed + epoch``; Lightning calls ``set_epoch`` (through the
    ``sampler`` attribute, as for a DataLoader), so the order of an epoch does not depend on how many times the
    process started. Under ``torch.distributed`` each rank takes every ``world_size``-th sample of the permutation.
    ``augment``, when given, transforms each batch with draws from a generator seeded the same way (and by rank);
    ``targets`` says what ``y`` holds (labels, masks or boxes; see ``zoo.data.augment``), so it moves with the images.
    ``group`` > 1 yields lists of that many mini-batches (the last list may be shorter): ``steps_per_execution``;
    with ``plans``, each group comes as a :class:`PlannedGroup` that a CUDA graph gathers itself.
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
        plans: bool = False,
    ) -> None:
        self.x, self.y = x, y
        self.targets = targets
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.augment = augment if augment is not None and augment.active else None
        self.group = group
        self.plans = plans
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
        order, draw = self._epoch()
        bounds = self._bounds(len(self.x) if order is None else len(order))
        if self.group == 1:
            for start, stop in bounds:
                yield self.gather(order, draw, start, stop)
            return
        for first in range(0, len(bounds), self.group):
            group = bounds[first : first + self.group]
            start, stop = group[0][0], group[-1][1]
            if self.plans:
                positions = torch.arange(start, stop, device=self.x.device) if order is None else order[start:stop]
                yield PlannedGroup(self, positions, None if draw is None else draw.part(start, stop), len(group))
            else:
                yield [self.gather(order, draw, a, b) for a, b in group]

    def _epoch(self) -> tuple[torch.Tensor | None, Draw | None]:
        """The epoch's order of samples (None: as stored) and its augmentation draws, one per position in it."""
        order = self._indices()
        if self.augment is None:
            return order, None
        rank, world = _rank_and_world()
        gen = torch.Generator().manual_seed((self.seed + self.epoch) * 1_000_003 + rank)
        sizes = [stop - start for start, stop in self._bounds(len(range(rank, len(self.x), world)))]
        return order, self.augment.draws_in_a_row(sizes, gen, self.x.device)  # the epoch's, drawn up front

    def gather(
        self, order: torch.Tensor | None, draw: Draw | None, start: int, stop: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mini-batch at positions ``start`` to ``stop`` of an epoch's ``order``, augmented by the ``draw``'s
        choices for those positions."""
        take = slice(start, stop) if order is None else order[start:stop]
        x, y = self.x[take], self.y[take]
        if draw is None:
            return x, y
        return self.augment.apply(x, y, draw.part(start, stop), self.targets)


class PlannedGroup:
    """A group of ``steps`` mini-batches of an epoch, not gathered yet: the ``positions`` (sample indices) and
    augmentation ``draw`` that :meth:`TensorBatches.gather` turns into batches, each ``batch_size`` long but the
    epoch's last (shorter, or one longer: see ``_bounds``). A recorded CUDA graph (``zoo.tasks.graphed``) copies them
    into buffers of its own and gathers on the device; :meth:`batches` gathers them as the ordinary iterator does."""

    __slots__ = ("draw", "positions", "source", "steps")

    def __init__(self, source: TensorBatches, positions: torch.Tensor, draw: Draw | None, steps: int) -> None:
        self.source, self.positions, self.draw, self.steps = source, positions, draw, steps

    def batches(self, positions: torch.Tensor | None = None, draw: Draw | None = None) -> list[Any]:
        """The K mini-batches, gathered from this plan's positions and draw or from others of the same sizes."""
        positions = self.positions if positions is None else positions
        draw = self.draw if draw is None else draw
        size, last = self.source.batch_size, self.steps - 1
        return [
            self.source.gather(positions, draw, i * size, (i + 1) * size if i < last else len(positions))
            for i in range(self.steps)
        ]


def _rank_and_world() -> tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
