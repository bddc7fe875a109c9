"""Reading pictures: one file or many (decoded in threads) as uint8 ``[C, H, W]`` arrays, and the checks of the
settings that say how (``data.image_size``, ``data.color``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ZooError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
COLOR_MODES = {"rgb": "RGB", "grey": "L"}


def read_images(paths: list[Path], color: str, size: int | None) -> list[np.ndarray]:
    """Pictures as uint8 ``[C, H, W]`` arrays in ``color`` (rgb or grey), resized to ``size`` x ``size`` unless
    ``size`` is None; decoded in threads (PIL releases the GIL)."""

    with ThreadPoolExecutor() as pool:
        return list(pool.map(lambda path: read_image(path, color, size), paths))


def read_image(path: Path, color: str, size: int | None) -> np.ndarray:
    """One picture as a uint8 ``[C, H, W]`` array (see :func:`read_images`)."""
    array = read_pixels(path, COLOR_MODES[color], size)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def read_pixels(path: Path, mode: str | None, size: int | None, nearest: bool = False) -> np.ndarray:
    """One image file as an ``[H, W]`` or ``[H, W, C]`` array, converted to PIL ``mode`` (None keeps the file's:
    a mask's class indices) and resized (bilinear, or nearest for masks); a broken file is a one-line error."""
    from PIL import Image

    with opened(path) as img:
        img = img.convert(mode) if mode else img
        if size:
            img = img.resize((size, size), Image.NEAREST if nearest else Image.BILINEAR)
        return np.asarray(img)


@contextlib.contextmanager
def opened(path: Path, setting: str = "data.path") -> Iterator[Any]:
    """The PIL image at ``path``; a file PIL cannot read (or decode inside the block) is one line naming the
    setting that gave it and the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            yield img
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ZooError(f"{setting}: cannot read image '{path}' ({err}); delete or replace that file") from None


def check_image_size(image_size: Any, least: int = 1) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < least:
        raise ZooError(f"data.image_size={image_size!r} must be an integer >= {least} (pixels per side)")
    return image_size


def check_color(color: str) -> str:
    if color not in COLOR_MODES:
        raise ZooError(f"data.color={color!r} is not valid; choose one of {', '.join(COLOR_MODES)}")
    return color
