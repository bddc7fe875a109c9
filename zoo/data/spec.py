"""What a data set yields, so that a task can size its net: nobody types ``in_features`` by hand."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from math import prod
from typing import Any

CLASSIFICATION = "classification"  # y: class index per sample
REGRESSION = "regression"  # y: float targets per sample
SEGMENTATION = "segmentation"  # y: a class index per pixel, uint8 [N, H, W]
DETECTION = "detection"  # y: boxes per image, float [N, max_boxes, 5] rows (class, x1, y1, x2, y2); class -1 = none


@dataclass
class DataSpec:
    """Shape and kind of a data set, stored in checkpoints as plain types."""

    name: str
    task: str  # one of the kinds above
    input_shape: list[int]
    num_train: int
    class_names: list[str] = field(default_factory=list)  # classification, segmentation, detection
    target_names: list[str] = field(default_factory=list)  # regression only
    feature_names: list[str] = field(default_factory=list)
    target_mean: list[float] = field(default_factory=list)  # regression targets are scaled by these
    target_std: list[float] = field(default_factory=list)
    pixel_mean: list[float] = field(default_factory=list)  # images only: training-split statistics per channel
    pixel_std: list[float] = field(default_factory=list)  # (or per pixel, C*H*W), in [0, 1] units; pixels are uint8
    vocab_size: int = 0  # text only: token ids lie in [0, vocab_size); input_shape is [max_length]
    pad_id: int = 0  # text only: the id that pads every sequence to max_length

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_targets(self) -> int:
        return len(self.target_names)

    @property
    def is_image(self) -> bool:
        """Images are ``[channels, height, width]`` uint8 tensors; tables are ``[features]`` float tensors."""
        return len(self.input_shape) == 3

    @property
    def is_text(self) -> bool:
        """Text is int64 token ids ``[max_length]``, padded with ``pad_id``."""
        return self.vocab_size > 0

    @property
    def num_features(self) -> int:
        return prod(self.input_shape)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        return cls(**d)
