"""Generated pictures of circles, squares and triangles, with a mask per pixel and a box per shape: data for
segmentation (``data=shapes``) and object detection (``data=boxes``) that needs no download and whose difficulty
is set by a few numbers (size, count, noise)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.errors import ZooError

SHAPES = ("circle", "square", "triangle")


@dataclass
class ShapeScenes:
    """``images`` uint8 ``[N, 3, H, W]``; ``masks`` uint8 ``[N, H, W]`` (0 background, 1 + shape index);
    ``boxes`` one float array ``[k, 5]`` per image: ``(shape index, x1, y1, x2, y2)`` in pixels, x2/y2 exclusive."""

    images: np.ndarray
    masks: np.ndarray
    boxes: list[np.ndarray]


def draw_shapes(
    count: int,
    image_size: int = 64,
    max_shapes: int = 3,
    min_size: int = 8,
    max_size: int = 20,
    noise: float = 0.05,
    seed: int = 0,
) -> ShapeScenes:
    """``count`` images, each with 1..``max_shapes`` shapes of random kind, colour, size (``min_size``..``max_size``
    pixels across) and place, not overlapping; a dark random background, plus Gaussian pixel noise of standard
    deviation ``noise`` (in units of the 0..255 range). The same arguments always give the same images."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32) + 0.5  # pixel centres
    images = np.empty((count, 3, image_size, image_size), dtype=np.uint8)
    masks = np.zeros((count, image_size, image_size), dtype=np.uint8)
    boxes = []
    for i in range(count):
        canvas = np.broadcast_to(rng.uniform(0, 90, size=(3, 1, 1)), (3, image_size, image_size)).copy()
        placed: list[np.ndarray] = []
        for _ in range(rng.integers(1, max_shapes + 1)):
            kind = int(rng.integers(len(SHAPES)))
            inside = _place(rng, kind, xx, yy, image_size, min_size, max_size, placed)
            if inside is None:  # no free room left in this image
                break
            canvas[:, inside] = rng.uniform(130, 255, size=(3, 1))
            masks[i][inside] = kind + 1
            rows, cols = np.nonzero(inside)
            placed.append(np.array([kind, cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float32))
        canvas += rng.normal(0, noise * 255, size=canvas.shape)
        images[i] = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
        boxes.append(np.stack(placed) if placed else np.zeros((0, 5), dtype=np.float32))
    return ShapeScenes(images, masks, boxes)


def _place(rng, kind, xx, yy, image_size, min_size, max_size, placed, tries: int = 30) -> np.ndarray | None:
    """A boolean map of one shape at a random free place (1 pixel apart from the others), or None."""
    for _ in range(tries):
        size = rng.uniform(min_size, max_size)
        half = size / 2
        cx, cy = rng.uniform(half, image_size - half, size=2)
        box = (cx - half - 1, cy - half - 1, cx + half + 1, cy + half + 1)
        if any(box[0] < b[3] and b[1] < box[2] and box[1] < b[4] and b[2] < box[3] for b in placed):
            continue
        if kind == 0:
            return (xx - cx) ** 2 + (yy - cy) ** 2 <= half**2
        if kind == 1:
            return (np.abs(xx - cx) <= half) & (np.abs(yy - cy) <= half)
        # an upright triangle: below the two slanted sides, above the base
        top, base = cy - half, cy + half
        return (yy <= base) & (np.abs(xx - cx) <= (yy - top) / 2)
    return None


class GeneratedShapes:
    """Mixin for the data modules that draw their pictures with :func:`draw_shapes` (``data=shapes``,
    ``data=boxes``): takes and checks its arguments, as ``data.count``, ``data.image_size``..."""

    def __init__(
        self,
        count: int = 1000,
        image_size: int = 64,
        max_shapes: int = 3,
        min_size: int = 8,
        max_size: int = 20,
        noise: float = 0.05,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for key, value, least in (("count", count, 2), ("image_size", image_size, 8), ("max_shapes", max_shapes, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ZooError(f"data.{key}={value!r} must be an integer >= {least}")
        if not 2 <= min_size <= max_size <= image_size:
            raise ZooError(
                f"data.min_size={min_size} and data.max_size={max_size} must satisfy 2 <= min_size <= max_size <= "
                f"image_size ({image_size})"
            )
        if not noise >= 0:
            raise ZooError(f"data.noise={noise} must be >= 0 (the pixel noise's standard deviation, 0..1 units)")
        self.scene = dict(
            count=count, image_size=image_size, max_shapes=max_shapes, min_size=min_size, max_size=max_size,
            noise=noise, seed=seed,
        )  # fmt: skip

    def draw(self) -> ShapeScenes:
        return draw_shapes(**self.scene)
