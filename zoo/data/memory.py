"""Base of every data module whose splits sit in memory as tensors: tables and images alike."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from zoo.data.augment import Augment
from zoo.data.batches import PlannedGroup, TensorBatches
from zoo.data.device import keep_on_device
from zoo.data.splits import check_batch_size, check_fractions
from zoo.errors import ZooError
from zoo.protocols import TrainingBatches
from zoo.spec import DETECTION, SEGMENTATION, DataSpec, spec_from_dict

FULL_BATCH = "full"


class InMemoryDataModule(L.LightningDataModule):
    """Holds ``splits`` (``train``/``val``/``test`` -> ``(x, y)``) and a ``spec``; subclasses fill both in ``build``
    and declare ``input_kind`` (``zoo.spec``: table, image or text).

    Batches are slices of those tensors (:class:`TensorBatches`); training batches are shuffled per epoch and, when
    ``augment`` is set, augmented as whole batches. On a GPU with room to spare the splits move there once
    (``zoo.data.device.keep_on_device``); training batches come in groups when the task runs several steps at once
    (``zoo.protocols.TrainingBatches``).
    """

    input_kind = ""  # zoo.spec.TABLE, IMAGE or TEXT: what one sample is

    def __init__(
        self,
        name: str,
        batch_size: int | str = 32,
        eval_batch_size: int = 1024,
        test_fraction: float = 0.2,
        val_fraction: float = 0.1,
        split_seed: int = 0,
    ) -> None:
        super().__init__()
        check_fractions(test_fraction, val_fraction)
        self.name = name
        self.batch_size = check_batch_size(batch_size, full=FULL_BATCH)
        self.eval_batch_size = check_batch_size(eval_batch_size, key="data.eval_batch_size")
        self.test_fraction = test_fraction
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.augment: Augment | None = None
        self._spec: DataSpec | None = None
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._on_device = False  # the splits were offered to the trainer's device (keep_on_device)

    def build(self) -> DataSpec:
        """Load the data, fill ``self.splits`` and return the spec."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self._spec is None:
            self._spec = self.build()

    @property
    def spec(self) -> DataSpec:
        self.setup()
        assert self._spec is not None
        return self._spec

    def _batches(
        self,
        split: str,
        batch_size: int | str,
        shuffle: bool,
        augment: Augment | None = None,
        group: int = 1,
        plans: bool = False,
    ) -> TensorBatches:
        if self.trainer is not None and not self._on_device:
            self.splits = keep_on_device(self.splits, self.trainer.strategy.root_device)
            self._on_device = True
        x, y = self.splits[split]
        size = len(x) if batch_size == FULL_BATCH else batch_size
        task = self._spec.task if self._spec is not None else None
        targets = {SEGMENTATION: "masks", DETECTION: "boxes"}.get(task, "labels")
        seed = torch.initial_seed()
        return TensorBatches(
            x, y, max(1, size), shuffle, seed, augment=augment, targets=targets, group=group, plans=plans
        )

    def train_dataloader(self) -> TensorBatches:
        overfit = self.trainer is not None and self.trainer.overfit_batches > 0  # the same batches every epoch
        task = self.trainer.lightning_module if self.trainer is not None else None
        wants = task if isinstance(task, TrainingBatches) else None
        augment = None if overfit else self.augment
        if wants is not None and wants.single_pass:  # one pass summing HᵀH (ELM): no steps, evaluation's batch sizes
            return self._batches("train", self.eval_batch_size, shuffle=False, augment=augment)
        group = wants.steps_per_execution if wants is not None and isinstance(wants.steps_per_execution, int) else 1
        plans = wants is not None and wants.records_groups  # groups gathered by a recorded CUDA graph
        return self._batches("train", self.batch_size, shuffle=not overfit, augment=augment, group=group, plans=plans)

    def groups_batches(self) -> bool:
        """Whether training batches are slices of tensors in memory, which can come K at a time (the fast path)."""
        return not self.streams

    @property
    def streams(self) -> bool:
        """Whether the pictures stay on disk (``data.in_memory=false``, ``zoo.data.files``) instead of in tensors."""
        return any(not isinstance(x, torch.Tensor) for x, _ in self.splits.values())

    def require_memory(self, what: str) -> None:
        """Stop ``what`` (cv.folds, compare...) on streamed data, which it cannot slice, with the fix."""
        if self.streams:
            raise ZooError(
                f"{what} needs a data set held in memory; data={self.name} streams from disk; set data.in_memory=true"
            )

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        # A group of mini-batches (zoo.tasks.grouped) already on the device, or a plan of one: Lightning's walk over
        # the list costs ~1 ms a group for nothing.
        if isinstance(batch, PlannedGroup) or (isinstance(batch, list) and all(_tensors_on(p, device) for p in batch)):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def reference_dataloader(self) -> TensorBatches:
        """The training split in order, unaugmented, in evaluation-sized batches: what a metric compares against
        (a nearest-neighbour classifier's memory)."""
        return self._batches("train", self.eval_batch_size, shuffle=False)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test", self.eval_batch_size, shuffle=False)

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: what the data module fitted on the training split (subclasses add theirs)."""
        return {"spec": self.spec.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (a resumed run, or ``scripts/predict.py`` without the training files)."""
        self._spec = spec_from_dict(state["spec"])

    def encode(self, inputs: Any) -> torch.Tensor:
        """New inputs (a table's rows, image files...) as the tensor the model takes, preprocessed as in training."""
        raise NotImplementedError(f"data={self.name} does not encode new inputs")


def _tensors_on(pair: Any, device: torch.device) -> bool:
    """Whether ``pair`` is a mini-batch tuple whose tensors all sit on ``device``."""
    return isinstance(pair, tuple) and all(isinstance(t, torch.Tensor) and t.device == device for t in pair)
