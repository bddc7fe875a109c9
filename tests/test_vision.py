"""Vision: image data (bundled, real file formats written here, the user's folder), augmentation, the input layer,
CNN / LeNet-5 / ResNet / timm nets, transfer-learning modes, and the figures a run writes."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import compose
from tests.formats import real_digits, write_cifar, write_idx, write_image_folder
from zoo.data.augment import Augment
from zoo.data.batches import TensorBatches
from zoo.data.images import (
    Cifar10DataModule,
    DigitsDataModule,
    ImageFolderDataModule,
    Mnist5kDataModule,
    MnistDataModule,
    pixel_stats,
)
from zoo.errors import ZooError
from zoo.nets.adapt import ImageInput
from zoo.nets.cnn import CNN
from zoo.nets.conv_arith import conv_output_size, pool_output_size
from zoo.nets.lenet import LeNet5, c3_connections
from zoo.nets.resnet import ResNet
from zoo.run import build_datamodule, build_task

# -- data --------------------------------------------------------------------------------------------------


def test_bundled_image_sets_declare_their_shapes():
    digits, mnist5k = DigitsDataModule(name="digits").spec, Mnist5kDataModule(name="mnist5k").spec
    assert digits.input_shape == [1, 8, 8] and digits.num_classes == 10 and digits.is_image
    assert mnist5k.input_shape == [1, 28, 28] and mnist5k.num_train == 3500


def test_digits_are_scikit_learns_read_without_importing_it():
    from sklearn.datasets import load_digits

    data, bunch = DigitsDataModule(name="digits").load(), load_digits()
    assert data.x.shape == (1797, 1, 8, 8) and data.x.dtype == torch.uint8
    assert np.array_equal(data.x[:, 0].numpy(), np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8))
    assert np.array_equal(data.y.numpy(), bunch.target) and data.class_names == [str(n) for n in range(10)]


def test_digits_without_scikit_learns_file_name_the_fix(monkeypatch):
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else find(name, *a))
    with pytest.raises(ZooError, match="data=digits needs scikit-learn's bundled digits; reinstall it with"):
        DigitsDataModule(name="digits").load()


def test_class_subset_and_small_labelled_set():
    dm = Mnist5kDataModule(name="mnist5k", classes=[5, "7", 9], train_per_class=4)
    spec = dm.spec
    assert spec.class_names == ["5", "7", "9"] and spec.num_train == 12
    x, y = dm.splits["train"]
    assert torch.equal(torch.bincount(y), torch.tensor([4, 4, 4]))
    assert set(dm.splits["test"][1].tolist()) == {0, 1, 2}
    with pytest.raises(ZooError, match=r"data.classes: 'ten' is not a class of data=mnist5k"):
        Mnist5kDataModule(name="mnist5k", classes=["ten"]).setup()
    with pytest.raises(ZooError, match="data.train_per_class=900 but class"):
        Mnist5kDataModule(name="mnist5k", train_per_class=900).setup()


def test_mnist_reads_real_idx_files(mnist_dir):
    dm = MnistDataModule(name="mnist", data_dir=str(mnist_dir), download=False)
    spec = dm.spec
    x, y = real_digits(1300)
    assert spec.input_shape == [1, 28, 28] and spec.num_classes == 10
    assert torch.equal(dm.splits["test"][0][:, 0], torch.from_numpy(x[1000:]))  # the official test split, kept
    assert len(dm.splits["train"][0]) + len(dm.splits["val"][0]) == 1000
    assert len(dm.splits["val"][0]) == 100


def test_missing_files_offline_say_where_they_go(tmp_path):
    for dm, where in (
        (MnistDataModule(name="mnist", data_dir=str(tmp_path), download=False), "MNIST/raw"),
        (
            MnistDataModule(name="fashion_mnist", dataset="fashion_mnist", data_dir=str(tmp_path), download=False),
            "FashionMNIST/raw",
        ),  # fmt: skip
        (Cifar10DataModule(name="cifar10", data_dir=str(tmp_path), download=False), "cifar-10-batches-py"),
    ):
        with pytest.raises(ZooError, match=f"not found in '.*{where}'.*works offline: digits, mnist5k"):
            dm.setup()


def test_corrupt_idx_file_is_named(tmp_path):
    write_idx(tmp_path / "MNIST" / "raw", "train", *real_digits(10))
    write_idx(tmp_path / "MNIST" / "raw", "t10k", *real_digits(10))
    (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(ZooError, match="cannot read the IDX files in"):
        MnistDataModule(name="mnist", data_dir=str(tmp_path), download=False).setup()


def test_cifar10_reads_real_batches(tmp_path):
    dm = Cifar10DataModule(name="cifar10", data_dir=str(write_cifar(tmp_path)), download=False)
    spec = dm.spec
    assert spec.input_shape == [3, 32, 32] and spec.class_names[0] == "airplane"
    assert len(dm.splits["test"][0]) == 60 and sum(len(dm.splits[s][0]) for s in ("train", "val")) == 300
    assert len(spec.pixel_mean) == 3


def test_a_cifar_batch_that_would_run_code_is_refused(tmp_path):
    root = write_cifar(tmp_path)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}))
    with pytest.raises(ZooError, match=r"data_batch_3' is not a valid CIFAR-10 batch \(refused global pathlib"):
        Cifar10DataModule(name="cifar10", data_dir=str(root), download=False).setup()
    assert not marker.exists()


def test_image_folder_loads_resizes_and_names_classes(tmp_path):
    dm = ImageFolderDataModule(name="images", path=str(write_image_folder(tmp_path)), image_size=16)
    spec = dm.spec
    assert spec.class_names == ["bright", "dark"] and spec.input_shape == [3, 16, 16]
    grey = ImageFolderDataModule(name="images", path=str(tmp_path), image_size=8, color="grey")
    assert grey.spec.input_shape == [1, 8, 8]


def test_image_folder_bad_input(tmp_path):
    root = write_image_folder(tmp_path / "ok")
    (root / "dark" / "5.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ZooError, match=r"cannot read image '.*dark/5.png'.*delete or replace that file"):
        ImageFolderDataModule(name="images", path=str(root)).setup()
    (tmp_path / "one" / "cats").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "one" / "cats" / "a.png")
    with pytest.raises(ZooError, match="has 1 class subfolder"):
        ImageFolderDataModule(name="images", path=str(tmp_path / "one")).setup()
    with pytest.raises(ZooError, match="folder '.*nowhere' not found"):
        ImageFolderDataModule(name="images", path=str(tmp_path / "nowhere")).setup()


def test_pixel_stats_per_channel_and_per_pixel():
    x = torch.randint(0, 256, (50, 3, 4, 5), dtype=torch.uint8)
    mean, std = pixel_stats(x)
    ref = x.double().div(255)
    assert np.allclose(mean, ref.mean(dim=(0, 2, 3))) and np.allclose(std, ref.std(dim=(0, 2, 3), correction=0))
    mean, std = pixel_stats(x, per_pixel=True)
    assert len(mean) == 60 and np.allclose(mean, ref.mean(dim=0).flatten())


# -- augmentation ------------------------------------------------------------------------------------------


def test_crop_with_padding_shifts_whole_images_and_flip_mirrors():
    x = torch.arange(4 * 2 * 6 * 6, dtype=torch.float32).reshape(4, 2, 6, 6) + 1
    out = Augment(crop_padding=2)(x, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(4):  # every output is one 6x6 window of the padded image, same offset for all channels
        windows = [padded[i, :, r : r + 6, c : c + 6] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    flipped = Augment(hflip=True)(x, torch.Generator().manual_seed(0))
    assert all(torch.equal(f, x[i]) or torch.equal(f, x[i].flip(2)) for i, f in enumerate(flipped))


def test_augmented_batches_depend_on_seed_and_epoch_only():
    x, y = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8), torch.arange(64)
    aug = Augment(crop_padding=1, hflip=True)

    def epoch(e: int) -> list[torch.Tensor]:
        batches = TensorBatches(x, y, 16, shuffle=True, seed=3, augment=aug)
        batches.set_epoch(e)
        return [b[0] for b in batches]

    assert all(torch.equal(a, b) for a, b in zip(epoch(1), epoch(1), strict=True))  # a restarted process agrees
    assert not all(torch.equal(a, b) for a, b in zip(epoch(1), epoch(2), strict=True))
    with pytest.raises(ZooError, match="crop_padding=-1 must be an integer >= 0"):
        Augment(crop_padding=-1)


def test_an_epoch_drawn_up_front_augments_as_batch_by_batch():
    x, y = torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8), torch.arange(50)
    aug = Augment(crop_padding=2, hflip=True)
    gen = torch.Generator().manual_seed(0)  # the generator of TensorBatches at seed 0, epoch 0, rank 0
    one_by_one = [aug.batch(x[i : i + 16], y[i : i + 16], gen) for i in range(0, 50, 16)]
    up_front = list(TensorBatches(x, y, 16, seed=0, augment=aug))  # the epoch's draws made first, sent in one copy
    assert [len(b[0]) for b in up_front] == [16, 16, 16, 2]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(up_front, one_by_one, strict=True))


# -- the input layer ---------------------------------------------------------------------------------------


def test_input_layer_pads_resizes_and_normalises():
    x = torch.full((2, 1, 28, 28), 255, dtype=torch.uint8)
    pad = ImageInput(1, (28, 28), [0.5], [0.25], size=(32, 32))
    out = pad(x)
    assert pad.mode == "pad" and out.shape == (2, 1, 32, 32)
    assert torch.allclose(out[0, 0, 2, 2], torch.tensor(2.0)) and torch.allclose(out[0, 0, 0, 0], torch.tensor(-2.0))
    resize = ImageInput(1, (8, 8), [0.5], [0.25], size=(32, 32))
    assert resize.mode == "resize" and resize(x[:, :, :8, :8]).shape == (2, 1, 32, 32)
    with pytest.raises(ZooError, match="fit=pad cannot shrink 32x32 images to 28x28"):
        ImageInput(1, (32, 32), [0.5], [0.25], size=(28, 28), fit="pad")


# -- nets --------------------------------------------------------------------------------------------------


def test_lenet5_has_the_papers_parameter_counts():
    net = LeNet5([1, 28, 28], 10)
    c3 = net.features.c3
    assert sum(p.numel() for p in net.features.c1.parameters()) == 156
    assert int(c3.mask.sum()) * 25 + 16 == 1516  # Table I: 60 connections of 5x5 weights, 16 biases
    assert sum(p.numel() for p in net.features.c5.parameters()) == 48120
    assert sum(p.numel() for p in net.head.f6.parameters()) == 10164
    assert c3_connections().sum(1).tolist() == [3] * 6 + [4] * 9 + [6]
    net(torch.randn(4, 1, 32, 32)).sum().backward()
    assert (c3.weight.grad * (1 - c3.mask)).abs().sum() == 0  # unconnected maps never learn
    modern = LeNet5([3, 32, 32], 10, variant="modern")
    assert isinstance(modern.features.s2, torch.nn.MaxPool2d) and isinstance(modern.features.act1, torch.nn.ReLU)


def test_cnn_sizes_its_head_with_the_conv_arithmetic():
    net = CNN([1, 28, 28], 10, channels=[8, 16], padding="valid", hidden=[])
    size = 28
    for _ in range(2):
        size = pool_output_size(conv_output_size(size, 3), 2)
    assert net.num_features == 16 * size * size == 400
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ZooError, match=r"model=cnn: block 4 of 4 .* gets 1-pixel maps"):
        CNN([1, 8, 8], 10, channels=[8, 8, 8, 8])


def test_resnet_depths_are_the_papers():
    def count(module, kind):
        return sum(isinstance(m, kind) for m in module.modules())

    for depth in (20, 32, 18):
        net = ResNet([3, 32, 32], 10, depth=depth)
        shortcuts = sum(isinstance(m.shortcut, torch.nn.Sequential) for m in net.modules() if hasattr(m, "shortcut"))
        assert count(net, torch.nn.Conv2d) - shortcuts + count(net, torch.nn.Linear) == depth
    assert 0.26e6 < sum(p.numel() for p in ResNet([3, 32, 32], 10, depth=20).parameters()) < 0.28e6
    with pytest.raises(ZooError, match="model.depth=19 is not available; choose one of 20, 32"):
        ResNet([3, 32, 32], 10, depth=19)


def test_every_image_model_fits_every_image_data_set(tmp_path, mnist_dir):
    cifar = write_cifar(tmp_path / "cifar")
    folder = write_image_folder(tmp_path / "pictures")
    datas = [
        ["data=digits"],
        ["data=mnist5k"],
        ["data=mnist", f"paths.data_dir={mnist_dir}", "data.download=false"],
        ["data=cifar10", f"paths.data_dir={cifar}", "data.download=false"],
        ["data=images", f"data.path={folder}", "data.image_size=24", "data.color=grey"],
    ]
    models = [["model=cnn"], ["model=lenet5"], ["model=resnet"], ["model=timm", "model.backbone=test_resnet"]]
    models.append(["model=mlp"])
    for data in datas:
        cfg = compose([*models[0], *data], tmp_path)
        dm = build_datamodule(cfg.data, cfg.model)
        x = dm.splits["train"][0][:2]
        for model in models:
            cfg = compose([*model, *data], tmp_path)
            task = build_task(cfg, dm.spec)
            assert task(x).shape == (2, task.num_outputs()), (model, data)  # one logit for two classes


def test_image_model_on_a_table_names_both(tmp_path):
    cfg = compose(["model=cnn", "data=iris"], tmp_path)
    with pytest.raises(ZooError, match="model=cnn needs images but data=iris is a table of 4 features"):
        build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)


def test_flat_models_standardise_pixels_image_nets_channels(tmp_path):
    for model, n in (("mlp", 64), ("cnn", 1)):
        cfg = compose([f"model={model}", "data=digits", "recipe=none"], tmp_path)  # normalize=auto
        assert len(build_datamodule(cfg.data, cfg.model).spec.pixel_mean) == n


def test_prediction_grid_shows_every_class_and_the_mistakes():
    from zoo.tasks.classification import EXAMPLES, MISTAKES, ClassificationTask

    spec = DigitsDataModule(name="digits").spec
    task = ClassificationTask(net={"_target_": "zoo.nets.cnn.CNN"}, spec=spec.to_dict())
    task.on_test_epoch_start()
    y = torch.arange(10).repeat_interleave(30)  # sorted by class, as mnist5k's test split is
    pred = torch.where(torch.arange(300) % 7 == 0, (y + 1) % 10, y)
    for batch in range(0, 300, 64):
        out = torch.nn.functional.one_hot(pred[batch : batch + 64], 10).float()
        task.record_test_batch(torch.zeros(len(out), 1, 8, 8, dtype=torch.uint8), out, y[batch : batch + 64])
    _, true, shown = task.test_report(None)["samples"]
    examples = EXAMPLES // 10 * 10
    assert sorted(true[:examples].tolist()) == sorted(list(range(10)) * (EXAMPLES // 10))
    assert len(true) == examples + MISTAKES and (true[examples:] != shown[examples:]).all()


def test_gzipped_idx_files_put_by_hand_are_extracted(tmp_path):
    x, y = real_digits(60)
    write_idx(tmp_path / "FashionMNIST" / "raw", "train", x[:40], y[:40], compress=True)
    write_idx(tmp_path / "FashionMNIST" / "raw", "t10k", x[40:], y[40:], compress=True)
    dm = MnistDataModule(name="fashion_mnist", dataset="fashion_mnist", data_dir=str(tmp_path), download=False)
    assert dm.spec.class_names[0] == "T-shirt/top" and len(dm.splits["test"][0]) == 20


def test_channels_last_gives_the_same_outputs(tmp_path):
    cfg = compose(["model=resnet", "data=digits"], tmp_path)
    spec = build_datamodule(cfg.data, cfg.model).spec
    torch.manual_seed(0)
    plain = build_task(cfg, spec).eval()
    cfg.channels_last = True
    nhwc = build_task(cfg, spec).eval()
    nhwc.load_state_dict(plain.state_dict())
    x = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    assert nhwc.net.features.stem.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(plain(x), nhwc(x), atol=1e-5)


GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize(
    ("overrides", "accelerator", "nhwc"),
    [
        (["model=cnn"], "cpu", True),  # oneDNN's convolutions are faster in NHWC on the CPU
        (["model=unet", "data=shapes", "data.count=40", "model.net.depth=2", "model.net.base_width=4"], "cpu", True),
        (["model=lenet5"], "cpu", False),  # no faster there
        (["model=timm", "model.pretrained=false"], "cpu", False),  # slower there
        (["model=cnn", "channels_last=false"], "cpu", False),
        pytest.param(["model=cnn"], "gpu", False, marks=GPU),  # NHWC pays there with bf16: channels_last=true
    ],
    ids=["cnn", "unet", "lenet5", "timm", "cnn-false", "cnn-gpu"],
)
def test_channels_last_auto_trains_the_nets_it_speeds_up_in_nhwc_on_the_cpu(tmp_path, overrides, accelerator, nhwc):
    import lightning as L

    cfg = compose(["data=digits", *overrides], tmp_path)
    dm = build_datamodule(cfg.data, cfg.model)
    task = build_task(cfg, dm.spec)
    conv = next(m for m in task.net.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert not conv.weight.is_contiguous(memory_format=torch.channels_last)  # decided where the run trains
    trainer = L.Trainer(accelerator=accelerator, devices=1, fast_dev_run=1, logger=False, enable_progress_bar=False)
    trainer.fit(task, datamodule=dm)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) is nhwc and task.channels_last is nhwc
    x = torch.randint(0, 256, (2, *dm.spec.input_shape), dtype=torch.uint8, device=task.device)
    assert torch.isfinite(task.eval()(x)).all()
