"""Segmentation data: a class index for every pixel. ``shapes`` (generated, offline), ``pets`` (Oxford-IIIT Pet
trimaps, downloaded by torchvision) and ``masks`` (the user's own ``images/`` + ``masks/`` folders).

Images stay in memory as uint8 ``[N, C, H, W]``, masks as uint8 ``[N, H, W]``; training batches are augmented with
their masks (a shifted or mirrored image gets the same shift or mirror of its mask).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.data.images import ImageDataModule, ImageSet
from zoo.data.pictures import IMAGE_SUFFIXES, check_color, check_image_size, opened, read_images, read_pixels
from zoo.data.shapes import SHAPES, GeneratedShapes
from zoo.errors import ZooError
from zoo.spec import BACKGROUND, SEGMENTATION

log = logging.getLogger(__name__)


class SegmentationDataModule(ImageDataModule):
    """Base of the segmentation sets: ``load`` returns images and masks; splits are random (not stratified)."""

    task = SEGMENTATION
    offline_sets = "shapes, masks (your own folder)"


class ShapesDataModule(GeneratedShapes, SegmentationDataModule):
    """Generated images with circles, squares and triangles (see :func:`zoo.data.shapes.draw_shapes`); the mask
    classes are background, circle, square and triangle. ``seed`` fixes the images themselves."""

    def load(self) -> ImageSet:
        scenes = self.draw()
        return ImageSet(torch.from_numpy(scenes.images), torch.from_numpy(scenes.masks), [BACKGROUND, *SHAPES])


# -- the Oxford-IIIT Pet trimaps (torchvision) -------------------------------------------------------------

PETS_FOLDER = "oxford-iiit-pet"
PET_CLASSES = [BACKGROUND, "pet", "border"]  # trimap values 2, 1, 3 become 0, 1, 2
TRIMAP_TO_CLASS = np.array([0, 1, 0, 2], dtype=np.uint8)  # index: the trimap's value (0 never occurs)


class PetsDataModule(SegmentationDataModule):
    """Oxford-IIIT Pet: 7,349 photos of 37 cat and dog breeds with trimaps (pet, background, border), split into
    the official trainval (3,680) and test (3,669) lists. torchvision downloads them into
    ``<data_dir>/oxford-iiit-pet``; each photo and trimap is resized to ``image_size`` x ``image_size``."""

    def __init__(self, image_size: int = 128, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image_size = check_image_size(image_size, least=8)

    def load(self) -> ImageSet:
        folder = self.data_dir / PETS_FOLDER
        lists = [folder / "annotations" / f"{split}.txt" for split in ("trainval", "test")]
        if not all(p.is_file() for p in lists):
            self._download(folder)
        splits = [self._read_split(folder, path) for path in lists]
        (x, y), test = splits
        return ImageSet(x, y, list(PET_CLASSES), test)

    def _download(self, folder: Path) -> None:
        if self.download:
            import torchvision.datasets

            try:
                torchvision.datasets.OxfordIIITPet(str(self.data_dir), target_types="segmentation", download=True)
                return
            except Exception as err:  # no network, a failed checksum...
                log.debug("torchvision: %s", err)
        raise self.missing_files(folder, "the images/ and annotations/ folders (with trainval.txt, test.txt)")

    def _read_split(self, folder: Path, listing: Path) -> tuple[torch.Tensor, torch.Tensor]:
        """The photos and trimaps named in one split list (lines ``Image CLASS-ID SPECIES BREED-ID``)."""
        names = [line.split()[0] for line in listing.read_text().splitlines() if line.strip() and line[0] != "#"]
        images = [folder / "images" / f"{n}.jpg" for n in names]
        trimaps = [folder / "annotations" / "trimaps" / f"{n}.png" for n in names]
        for path in (*images, *trimaps):
            if not path.is_file():
                raise ZooError(f"data=pets: '{path}' (listed in '{listing}') not found; delete '{folder}' to download")
        x = np.stack(read_images(images, "rgb", self.image_size))
        masks = np.stack([read_mask(p, self.image_size) for p in trimaps])
        if masks.max() > 3:
            bad = trimaps[int(np.argmax(masks.reshape(len(masks), -1).max(1)))]
            raise ZooError(f"data=pets: trimap '{bad}' has values above 3 (1 pet, 2 background, 3 border)")
        return torch.from_numpy(x), torch.from_numpy(TRIMAP_TO_CLASS[masks])


# -- the user's own images and masks ------------------------------------------------------------------------


class MaskFolderDataModule(SegmentationDataModule):
    """``path/images/NAME.jpg|png`` with ``path/masks/NAME.png``: single-channel PNGs whose pixel values are class
    indices 0..K-1 (0 = background). ``class_names`` names them (default: background, class1, ...; K the number of
    distinct values found); ``binary: true`` reads every non-zero value as the foreground (masks saved as 0/255).
    ``image_size`` resizes both to a square (null keeps the size, which then must be the same for all)."""

    def __init__(
        self,
        path: str,
        image_size: int | None = 128,
        color: str = "rgb",
        class_names: list[str] | None = None,
        binary: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.image_size = None if image_size is None else check_image_size(image_size, least=8)
        self.color = check_color(color)
        self.class_names = list(class_names) if class_names else None
        if binary and self.class_names and len(self.class_names) != 2:
            raise ZooError(f"data.binary=true makes two classes but data.class_names has {len(self.class_names)}")
        self.binary = binary

    def load(self) -> ImageSet:
        images, masks = self._pairs()
        for image_path, mask_path in zip(images, masks, strict=True):  # as saved: data.image_size resizes both
            (iw, ih), (mw, mh) = picture_size(image_path), picture_size(mask_path)
            if (iw, ih) != (mw, mh):
                raise ZooError(
                    f"data.path: mask '{mask_path}' is {mw}x{mh} but its image '{image_path}' is {iw}x{ih}; give masks "
                    "the size of their images"
                )
        x = read_images(images, self.color, self.image_size)
        y = [read_mask(p, self.image_size) for p in masks]
        if len({a.shape for a in x}) > 1:
            raise ZooError(
                f"data.path: the images in '{self.path / 'images'}' differ in size; set data.image_size=N to resize"
            )
        y = [(m > 0).astype(np.uint8) for m in y] if self.binary else y
        names = [BACKGROUND, "foreground"] if self.binary else self.class_names
        if names is None:  # as many classes as distinct values, which must then be 0..K-1
            found = set().union(*(np.unique(m).tolist() for m in y))
            names = [BACKGROUND, *(f"class{i}" for i in range(1, max(2, len(found))))]
        for mask, mask_path in zip(y, masks, strict=True):
            if mask.max() >= len(names):
                hint = "; for 0/255 binary masks set data.binary=true" if mask.max() == 255 else ""
                given = "data.class_names names" if self.class_names else "the masks hold"
                raise ZooError(
                    f"data.path: mask '{mask_path}' has class value {int(mask.max())} but {given} {len(names)} "
                    f"classes (values 0..{len(names) - 1}){hint}"
                )
        return ImageSet(torch.from_numpy(np.stack(x)), torch.from_numpy(np.stack(y).astype(np.uint8)), names)

    def _pairs(self) -> tuple[list[Path], list[Path]]:
        """Image and mask files matched by name (the stem); any file without its partner is an error."""
        image_dir, mask_dir = self.path / "images", self.path / "masks"
        if not (image_dir.is_dir() and mask_dir.is_dir()):
            raise ZooError(
                f"data.path: '{self.path}' needs the subfolders images/ and masks/ (a mask per image, same name)"
            )
        images = {p.stem: p for p in sorted(image_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
        masks = {p.stem: p for p in sorted(mask_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
        if not images:
            raise ZooError(f"data.path: '{image_dir}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
        for stem, image in images.items():
            if stem not in masks:
                raise ZooError(f"data.path: image '{image}' has no mask '{mask_dir / stem}.png'; add it or remove it")
        for stem, mask in masks.items():
            if stem not in images:
                raise ZooError(f"data.path: mask '{mask}' has no image of the same name in '{image_dir}'")
        return list(images.values()), [masks[stem] for stem in images]


def picture_size(path: Path) -> tuple[int, int]:
    """An image file's width and height from its header (nothing decoded); a broken file is a one-line error."""
    with opened(path) as img:
        return img.size


def read_mask(path: Path, size: int | None) -> np.ndarray:
    """A mask file as uint8 ``[H, W]`` class indices (nearest-neighbour resizing keeps them whole)."""
    mask = read_pixels(path, None, size, nearest=True)
    if mask.ndim != 2:
        raise ZooError(
            f"data.path: mask '{path}' has {mask.shape[-1]} channels; a mask is one channel of class indices "
            "(a greyscale or palette PNG)"
        )
    if mask.min() < 0 or mask.max() > 255:
        raise ZooError(f"data.path: mask '{path}' has values outside 0..255; class indices must fit in a byte")
    return mask.astype(np.uint8)
