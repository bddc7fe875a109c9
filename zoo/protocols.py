"""The contract between zoo's parts: what every net provides, and the optional capabilities that a task, a callback
or the run folder's writer uses where a net, a data module or a task has them.

zoo asks ``isinstance(net, FineTunable)``; a net or data module of your own gets a capability by defining the
members listed here (CONTRIBUTING.md shows a whole new model and data set). Nothing here imports torch at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zoo.spec import DataSpec


# -- nets ------------------------------------------------------------------------------------------------------


@runtime_checkable
class Net(Protocol):
    """Every net: built from the data's spec and its own settings (the model config's ``net`` block, less
    ``_target_``); ``out_features`` is what the task needs (classes, targets, an embedding's size)."""

    @classmethod
    def from_spec(cls, spec: DataSpec, out_features: int, **settings: Any) -> nn.Module: ...


@runtime_checkable
class FineTunable(Protocol):
    """A backbone (``features``) and a ``head``: ``model.finetune.mode=frozen|gradual`` freezes the backbone and
    trains the head (``zoo.callbacks.Finetune``)."""

    features: nn.Module | list[nn.Module]
    head: nn.Module


@runtime_checkable
class ClosedForm(Protocol):
    """Fitted by a closed-form solve over one pass of the training set, not by an optimiser (the ELM): the task
    feeds every training batch to ``accumulate`` and calls ``solve`` once after the pass."""

    def accumulate(self, x: torch.Tensor, targets: torch.Tensor) -> None: ...

    def solve(self) -> None: ...


@runtime_checkable
class WordEmbeddings(Protocol):
    """A text net whose first layer is an ``nn.Embedding`` of the data's vocabulary: the test report draws the
    embeddings of frequent words."""

    embedding: nn.Embedding


@runtime_checkable
class RestoresWithoutSource(Protocol):
    """A net whose pretrained weights come from elsewhere (a folder, a file, the hub) and that a checkpoint rebuilds
    without them: the task stores these settings in place of the run's ``model.net``."""

    def restore_settings(self, settings: dict[str, Any]) -> dict[str, Any]: ...


@runtime_checkable
class SavesPretrained(Protocol):
    """Writes its tested weights as a hub would serve them (``<run>/pretrained``), for ``model.weights=`` later."""

    def save_pretrained(
        self, folder: Path, mean: list[float], std: list[float], class_names: list[str] | None = None
    ) -> Path: ...


@dataclass(frozen=True)
class PixelInput:
    """How an image net wants its pixels; ``zoo.nets.adapt.ImageInput`` turns raw uint8 images into that."""

    size: tuple[int, int] | None = None  # (H, W), e.g. LeNet-5's 32x32; None takes any size
    fit: str = "auto"  # how other sizes reach ``size``: auto | pad | resize
    mean: list[float] | None = None  # a pretrained backbone's normalisation; None: the training split's statistics
    std: list[float] | None = None


@runtime_checkable
class WantsPixels(Protocol):
    """An image net with wishes about its input's size or normalisation (no wishes: the data's size and
    statistics)."""

    pixel_input: PixelInput


@runtime_checkable
class NHWCOnCPU(Protocol):
    """An image net whose convolutions run faster on the CPU in channels-last (NHWC) memory, oneDNN's own layout:
    ``channels_last=auto`` (the default) puts it there when the run is on the CPU. ``False`` where it does not pay
    (a timm backbone inside)."""

    channels_last_on_cpu: bool


@runtime_checkable
class GridDetector(Protocol):
    """A one-stage detector: outputs ``[N, 5 + K, H / stride, W / stride]`` (``zoo.tasks.detection``)."""

    stride: int


# -- data modules ----------------------------------------------------------------------------------------------


@runtime_checkable
class EncodesInputs(Protocol):
    """Turns new inputs (table rows, image files, texts) into the tensor the model takes, preprocessed as in
    training, from its ``state_dict`` alone (``scripts/predict.py``, without the training files)."""

    def encode(self, inputs: Any) -> torch.Tensor: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class DecodesText(Protocol):
    """Text data that can show ids as the tokenizer reads them (the misclassified texts, the word embeddings)."""

    def decode(self, ids: torch.Tensor) -> str: ...

    def frequent_tokens(self, n: int) -> list[int]: ...


@runtime_checkable
class RunFiles(Protocol):
    """What the data fitted that a user may want beside the run (a text tokenizer): ``{file name: text}``."""

    def run_files(self) -> dict[str, str]: ...


@runtime_checkable
class ReferenceSplit(Protocol):
    """The training split in order, unaugmented: what a nearest-neighbour metric compares against."""

    def reference_dataloader(self) -> Any: ...


@runtime_checkable
class SplitsInMemory(Protocol):
    """``splits`` (``train``/``val``/``test`` -> ``(x, y)`` tensors) that cross-validation re-cuts and
    ``scripts/compare.py`` hands to scikit-learn; ``require_memory`` refuses where the pictures stay on disk."""

    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]

    def require_memory(self, what: str) -> None: ...


@runtime_checkable
class GroupsBatches(Protocol):
    """Training batches sliced from tensors in memory, which the data module can hand over K at a time when the
    task asks (``TrainingBatches.steps_per_execution``): zoo's fast path."""

    def groups_batches(self) -> bool: ...


# -- tasks -----------------------------------------------------------------------------------------------------


@runtime_checkable
class TrainingBatches(Protocol):
    """What a task asks of its training batches; an in-memory data module reads it from the trainer's module."""

    steps_per_execution: int | str  # mini-batches per Lightning step (one optimiser step each); 1: one at a time
    single_pass: bool  # one ordered pass in evaluation-sized batches (a closed-form fit), not shuffled mini-batches
    records_groups: bool  # full groups come as plans that a recorded CUDA graph gathers itself (zoo.tasks.graphed)


@runtime_checkable
class ScalesFeatures(Protocol):
    """Tables whose columns the net reads standardised: each feature's training mean and std, in ``feature_names``
    order (1 and 0 where a column is not scaled), so a linear model's weights can be told in the data's own units."""

    def feature_scaling(self) -> tuple[list[float], list[float]]: ...
