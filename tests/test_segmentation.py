"""Segmentation: U-Net on any image size, generated shapes, Oxford-IIIT Pet and mask folders read from files
written in their real formats, IoU/Dice, the run's overlays, and every bad-input error naming its file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import compose
from tests.test_cli import script
from zoo.data.augment import Augment
from zoo.data.batches import TensorBatches
from zoo.data.shapes import draw_shapes
from zoo.errors import ZooError
from zoo.nets.unet import UNet
from zoo.run import build_datamodule, build_task, evaluate
from zoo.tasks.segmentation import SegmentationLoss

SMALL_UNET = ["model=unet", "model.net.depth=2", "model.net.base_width=8"]
SMALL_SHAPES = ["data=shapes", "data.count=120", "data.image_size=32", "data.min_size=6", "data.max_size=12"]


def test_shapes_are_seeded_and_masks_and_boxes_match_the_pixels():
    a, b, other = draw_shapes(20, seed=3), draw_shapes(20, seed=3), draw_shapes(20, seed=4)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.masks, b.masks)
    assert not np.array_equal(a.images, other.images)
    assert a.images.shape == (20, 3, 64, 64) and a.masks.shape == (20, 64, 64)
    for mask, boxes in zip(a.masks, a.boxes, strict=True):
        assert 1 <= len(boxes) <= 3
        for kind, x1, y1, x2, y2 in boxes.astype(int):
            inside = mask[y1:y2, x1:x2]
            assert (inside == kind + 1).any()  # the shape is in its box...
            assert inside[[0, -1], :].any() or inside[:, [0, -1]].any()  # ...and touches its edges
        assert set(np.unique(mask)) == {0, *(int(k) + 1 for k in boxes[:, 0])}


def test_shapes_data_module_is_a_segmentation_set(tmp_path):
    cfg = compose([*SMALL_UNET, *SMALL_SHAPES], tmp_path)
    spec = build_datamodule(cfg.data, cfg.model).spec
    assert spec.task == "segmentation" and spec.input_shape == [3, 32, 32]
    assert spec.class_names == ["background", "circle", "square", "triangle"]
    dm = build_datamodule(cfg.data, cfg.model)
    x, y = dm.splits["train"]
    assert x.dtype == torch.uint8 and y.dtype == torch.uint8 and y.shape == (len(x), 32, 32)
    assert sum(len(s[0]) for s in dm.splits.values()) == 120


def test_augmentation_moves_each_mask_with_its_image():
    scenes = draw_shapes(16, image_size=32, min_size=6, max_size=12, noise=0.0, seed=0)
    x, y = torch.from_numpy(scenes.images), torch.from_numpy(scenes.masks)
    batches = TensorBatches(x, y, 16, augment=Augment(crop_padding=3, hflip=True), targets="masks")
    (ax, ay), (_, by) = next(iter(batches)), next(iter(TensorBatches(x, y, 16)))
    assert not torch.equal(ay, by)  # the masks did move...
    shapes_in_image = (ax.float().mean(1) > 110).long()  # shapes are bright (>= 130), backgrounds dark (< 90)
    assert torch.equal(shapes_in_image, (ay > 0).long())  # ...exactly as their images did


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"upsample": "bilinear"}, {"depth": 1}, {"encoder": "test_resnet"}, {"encoder": "test_resnet", "depth": 2}],
)
@pytest.mark.parametrize("size", [(32, 32), (37, 50), (9, 13)])
def test_unet_gives_a_score_per_pixel_and_class_at_any_size(kwargs, size):
    net = UNet([3, *size], 4, base_width=8, **kwargs)
    assert net(torch.zeros(2, 3, *size)).shape == (2, 4, *size)


def test_unet_is_the_paper_by_default():
    net = UNet([1, 572, 572], 2)
    convs = [[m for m in level.modules() if isinstance(m, torch.nn.Conv2d)] for level in net.encoder.levels]
    assert [len(c) for c in convs] == [2] * 5  # two 3x3 convolutions per level
    widths = [c[-1].out_channels for c in convs]
    assert widths == [64, 128, 256, 512, 1024]
    assert 31_000_000 < sum(p.numel() for p in net.parameters()) < 31_100_000  # the paper's 31 M (+ batch norm)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": 0}, "model.net.depth=0 must be an integer in 1..6"),
        ({"upsample": "nearest"}, "model.net.upsample='nearest' is not valid; choose one of transpose, bilinear"),
        ({"pretrained": True}, "model.pretrained/model.weights need a timm encoder"),
        ({"encoder": "resnt18"}, "model.backbone='resnt18' is not a timm model; close names: resnet18"),
    ],
)
def test_unet_refuses_bad_settings_in_one_line(kwargs, message):
    with pytest.raises(ZooError, match=message.replace("(", r"\(").replace(".", r"\.")):
        UNet([3, 32, 32], 2, **kwargs)


def test_losses_are_near_zero_for_confident_right_answers_and_dice_counts_overlap():
    masks = torch.tensor([[[0, 1], [2, 2]]])
    right = torch.nn.functional.one_hot(masks, 3).permute(0, 3, 1, 2).float() * 20
    for name in ("cross_entropy", "dice", "cross_entropy+dice"):
        assert SegmentationLoss(name)(right, masks) < 1e-3
        assert SegmentationLoss(name)(-right, masks) > 0.5
    binary = torch.tensor([[[0, 1], [1, 1]]])
    assert SegmentationLoss("bce+dice")((binary.float() * 2 - 1).unsqueeze(1) * 20, binary) < 1e-3


def test_iou_and_dice_leave_out_the_background_and_average_the_classes(tmp_path):
    cfg = compose([*SMALL_UNET, *SMALL_SHAPES], tmp_path)
    task = build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)
    true = torch.zeros(1, 4, 4, dtype=torch.long)
    true[0, :2, :2] = 1  # 4 circle pixels
    true[0, 2:, 2:] = 2  # 4 square pixels
    pred = true.clone()
    pred[0, 0, 2] = 1  # one background pixel called circle: circle IoU 4/5, square 1
    task.update_metrics("test", torch.nn.functional.one_hot(pred, 4).permute(0, 3, 1, 2).float(), true)
    scores = task.scores("test")
    assert scores["iou"].item() == pytest.approx((0.8 + 1.0) / 2)  # triangle absent from both: not counted
    assert scores["dice"].item() == pytest.approx((8 / 9 + 1.0) / 2)
    assert scores["pixel_acc"].item() == pytest.approx(15 / 16)


def write_masks_folder(root: Path, n: int = 10, size: int = 24) -> Path:
    """``images/`` (PNG and JPEG photos) and ``masks/`` (greyscale PNGs of class indices 0..2), as a user has them."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        mask[2:10, 2:10] = 1
        mask[12:20, 12:22] = 2 if i % 2 else 1
        pixels = np.clip(mask[..., None] * 100 + rng.normal(20, 10, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"img{i}.{'png' if i % 2 else 'jpg'}")
        Image.fromarray(mask).save(root / "masks" / f"img{i}.png")
    return root


def masks_cfg(tmp_path: Path, folder: Path, *extra: str):
    return compose([*SMALL_UNET, "data=masks", f"data.path={folder}", "data.image_size=null", *extra], tmp_path)


def test_mask_folder_pairs_images_and_masks_by_name(tmp_path):
    folder = write_masks_folder(tmp_path / "mine")
    cfg = masks_cfg(tmp_path, folder, "data.class_names=[background,cat,dog]")
    dm = build_datamodule(cfg.data, cfg.model)
    assert dm.spec.class_names == ["background", "cat", "dog"] and dm.spec.input_shape == [3, 24, 24]
    masks = torch.cat([dm.splits[s][1] for s in ("train", "val", "test")])
    assert set(masks.unique().tolist()) == {0, 1, 2}
    inferred = build_datamodule(masks_cfg(tmp_path, folder).data, cfg.model).spec.class_names
    assert inferred == ["background", "class1", "class2"]
    resized = build_datamodule(masks_cfg(tmp_path, folder, "data.image_size=16").data, cfg.model)
    assert resized.splits["train"][1].shape[1:] == (16, 16)
    assert set(resized.splits["train"][1].unique().tolist()) <= {0, 1, 2}  # nearest: no in-between classes


def test_binary_masks_saved_as_0_255_read_as_foreground(tmp_path):
    folder = write_masks_folder(tmp_path / "mine")
    for path in (folder / "masks").iterdir():
        Image.fromarray((np.asarray(Image.open(path)) > 0).astype(np.uint8) * 255).save(path)
    with pytest.raises(ZooError, match=r"mask '.*img0\.png' has class value 255 but the masks hold 2 classes .*"
                                       r"set data\.binary=true"):  # fmt: skip
        build_datamodule(masks_cfg(tmp_path, folder).data, compose(SMALL_UNET, tmp_path).model)
    cfg = masks_cfg(tmp_path, folder, "data.binary=true")
    dm = build_datamodule(cfg.data, cfg.model)
    assert dm.spec.class_names == ["background", "foreground"]
    assert build_task(cfg, dm.spec).loss_name == "bce"  # two classes: one logit per pixel


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda f: (f / "masks" / "img3.png").unlink(), r"image '.*img3\.png' has no mask '.*masks/img3\.png'"),
        (
            lambda f: Image.fromarray(np.zeros((5, 5), np.uint8)).save(f / "masks" / "extra.png"),
            r"mask '.*extra\.png' has no image of the same name",
        ),
        (
            lambda f: Image.fromarray(np.zeros((20, 24), np.uint8)).save(f / "masks" / "img4.png"),
            r"mask '.*img4\.png' is 24x20 but its image '.*img4\.jpg' is 24x24",
        ),
        (
            lambda f: Image.fromarray(np.full((24, 24), 7, np.uint8)).save(f / "masks" / "img5.png"),
            r"mask '.*img5\.png' has class value 7 but data\.class_names names 3 classes \(values 0\.\.2\)",
        ),
        (
            lambda f: Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(f / "masks" / "img6.png"),
            r"mask '.*img6\.png' has 3 channels; a mask is one channel of class indices",
        ),
        (lambda f: (f / "images" / "img7.png").write_bytes(b"not a png"), r"cannot read image '.*img7\.png'"),
    ],
)
def test_bad_mask_folders_are_refused_naming_the_file(tmp_path, spoil, message):
    folder = write_masks_folder(tmp_path / "mine")
    spoil(folder)
    cfg = masks_cfg(tmp_path, folder, "data.class_names=[background,cat,dog]")
    with pytest.raises(ZooError, match=message):
        build_datamodule(cfg.data, cfg.model)


def test_a_mask_of_another_size_is_refused_before_both_are_resized(tmp_path):
    folder = write_masks_folder(tmp_path / "mine")
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(folder / "masks" / "img4.png")
    cfg = masks_cfg(tmp_path, folder, "data.class_names=[background,cat,dog]", "data.image_size=32")
    with pytest.raises(ZooError, match=r"mask '.*img4\.png' is 12x12 but its image '.*img4\.jpg' is 24x24"):
        build_datamodule(cfg.data, cfg.model)


def write_pets(root: Path, trainval: int = 6, test: int = 4) -> Path:
    """``oxford-iiit-pet/`` as torchvision leaves it: images/*.jpg, annotations/trimaps/*.png (1 pet, 2 background,
    3 border) and the split lists ``Image CLASS-ID SPECIES BREED-ID``."""
    folder = root / "oxford-iiit-pet"
    (folder / "images").mkdir(parents=True)
    (folder / "annotations" / "trimaps").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"Abyssinian_{i}" for i in range(trainval + test)]
    for i, name in enumerate(names):
        h, w = 30 + i, 40
        trimap = np.full((h, w), 2, np.uint8)
        trimap[8:20, 10:30] = 3
        trimap[10:18, 12:28] = 1
        photo = np.clip((trimap[..., None] == 1) * 150 + rng.normal(40, 10, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(photo).save(folder / "images" / f"{name}.jpg")
        Image.fromarray(trimap).save(folder / "annotations" / "trimaps" / f"{name}.png")
    header = "#Image CLASS-ID SPECIES BREED ID\n"
    for split, chosen in (("trainval", names[:trainval]), ("test", names[trainval:])):
        (folder / "annotations" / f"{split}.txt").write_text(header + "".join(f"{n} 1 1 1\n" for n in chosen))
    return root


def test_pets_reads_the_official_splits_and_maps_the_trimaps(tmp_path):
    root = write_pets(tmp_path / "data")
    cfg = compose([*SMALL_UNET, "data=pets", f"paths.data_dir={root}", "data.image_size=16"], tmp_path)
    dm = build_datamodule(cfg.data, cfg.model)
    assert dm.spec.class_names == ["background", "pet", "border"] and dm.spec.input_shape == [3, 16, 16]
    assert len(dm.splits["test"][0]) == 4 and len(dm.splits["train"][0]) + len(dm.splits["val"][0]) == 6
    mask = dm.splits["test"][1][0]
    assert mask[0, 0] == 0 and mask[6, 8] == 1 and set(mask.unique().tolist()) == {0, 1, 2}


def test_pets_offline_without_files_is_one_line(tmp_path):
    cfg = compose([*SMALL_UNET, "data=pets", f"paths.data_dir={tmp_path}", "data.download=false"], tmp_path)
    with pytest.raises(ZooError, match=r"data=pets: the images/ .* not found .* works offline: shapes, masks"):
        build_datamodule(cfg.data, cfg.model)


def test_a_classification_model_on_masks_and_unet_on_labels_are_refused(tmp_path):
    cfg = compose(["model=cnn", *SMALL_SHAPES], tmp_path)
    with pytest.raises(ZooError, match="model=cnn does classification but data=shapes is a segmentation data set"):
        build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)
    cfg = compose(["model=unet", "data=digits"], tmp_path)
    with pytest.raises(ZooError, match=r"model=unet does segmentation .* \(e\.g\. model=logistic or model=mlp\)"):
        build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)
    cfg = compose(["model=unet", "model.loss=bce", *SMALL_SHAPES], tmp_path)
    with pytest.raises(ZooError, match="model.loss=bce needs two mask classes but data=shapes has 4"):
        build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)
    with pytest.raises(
        ZooError, match="model.tasks.segmentation=zoo.nets.unet.UNet is not a zoo task; name a subclass"
    ):
        build_task(compose([*SMALL_UNET, *SMALL_SHAPES, "model.tasks.segmentation=zoo.nets.unet.UNet"], tmp_path),
                   cfg_spec(tmp_path))  # fmt: skip
    with pytest.raises(ZooError, match="data.classes and data.train_per_class pick classes of a classification"):
        build_datamodule(compose([*SMALL_SHAPES, "data.classes=[1]"], tmp_path).data, cfg.model)


def cfg_spec(tmp_path: Path):
    cfg = compose([*SMALL_UNET, *SMALL_SHAPES], tmp_path)
    return build_datamodule(cfg.data, cfg.model).spec


def test_unet_trains_writes_overlays_and_eval_reproduces_iou(train_run, tmp_path):
    metrics, out = train_run(
        *SMALL_UNET, *SMALL_SHAPES, "data.batch_size=8", "trainer.max_epochs=5", "optimizer.lr=3e-3"
    )
    assert {"test/iou", "test/dice", "test/pixel_acc", "test/iou_circle"} <= set(metrics)
    assert metrics["test/pixel_acc"] > 0.9 and metrics["test/iou"] > 0.1  # learning; the slow test asks for 0.9
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert (out / "overlays.png").stat().st_size > 10_000 and (out / "learning_curves.png").is_file()
    best = next((out / "checkpoints").glob("best-epoch*.ckpt"))
    again = evaluate(compose([f"ckpt_path={best}"], tmp_path, config_name="eval", folder="eval"))
    assert again["test/iou"] == pytest.approx(metrics["test/iou"], abs=1e-6)


def test_wandb_gets_the_masks_as_interactive_overlays(tmp_path):
    import wandb

    cfg = compose([*SMALL_UNET, *SMALL_SHAPES], tmp_path)
    dm = build_datamodule(cfg.data, cfg.model)
    task = build_task(cfg, dm.spec)
    x, y = dm.splits["test"]
    task.record_test_batch(x[:3], task(x[:3]), y[:3])
    report = task.test_report(None)
    media = task.wandb_images(report, {})
    images, kwargs = media["masks"]
    assert len(images) == 3 and images[0].shape == (32, 32, 3)
    for image, masks in zip(images, kwargs["masks"], strict=True):
        wandb.Image(image, masks=masks)  # W&B accepts the overlay as given (it validates class indices and shapes)
        assert masks["ground_truth"]["class_labels"][1] == "circle"


def test_timm_encoder_frozen_keeps_its_weights_and_trains_the_decoder(train_run, tmp_path):
    from tests.formats import timm_weights
    from zoo.run import prepare_process

    weights = f"model.weights={timm_weights(tmp_path / 'test_resnet.pth')}"
    overrides = [*SMALL_UNET, *SMALL_SHAPES, "model.encoder=test_resnet", weights, "model.finetune.mode=frozen"]
    _, out = train_run(*overrides, "trainer.max_epochs=1")
    cfg = compose(overrides, tmp_path)
    prepare_process(cfg.seed)  # as train() does: the same initial weights
    initial = build_task(cfg, build_datamodule(cfg.data, cfg.model).spec).state_dict()
    trained = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    encoder = [k for k in trained if k.startswith("net.encoder.model.")]
    assert encoder and all(torch.equal(trained[k], initial[k]) for k in encoder)  # batch-norm statistics too
    assert not torch.equal(trained["net.output.weight"], initial["net.output.weight"])


def test_cli_unet_on_a_table_is_one_line(tmp_path):
    proc = script("train", "model=unet", "data=iris", "logger=none", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: model=unet does segmentation but data=iris is a classification data set" in proc.stderr
