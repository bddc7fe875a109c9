"""Object-detection data: generated scenes of circles, squares and triangles (``data=boxes``, offline, any size and
difficulty) and the user's own pictures labelled in the YOLO text format (``data=yolo``).

Images are held in memory as uint8 ``[N, C, H, W]``; targets as float ``[N, max_boxes, 5]`` rows ``(class, x1, y1,
x2, y2)`` in pixels (x2/y2 exclusive), padded with rows of -1, so batches are tensor slices like any image set's.
``augment`` moves the boxes with the pixels: a random shift (``crop_padding``) clips them to the picture and drops
those it pushes out; a horizontal flip mirrors them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.data.images import ImageDataModule, ImageSet
from zoo.data.pictures import IMAGE_SUFFIXES, check_color, check_image_size, read_images
from zoo.data.shapes import SHAPES, GeneratedShapes
from zoo.errors import ZooError
from zoo.spec import DETECTION


class DetectionDataModule(ImageDataModule):
    """Base for detection sets; subclasses implement ``load_scenes``. Splits are random (by ``split_seed``);
    ``data.classes`` and ``data.train_per_class`` are refused (every image holds several classes)."""

    task = DETECTION
    max_boxes = 1  # target rows per image at least (more when an image holds more boxes)

    def load_scenes(self) -> tuple[torch.Tensor, list[np.ndarray], list[str]]:
        """Images uint8 ``[N, C, H, W]``, one ``[k, 5]`` array of ``(class, x1, y1, x2, y2)`` rows per image, and
        the class names."""
        raise NotImplementedError

    def load(self) -> ImageSet:
        x, boxes, class_names = self.load_scenes()
        return ImageSet(x, pad_boxes(boxes, self.max_boxes), list(class_names))


def pad_boxes(boxes: list[np.ndarray], max_boxes: int = 1) -> torch.Tensor:
    """Per-image ``[k, 5]`` arrays -> one float tensor ``[N, max(max_boxes, largest k), 5]``, padded with -1."""
    rows = max([max_boxes, *(len(b) for b in boxes)])
    y = torch.full((len(boxes), rows, 5), -1.0)
    for i, b in enumerate(boxes):
        y[i, : len(b)] = torch.as_tensor(b, dtype=torch.float32)
    return y


class BoxesDataModule(GeneratedShapes, DetectionDataModule):
    """Generated pictures (see :func:`zoo.data.shapes.draw_shapes`), each with 1..``max_shapes`` circles, squares
    and triangles ``min_size``..``max_size`` pixels across, and their boxes; ``seed`` picks the pictures."""

    @property
    def max_boxes(self) -> int:  # the same target shape whatever the draws placed
        return self.scene["max_shapes"]

    def load_scenes(self) -> tuple[torch.Tensor, list[np.ndarray], list[str]]:
        scenes = self.draw()
        return torch.from_numpy(scenes.images), scenes.boxes, list(SHAPES)


class YoloFolderDataModule(DetectionDataModule):
    """``path/images/**/<name>.jpg|png|...`` with ``path/labels/**/<name>.txt`` beside them (the same relative path),
    one ``class cx cy w h`` line per object, numbers normalised by the image's width and height (the YOLO text
    format; an empty file means no objects). Class names come from ``class_names`` or ``path/classes.txt`` (one per
    line). Pictures are decoded once and resized to ``image_size`` x ``image_size``; boxes follow."""

    def __init__(
        self,
        path: str,
        image_size: int = 128,
        color: str = "rgb",
        class_names: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path, self.image_size, self.color = Path(path), check_image_size(image_size), check_color(color)
        self.class_names = [str(c) for c in class_names] if class_names else None

    def load_scenes(self) -> tuple[torch.Tensor, list[np.ndarray], list[str]]:
        images_dir = self.path / "images"
        if not images_dir.is_dir():
            raise ZooError(
                f"data.path: folder '{images_dir}' not found; give a folder with images/ and labels/ subfolders "
                "(YOLO text format)"
            )
        files = sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ZooError(f"data.path: '{images_dir}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
        names = self._class_names()
        boxes = [self._read_labels(self._label_file(f, images_dir), len(names)) for f in files]
        return torch.from_numpy(np.stack(read_images(files, self.color, self.image_size))), boxes, names

    def _class_names(self) -> list[str]:
        if self.class_names:
            return self.class_names
        listing = self.path / "classes.txt"
        if not listing.is_file():
            raise ZooError(
                f"data.path: no class names: give data.class_names=[name0,name1,...] or write '{listing}' "
                "with one name per line"
            )
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        if not names:
            raise ZooError(f"data.path: '{listing}' is empty; write one class name per line")
        return names

    def _label_file(self, image: Path, images_dir: Path) -> Path:
        label = (self.path / "labels" / image.relative_to(images_dir)).with_suffix(".txt")
        if not label.is_file():
            raise ZooError(
                f"data.path: image '{image}' has no label file '{label}'; add one (an empty file means no objects)"
            )
        return label

    def _read_labels(self, path: Path, num_classes: int) -> np.ndarray:
        """The file's ``class cx cy w h`` lines as ``(class, x1, y1, x2, y2)`` rows in ``image_size`` pixels."""
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            where = f"data.path: label file '{path}' line {number}"
            try:
                values = [float(v) for v in line.split()]
            except ValueError:
                values = []
            if len(values) != 5:
                raise ZooError(f"{where}: expected 5 numbers 'class cx cy w h', got {line.strip()!r}")
            label, cx, cy, w, h = values
            if label != int(label) or not 0 <= label < num_classes:
                raise ZooError(
                    f"{where}: class {line.split()[0]} is not a class index 0..{num_classes - 1} "
                    f"({', '.join(self._class_names())})"
                )
            if not all(0 <= v <= 1 for v in (cx, cy, w, h)) or w == 0 or h == 0:
                raise ZooError(
                    f"{where}: cx cy w h must lie in 0..1 (w, h > 0), normalised by the image size; got "
                    f"{' '.join(line.split()[1:])}"
                )
            x1, y1 = max(cx - w / 2, 0.0), max(cy - h / 2, 0.0)
            x2, y2 = min(cx + w / 2, 1.0), min(cy + h / 2, 1.0)
            rows.append([label, *(v * self.image_size for v in (x1, y1, x2, y2))])
        return np.array(rows, dtype=np.float32).reshape(-1, 5)
