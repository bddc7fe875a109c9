"""What a data set yields, so that a task can size its net and check that the model fits: nobody types
``in_features`` by hand.

A data module declares two kinds; nothing guesses them from tensor shapes:

- ``input_kind``, what one sample is: ``table`` (float features ``[F]``), ``image`` (uint8 pixels ``[C, H, W]``) or
  ``text`` (int64 token ids ``[L]``, padded with ``pad_id``). Each has its spec class below, with its own fields.
- ``task``, what is predicted: ``classification`` (a class index per sample), ``regression`` (float targets),
  ``segmentation`` (a class index per pixel, uint8 ``[N, H, W]``) or ``detection`` (boxes per image, float
  ``[N, max_boxes, 5]`` rows ``(class, x1, y1, x2, y2)``; class -1 pads).

Specs travel inside checkpoints as plain dicts (:meth:`DataSpec.to_dict`, :func:`spec_from_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from math import prod
from typing import Any, ClassVar

from zoo.errors import ZooError

TABLE, IMAGE, TEXT = "table", "image", "text"
ANY = "any"  # a model config's input for a net of your own (zoo.fit(net=...)): it reads the data as it comes
CLASSIFICATION, REGRESSION, SEGMENTATION, DETECTION = "classification", "regression", "segmentation", "detection"
BACKGROUND = "background"  # segmentation: class 0 by convention; mean IoU and Dice leave it out when it is named so


@dataclass
class DataSpec:
    """Shape and kinds of a data set; a subclass per input kind adds that kind's fields."""

    input_kind: ClassVar[str] = ""

    name: str
    task: str  # CLASSIFICATION, REGRESSION, SEGMENTATION or DETECTION
    input_shape: list[int]
    num_train: int
    class_names: list[str] = field(default_factory=list)  # classification, segmentation, detection
    target_names: list[str] = field(default_factory=list)  # regression only
    target_mean: list[float] = field(default_factory=list)  # regression targets are learnt scaled by these
    target_std: list[float] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_targets(self) -> int:
        return len(self.target_names)

    @property
    def num_features(self) -> int:
        """Numbers per sample: what a net that reads rows (a flattened image included) takes."""
        return prod(self.input_shape)

    @property
    def is_image(self) -> bool:
        return self.input_kind == IMAGE

    @property
    def is_text(self) -> bool:
        return self.input_kind == TEXT

    def to_dict(self) -> dict[str, Any]:
        return {"input_kind": self.input_kind, **asdict(self)}


@dataclass
class TableSpec(DataSpec):
    """Rows of float features ``[F]`` (tables; also what a flat model reads of an image)."""

    input_kind: ClassVar[str] = TABLE

    feature_names: list[str] = field(default_factory=list)


@dataclass
class ImageSpec(DataSpec):
    """uint8 pixels ``[C, H, W]``, with the training split's statistics in [0, 1] units: one per channel, or one per
    pixel (``C*H*W``) where the data module standardises each pixel like a table's column."""

    input_kind: ClassVar[str] = IMAGE

    pixel_mean: list[float] = field(default_factory=list)
    pixel_std: list[float] = field(default_factory=list)


@dataclass
class TextSpec(DataSpec):
    """int64 token ids ``[max_length]`` in ``[0, vocab_size)``, padded with ``pad_id``."""

    input_kind: ClassVar[str] = TEXT

    vocab_size: int = 0
    pad_id: int = 0


SPECS: dict[str, type[DataSpec]] = {TABLE: TableSpec, IMAGE: ImageSpec, TEXT: TextSpec}


def spec_from_dict(d: dict[str, Any]) -> DataSpec:
    """The spec a :meth:`DataSpec.to_dict` wrote (in a checkpoint or a data module's state)."""
    d = dict(d)
    kind = d.pop("input_kind", None)
    if kind not in SPECS:
        raise ZooError(
            f"the stored data spec is of input kind {kind!r}, not one of {', '.join(SPECS)}: it was written by "
            "another zoo version; train the model again"
        )
    return SPECS[kind](**d)


def check_same_inputs(trained: DataSpec, data: DataSpec) -> None:
    """A trained model is tested only on data it reads and predicts the way it learnt to: the same kind of inputs,
    the same classes or targets, and for tables and images the same shape and columns (texts are encoded again
    with the run's own tokenizer and length). ``data`` is the spec the data set gives by itself, before the run's
    fitted state is loaded into it."""
    checks = [
        ("{} inputs", trained.input_kind, data.input_kind),
        ("a {} task", trained.task, data.task),
        ("classes {}", trained.class_names, data.class_names),
        ("targets {}", trained.target_names, data.target_names),
    ]
    if not trained.is_text:
        checks += [
            ("inputs of shape {}", trained.input_shape, data.input_shape),
            ("columns {}", getattr(trained, "feature_names", []), getattr(data, "feature_names", [])),
        ]
    for what, was, now in checks:
        if was != now:
            raise ZooError(
                f"data={data.name} gives {what.format(_brief(now))} but the model was trained on "
                f"{what.format(_brief(was))} (data={trained.name}); test it on data like that"
            )


def _brief(value: Any) -> str:
    """A value for a one-line error: a long list cut to its first five items and its length."""
    if isinstance(value, list) and len(value) > 6:
        return f"[{', '.join(map(str, value[:5]))}, ... ({len(value)})]"
    return str(value)
