"""Object detection: generated and YOLO-folder data, box-aware augmentation, the grid's decoding, NMS and mAP, a
training run with its figures, evaluation from a checkpoint, W&B box overlays and one-line errors."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import compose
from tests.test_cli import script
from zoo.data.augment import Augment
from zoo.data.boxes import BoxesDataModule, YoloFolderDataModule
from zoo.data.shapes import SHAPES, draw_shapes
from zoo.errors import ZooError
from zoo.run import build_datamodule, build_task, evaluate

TINY = ["model=detector", "data=boxes", "data.count=100", "trainer.max_epochs=2"]


# -- data --------------------------------------------------------------------------------------------------


def test_boxes_data_holds_the_drawn_boxes_padded_per_image():
    dm = BoxesDataModule(name="boxes", count=60, image_size=48, max_shapes=4, min_size=6, max_size=14, seed=3)
    spec = dm.spec
    assert spec.task == "detection" and spec.input_shape == [3, 48, 48] and spec.class_names == list(SHAPES)
    x, y = dm.splits["train"]
    assert x.dtype == torch.uint8 and y.dtype == torch.float32 and y.shape[1:] == (4, 5)
    assert sum(len(s[0]) for s in dm.splits.values()) == 60 and spec.num_train == len(x)
    drawn = draw_shapes(60, 48, 4, 6, 14, 0.05, seed=3)
    all_x = torch.cat([s[0] for s in dm.splits.values()])
    all_y = torch.cat([s[1] for s in dm.splits.values()])
    for image, rows in zip(all_x, all_y, strict=True):  # each image keeps its own boxes, padding rows are all -1
        i = next(i for i in range(60) if np.array_equal(drawn.images[i], image.numpy()))
        k = len(drawn.boxes[i])
        assert np.array_equal(rows[:k].numpy(), drawn.boxes[i]) and (rows[k:] == -1).all()


def test_boxes_data_refuses_settings_that_do_not_fit_detection():
    with pytest.raises(ZooError, match=r"data.min_size=30 and data.max_size=20 must satisfy"):
        BoxesDataModule(name="boxes", min_size=30)
    with pytest.raises(
        ZooError,
        match="data.classes and data.train_per_class pick classes .* but data=boxes is a detection",
    ):
        BoxesDataModule(name="boxes", classes=["circle"])
    with pytest.raises(ZooError, match="data.classes and data.train_per_class pick classes of a classification set"):
        BoxesDataModule(name="boxes", train_per_class=5)


def write_yolo_folder(root: Path, count: int = 8) -> tuple[Path, list[tuple[str, int, tuple[float, ...]]]]:
    """``images/`` (PNG and JPEG, of several sizes, not square) and ``labels/`` in the YOLO text format: each
    picture holds one bright rectangle (class 0, ``box``) or bar (class 1, ``bar``) on a dark noisy background."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("box\nbar\n")
    written = []
    for i in range(count):
        width, height = 60 + 10 * i, 40 + 5 * i
        pixels = rng.integers(0, 40, (height, width, 3)).astype(np.uint8)
        label = i % 2
        x1, y1 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        x2, y2 = x1 + (width // 3 if label == 0 else width // 6), y1 + height // 3
        pixels[y1:y2, x1:x2] = 230
        name = f"pic{i}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(pixels).save(root / "images" / name)
        cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
        (root / "labels" / f"pic{i}.txt").write_text(f"{label} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
        written.append((name, label, (x1 / width, y1 / height, x2 / width, y2 / height)))
    Image.fromarray(rng.integers(0, 40, (50, 50, 3)).astype(np.uint8)).save(root / "images" / "empty.png")
    (root / "labels" / "empty.txt").write_text("")  # a picture without objects
    return root, written


def test_yolo_folder_reads_pictures_and_scales_their_boxes(tmp_path):
    root, written = write_yolo_folder(tmp_path / "pics")
    dm = YoloFolderDataModule(name="yolo", path=str(root), image_size=32)
    x, boxes, names = dm.load_scenes()
    assert names == ["box", "bar"] and x.shape == (9, 3, 32, 32)
    assert len(boxes[0]) == 0  # empty.png sorts first: no objects
    for (_, label, corners), image, rows in zip(written, x[1:], boxes[1:], strict=True):
        assert rows.shape == (1, 5) and rows[0, 0] == label
        assert np.allclose(rows[0, 1:], np.array(corners) * 32, atol=1e-3)
        bright = (image.float().mean(0) > 120).nonzero().numpy()  # the rectangle, after resizing
        extent = [bright[:, 1].min(), bright[:, 0].min(), bright[:, 1].max() + 1, bright[:, 0].max() + 1]
        assert np.abs(np.array(extent) - rows[0, 1:]).max() <= 1.0  # within a pixel: bilinear blurs the edges
    spec = YoloFolderDataModule(name="yolo", path=str(root), image_size=24, color="grey", test_fraction=0.3).spec
    assert spec.task == "detection" and spec.input_shape == [1, 24, 24] and spec.class_names == ["box", "bar"]
    named = YoloFolderDataModule(name="yolo", path=str(root), image_size=16, class_names=["a", "b"])
    assert named.spec.class_names == ["a", "b"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda r: (r / "labels" / "pic3.txt").unlink(), r"image '.*pic3.png' has no label file '.*pic3.txt'; add one"),
        (lambda r: (r / "labels" / "pic2.txt").write_text("0 0.5 0.5 0.2\n"), r"'.*pic2.txt' line 1: expected 5 num"),
        (lambda r: (r / "labels" / "pic2.txt").write_text("\n0 0.5 a 0.2 0.1\n"), r"pic2.txt' line 2: expected 5"),
        (lambda r: (r / "labels" / "pic4.txt").write_text("2 0.5 0.5 0.2 0.2\n"), r"pic4.txt' line 1: class 2 is not"),
        (lambda r: (r / "labels" / "pic5.txt").write_text("1 0.5 1.5 0.2 0.2\n"), r"pic5.txt' line 1: cx cy w h must"),
        (lambda r: (r / "images" / "pic1.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken"), r"cannot read image '.*pic1"),
        (lambda r: (r / "classes.txt").unlink(), r"no class names: give data.class_names=\[name0,name1,...\] or"),
    ],
)
def test_yolo_folder_bad_input_is_one_line_naming_the_file(tmp_path, damage, message):
    root, _ = write_yolo_folder(tmp_path / "pics")
    damage(root)
    with pytest.raises(ZooError, match=message) as err:
        YoloFolderDataModule(name="yolo", path=str(root), image_size=16).setup()
    assert "\n" not in str(err.value) and str(err.value).startswith("data.path: ")


def test_augmentation_moves_boxes_with_their_pixels():
    x = torch.zeros(32, 1, 24, 24, dtype=torch.uint8)
    y = torch.full((32, 2, 5), -1.0)
    for i in range(32):  # one bright rectangle per image; every fourth a 2-pixel bar on the left edge
        x1, y1, w = (0, 5, 2) if i % 4 == 0 else (3 + i % 9, 2 + i % 11, 6)
        x[i, :, y1 : y1 + 6, x1 : x1 + w] = 255
        y[i, 0] = torch.tensor([1.0, x1, y1, x1 + w, y1 + 6])
    out_x, out_y = Augment(crop_padding=3, hflip=True).batch(x, y, torch.Generator().manual_seed(0), targets="boxes")
    assert (out_y[:, 1] == -1).all()  # padding rows stay padding
    dropped = 0
    for image, rows in zip(out_x, out_y, strict=True):
        bright = (image[0] > 0).nonzero()
        if rows[0, 0] < 0:  # shifted out of the picture: no pixel of it left, and no box
            assert len(bright) == 0 and (rows == -1).all()
            dropped += 1
            continue
        extent = [bright[:, 1].min(), bright[:, 0].min(), bright[:, 1].max() + 1, bright[:, 0].max() + 1]
        assert rows[0, 1:].tolist() == [float(v) for v in extent]
    assert 0 < dropped < 8
    flipped = (out_x[:, 0, :, -1] > 0).any(1).sum()  # bars mirrored to the right edge
    assert flipped > 0


# -- the grid, NMS and the metric -------------------------------------------------------------------------


def _task(tmp_path: Path, *overrides: str):
    cfg = compose(["model=detector", "data=boxes", "data.count=60", *overrides], tmp_path)
    dm = build_datamodule(cfg.data, cfg.model)
    return build_task(cfg, dm.spec), dm


def perfect_output(task, y: torch.Tensor) -> torch.Tensor:
    """The grid a perfect detector would output for targets ``y``: every cell a box is assigned to predicts it,
    sure of it; the other cells are sure they hold nothing."""
    s, (h, w), k = task.net.stride, task.spec.input_shape[1:], task.spec.num_classes
    out = torch.full((len(y), 5 + k, -(-h // s), -(-w // s)), -20.0)
    cells, rows = task.assign(y, out.shape[-2:])
    image, row, col = cells // (out.shape[2] * out.shape[3]), cells // out.shape[3] % out.shape[2], cells % out.shape[3]
    for i, r, c, (label, x1, y1, x2, y2) in zip(image, row, col, rows.tolist(), strict=True):
        # centre = (cell + 2 * sigmoid(t) - 0.5) * stride; size = stride * exp(t)
        tx, ty = torch.logit(torch.tensor([((x1 + x2) / 2 / s - c + 0.5) / 2, ((y1 + y2) / 2 / s - r + 0.5) / 2]))
        out[i, :5, r, c] = torch.tensor([20.0, tx, ty, math.log((x2 - x1) / s), math.log((y2 - y1) / s)])
        out[i, 5 + int(label), r, c] = 20.0
    return out


@pytest.mark.parametrize("loss", ["giou", "l1"])
def test_a_perfect_grid_decodes_to_the_true_boxes_and_scores_map_one(tmp_path, loss):
    task, dm = _task(tmp_path, f"model.loss={loss}")
    x, y = dm.splits["train"]
    out = perfect_output(task, y)
    assert task.data_loss(out, y) < 1e-3
    predictions = task.predict(out)
    for rows, found in zip(y, predictions, strict=True):
        true = rows[rows[:, 0] >= 0]
        order = torch.argsort(found["boxes"][:, 0])
        assert torch.allclose(found["boxes"][order], true[torch.argsort(true[:, 1]), 1:], atol=1e-3)
        assert torch.equal(found["labels"][order], true[torch.argsort(true[:, 1]), 0].long())
    task.update_metrics("test", out, y)
    result = task.mean_ap["test"].compute()
    assert result["map_50"] == pytest.approx(1.0) and result["map"] == pytest.approx(1.0)


def test_nms_keeps_the_best_of_overlapping_boxes_per_class_and_drops_low_scores(tmp_path):
    task, _ = _task(tmp_path, "model.nms_iou=0.5", "model.score_threshold=0.3")
    y = torch.tensor([[[0.0, 6, 6, 22, 22], [-1, -1, -1, -1, -1]]])  # centre (14, 14): cells (1..2, 1..2) learn it
    out = perfect_output(task, y)
    assert (out[0, 0] > 0).sum() == 4
    found = task.predict(out)[0]  # four cells, the same box: one survives
    assert found["labels"].tolist() == [0] and found["scores"][0] > 0.99
    assert found["boxes"][0].tolist() == pytest.approx([6, 6, 22, 22], abs=1e-3)
    out[0, 5:, 1, 2] = torch.tensor([-20.0, 20.0, -20.0])  # one cell calls it another class: NMS keeps both
    assert sorted(task.predict(out)[0]["labels"].tolist()) == [0, 1]
    out[0, 0, 1, 2] = -2.0  # ...with a score of 0.12, under score_threshold: dropped
    assert task.predict(out)[0]["labels"].tolist() == [0]
    out[0, 1, 2, 2] += 2.0  # one cell's box moves 6.2 pixels right (IoU 0.44 < nms_iou), less surely: both kept
    out[0, 0, 2, 2] = 1.0
    found = task.predict(out)[0]
    assert found["labels"].tolist() == [0, 0] and found["boxes"][:, 0].tolist() == pytest.approx([6, 12.2], abs=0.05)
    assert found["scores"].tolist() == pytest.approx([1.0, 0.731], abs=1e-3)  # best first


def test_detector_on_a_timm_backbone_and_refused_pairs(tmp_path):
    task, dm = _task(tmp_path, "model.backbone=test_resnet")
    assert task(dm.splits["val"][0][:2]).shape == (2, 8, 8, 8)  # 5 + 3 classes on the 8-pixel grid of 64x64
    with pytest.raises(ZooError, match="stride=64: backbone 'test_resnet' has feature maps at strides 2, 4, 8, 16, 32"):
        _task(tmp_path, "model.backbone=test_resnet", "model.net.stride=64")
    cfg = compose(["model=cnn", "data=boxes", "data.count=60"], tmp_path)
    refused = r"model=cnn does classification but data=boxes is a detection data set; .*\(e.g. model=detector\)"
    with pytest.raises(ZooError, match=refused):
        build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)


# -- end to end --------------------------------------------------------------------------------------------


def test_training_writes_map_and_drawn_boxes_and_eval_reproduces_them(train_run, tmp_path):
    metrics, out = train_run(*TINY)
    assert {"test/map_50", "test/map", "test/map_75", "test/loss"} <= set(metrics)
    assert 0 <= metrics["test/map"] <= metrics["test/map_50"] <= 1
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert (out / "detections.png").read_bytes()[:4] == b"\x89PNG"
    assert "val/map_50" in (out / "history.csv").read_text().splitlines()[0]
    ckpt = next((out / "checkpoints").glob("best-*.ckpt"))
    cfg = compose([f"ckpt_path={ckpt}"], tmp_path, config_name="eval", folder="eval")
    assert evaluate(cfg) == pytest.approx(metrics)
    assert (Path(cfg.paths.output_dir) / "detections.png").is_file()


def test_a_yolo_folder_trains_end_to_end(train_run, tmp_path):
    root, _ = write_yolo_folder(tmp_path / "pics", count=20)
    data = [f"data.path={root}", "data.image_size=32", "data.augment.hflip=true", "data.augment.crop_padding=2"]
    metrics, out = train_run("model=detector", "data=yolo", *data, "trainer.max_epochs=1")
    assert 0 <= metrics["test/map_50"] <= 1 and (out / "detections.png").is_file()


def test_wandb_gets_the_test_images_with_box_overlays(train_run):
    _, out = train_run(*TINY, "logger=wandb", "trainer.max_epochs=1")
    (run,) = (out / "wandb").glob("offline-run-*")
    media = run / "files" / "media"
    deadline = time.monotonic() + 60  # wandb-core may still be writing after finish() returns
    while not list(media.rglob("*.boxes2D.json")) and time.monotonic() < deadline:
        time.sleep(0.5)
    overlays = [json.loads(p.read_text()) for p in media.rglob("*.boxes2D.json")]  # predictions and ground truth
    assert len(list((media / "images" / "test").glob("detections_*.png"))) == 16
    assert overlays and all(o["class_labels"] == {"0": "circle", "1": "square", "2": "triangle"} for o in overlays)
    boxes = [box for o in overlays for box in o["box_data"]]
    assert boxes and all(b["domain"] == "pixel" and b["box_caption"].split()[0] in SHAPES for b in boxes)


def test_cli_bad_label_file_is_one_line(tmp_path):
    root, _ = write_yolo_folder(tmp_path / "pics")
    (root / "labels" / "pic2.txt").write_text("0 0.5 0.5 0.2\n")
    proc = script("train", "model=detector", "data=yolo", f"data.path={root}", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: data.path: label file '{root}/labels/pic2.txt' line 1: expected 5 numbers 'class cx cy w h', got "
        "'0 0.5 0.5 0.2'"
    ]
