"""What a CNN sees: image runs of convolutional nets draw their first layer's filters, the feature maps of a few test
images and one convolution worked out step by step, all from the run's own weights and test images; other runs
draw none of them and compute nothing for them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo.tasks.classification as classification
from zoo.nets.cnn import CNN
from zoo.nets.inspect import look_inside, stages
from zoo.tasks.classification import ClassificationTask

FIGURES = ("filters.png", "feature_maps.png", "convolution.png")


@pytest.fixture
def reports(monkeypatch):
    """The test reports of the runs a test makes, as the run folder's writer received them."""
    kept: list[dict] = []
    original = ClassificationTask.test_report

    def keep(self, datamodule):
        report = original(self, datamodule)
        kept.append(report)
        return report

    monkeypatch.setattr(ClassificationTask, "test_report", keep)
    return kept


def assert_pngs(folder, names=FIGURES) -> None:
    for name in names:
        assert (folder / name).read_bytes()[:4] == b"\x89PNG", name


def test_a_cnn_run_draws_its_filters_maps_and_one_convolution_from_its_own_numbers(train_run, reports):
    _, out = train_run("model=cnn", "data=digits", "recipe=none", "trainer.max_epochs=1", "seed=1")  # no batch norm
    assert_pngs(out)
    report = reports[-1]
    tested = torch.load(next((out / "checkpoints").glob("best-*.ckpt")), weights_only=True)["state_dict"]
    weight, bias = tested["net.features.conv0.weight"], tested["net.features.conv0.bias"]
    assert report["filters"]["layer"] == "features.conv0"
    np.testing.assert_array_equal(report["filters"]["weights"], weight.numpy())

    step = report["convolution"]
    o, (i, j) = step["channel"], step["position"]
    assert step["total"] == pytest.approx(step["value"], abs=1e-5)  # the figure's sum is the net's value
    hand = float((step["window"].astype(np.float64) * step["kernel"]).sum()) + step["bias"]
    assert hand == pytest.approx(step["value"], abs=1e-5)
    np.testing.assert_array_equal(step["kernel"], weight[o].numpy())
    assert step["bias"] == pytest.approx(float(bias[o]))
    by_torch = F.conv2d(torch.from_numpy(step["image"])[None], weight, bias, padding="same")[0]
    assert float(by_torch[o, i, j]) == pytest.approx(step["value"], abs=1e-5)
    assert step["value"] == pytest.approx(float(by_torch.max()))  # the filter's largest output on that image
    assert step["feature_map"][i, j] == step["value"]

    maps = report["feature_maps"]
    assert [s["name"] for s in maps["stages"]] == [
        "features.conv0",
        "features.pool0",
        "features.conv1",
        "features.pool1",
    ]
    assert [tuple(s["shape"]) for s in maps["stages"]] == [(32, 8, 8), (32, 4, 4), (64, 4, 4), (64, 2, 2)]
    assert maps["inputs"].shape == (3, 1, 8, 8) and len(set(maps["titles"])) == 3  # three classes
    assert maps["stages"][0]["maps"].shape == (3, 6, 8, 8)

    assert_summary_lists_every_conv_and_pool_with_its_output_shape(out)

    _, again = train_run("model=cnn", "data=digits", "recipe=none", "trainer.max_epochs=1", "seed=2", folder="seed2")
    other = reports[-1]
    assert not np.allclose(other["filters"]["weights"], report["filters"]["weights"])
    assert other["convolution"]["total"] == pytest.approx(other["convolution"]["value"], abs=1e-5)


def assert_summary_lists_every_conv_and_pool_with_its_output_shape(out) -> None:
    """``model_summary.txt`` names each Conv2d and MaxPool2d of the cnn (not a container) with the shape it outputs."""
    rows = {line.split()[0]: line.split() for line in (out / "model_summary.txt").read_text().splitlines()[1:-1]}
    net = CNN([1, 8, 8], 10)  # conf/model/cnn.yaml's net on digits
    shapes: dict[str, list[int]] = {}

    def record(name: str):
        def hook(module, args, out) -> None:
            shapes[name] = list(out.shape[1:])

        return hook

    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d | nn.MaxPool2d):
            module.register_forward_hook(record(name))
    net(torch.zeros(2, 1, 8, 8))
    assert len(shapes) == 4
    for name, shape in shapes.items():
        assert name in rows, name
        assert " ".join(rows[name][2:-1]) == str(["N", *shape]).replace("'", ""), rows[name]


def test_lenet5_draws_them_on_its_32x32_input(train_run, reports):
    _, out = train_run("model=lenet5", "data=digits", "trainer.max_epochs=1")
    assert_pngs(out)
    report = reports[-1]
    assert report["feature_maps"]["inputs"].shape[-2:] == (32, 32)  # what the net receives: resized from 8x8
    assert [s["name"] for s in report["feature_maps"]["stages"]][:4] == ["features.c1", "features.s2", "features.c3",
                                                                        "features.s4"]  # fmt: skip
    step = report["convolution"]
    assert step["kernel"].shape == (1, 5, 5)
    assert step["total"] == pytest.approx(step["value"], abs=1e-5)


@pytest.mark.slow
def test_a_resnet_shows_its_stages_not_every_block(train_run, reports):
    _, out = train_run("model=resnet", "data=digits", "trainer.max_epochs=1")
    assert_pngs(out)
    names = [s["name"] for s in reports[-1]["feature_maps"]["stages"]]
    assert names == ["features.stem", "features.stage1", "features.stage2", "features.stage3"]
    step = reports[-1]["convolution"]
    assert step["total"] == pytest.approx(step["value"], abs=1e-5)


@pytest.mark.parametrize("run", [["trainer.max_epochs=1"], ["model=logistic", "data=iris", "trainer.max_epochs=1"]])
def test_runs_without_convolutions_draw_none_and_compute_nothing(train_run, reports, monkeypatch, run):
    def refuse(*args, **kwargs):
        raise AssertionError("a net without convolutions was looked inside")

    monkeypatch.setattr(classification, "look_inside", refuse)
    _, out = train_run(*run)
    assert (out / "confusion_matrix.png").exists()
    assert not any((out / name).exists() for name in FIGURES)
    assert not {"filters", "feature_maps", "convolution"} & set(reports[-1])


@pytest.mark.parametrize(
    "settings",
    [
        {"stride": 2, "padding": 1},
        {"padding": (1, 2), "dilation": 2},
        {"padding": "same", "kernel_size": 4},  # the odd pixel of padding goes right and below
        {"padding": 2, "padding_mode": "reflect"},
        {"padding": "valid", "groups": 2},
    ],
)
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_the_step_by_step_sum_is_the_convolutions_value_whatever_its_settings(settings):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, **{"kernel_size": 3, **settings})
    net = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2))
    x = torch.randn(3, 4, 11, 9)
    inside = look_inside(net, x)
    step = inside["convolution"]
    assert step["total"] == pytest.approx(step["value"], abs=1e-5)
    with torch.no_grad():
        out = conv(x)
    where = (step["index"], step["channel"], *step["position"])
    assert float(out[where]) == step["value"] == float(out.max())
    assert len(step["in_channels"]) == 4 // conv.groups
    assert [s["name"] for s in inside["feature_maps"]["stages"]] == ["0", "2"]


def test_deep_nets_show_a_bounded_number_of_stages():
    wide = nn.Sequential(*[nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.ReLU()) for _ in range(12)])
    assert len(stages(wide)) == 1  # twelve blocks are more rows than a figure holds: the whole stack, once
    deep = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(*[nn.Conv2d(2, 2, 3, padding=1) for _ in range(3)]))
    assert [name for name, _ in stages(deep)] == ["0", "1.0", "1.1", "1.2"]
