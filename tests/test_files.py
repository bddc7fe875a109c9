"""A folder of pictures streamed from disk (data.in_memory=false): DataLoader workers, pinned memory on a GPU, the
same splits and statistics as in memory, clear errors."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from tests.conftest import compose
from tests.formats import write_image_folder
from zoo.data.files import ImageFiles, file_loader
from zoo.errors import ZooError
from zoo.run import build_datamodule


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("pictures"), per_class=30)


def folder(pictures, *extra: str) -> list[str]:
    return ["data=images", f"data.path={pictures}", "data.image_size=16", *extra]


def test_a_streamed_folder_has_the_splits_and_statistics_of_the_same_folder_in_memory(tmp_path, pictures):
    cfg = compose([*folder(pictures), "model=cnn"], tmp_path)
    memory = build_datamodule(cfg.data, cfg.model)
    cfg = compose([*folder(pictures, "data.in_memory=false", "data.num_workers=2"), "model=cnn"], tmp_path)
    stream = build_datamodule(cfg.data, cfg.model)
    assert isinstance(stream.splits["train"][0], ImageFiles)
    for split in ("train", "val", "test"):
        assert torch.equal(stream.splits[split][1], memory.splits[split][1])
    # 42 training pictures, fewer than the statistics sample: the same mean and std as in memory
    assert stream.spec.pixel_mean == pytest.approx(memory.spec.pixel_mean)
    assert stream.spec.pixel_std == pytest.approx(memory.spec.pixel_std)
    assert stream.spec.input_shape == memory.spec.input_shape == [3, 16, 16]

    loader = stream.train_dataloader()
    assert isinstance(loader, torch.utils.data.DataLoader)
    assert loader.num_workers == 2 and loader.persistent_workers and not loader.pin_memory  # CPU: nothing to pin
    x, y = next(iter(stream.val_dataloader()))
    assert torch.equal(x, memory.splits["val"][0]) and torch.equal(y, memory.splits["val"][1])


def test_batches_bound_for_a_gpu_are_pinned(pictures):
    images = ImageFiles(sorted(pictures.rglob("*.png")), "rgb", 16)
    loader = file_loader(images, torch.zeros(len(images), dtype=torch.long), 8, True, 0, 0, torch.device("cuda", 0))
    assert loader.pin_memory and not loader.persistent_workers  # no workers: decoded in the main process


def test_a_streamed_folder_trains_with_workers_and_augmentation(train_run, pictures):
    overrides = folder(pictures, "data.in_memory=false", "data.num_workers=2", "data.augment.crop_padding=2")
    metrics, out = train_run(*overrides, "model=cnn", "trainer.max_epochs=3")
    assert metrics["test/acc"] >= 0.9  # bright against dark squares
    assert (out / "metrics.json").is_file() and (out / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.num_workers=-1", "data.num_workers=-1 must be auto or an integer >= 0"),
        ("data.in_memory=maybe", "data.in_memory='maybe' must be true (decode every picture once) or false"),
        ("cv.folds=3", "cv.folds needs a data set held in memory; data=images streams from disk; set data.in_memory"),
    ],
)
def test_streaming_mistakes_are_one_line_errors(train_run, pictures, override, message):
    with pytest.raises(ZooError, match=re.escape(message)):
        train_run(*folder(pictures, "data.in_memory=false"), "model=cnn", override)


def test_compare_refuses_streamed_data_before_fitting_anything(tmp_path, pictures):
    from tests.test_cli import script

    overrides = folder(pictures, "data.in_memory=false")
    proc = script("compare", *overrides, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2 and "fitting" not in proc.stdout  # nothing trained, then thrown away
    assert proc.stderr.strip().endswith(
        "error: compare (with logreg, svm, random_forest, knn) needs a data set held in memory; "
        "data=images streams from disk; set data.in_memory=true"
    )


def test_decoding_a_picture_raises_no_warning_in_a_fresh_process(pictures):
    # PIL's pixels are read-only; wrapped as they are, torch warns once in every DataLoader worker
    picture = str(next(pictures.rglob("*.png")))
    code = f"from zoo.data.files import ImageFiles; print(ImageFiles([{picture!r}], 'grey', 16)[0].shape)"
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and "torch.Size([1, 16, 16])" in proc.stdout, proc.stderr[-500:]
