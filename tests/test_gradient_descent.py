"""The first lessons as a student checks them: derivatives by hand equal autograd's at every step, gradient descent
ends at the least-squares minimum, and the figures are drawn from the run's own path."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torch import nn

from zoo.errors import ZooError
from zoo.report import summary_text
from zoo.tasks.linear import dense_gradients, output_gradient

LINEAR = ("model=linear", "data=house_prices", "optimizer=sgd")


def history(out) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "history.csv").open()))


@pytest.mark.parametrize(
    ("loss", "outputs", "target"),
    [
        ("mse", 2, lambda n: torch.randn(n, 2, dtype=torch.float64)),
        ("bce", 1, lambda n: torch.randint(0, 2, (n,))),
        ("cross_entropy", 4, lambda n: torch.randint(0, 4, (n,))),
    ],
)
def test_the_slides_derivatives_equal_autograd(loss, outputs, target):
    torch.manual_seed(0)
    layer = nn.Linear(3, outputs).double()
    x, y = torch.randn(32, 3, dtype=torch.float64), target(32)
    out = layer(x)
    fn = {"mse": nn.MSELoss(), "bce": nn.BCEWithLogitsLoss(), "cross_entropy": nn.CrossEntropyLoss()}[loss]
    value = fn(out.squeeze(1), y.double()) if loss == "bce" else fn(out, y)
    value = value + 0.01 * layer.weight.abs().sum() + 0.02 * layer.weight.pow(2).sum()
    auto_w, auto_b = torch.autograd.grad(value, [layer.weight, layer.bias])
    grad_w, grad_b = dense_gradients(x, output_gradient(loss, out.detach(), y), layer.weight.detach(), 0.01, 0.02)
    torch.testing.assert_close(grad_w, auto_w, rtol=0, atol=1e-12)
    torch.testing.assert_close(grad_b, auto_b, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "overrides",
    [
        (*LINEAR, "data.batch_size=16", "optimizer.lr=0.05", "trainer.max_epochs=4"),
        ("model=logistic", "data=breast_cancer", "trainer.max_epochs=3"),
        ("model=logistic", "data=digits", "trainer.max_epochs=2", "model.l1=1e-4", "model.l2=1e-3"),
    ],
    ids=["linear-mse", "logistic-bce", "softmax-ce-penalties"],
)
def test_manual_gradients_equal_autograd_at_every_step_and_train_the_same(train_run, overrides):
    checked, out = train_run(*overrides, "model.gradients=check", folder="check")
    rows = history(out)
    assert rows and all(float(r["train/grad_diff"]) <= 1e-6 for r in rows)  # the epoch's largest gap, every step
    manual, _ = train_run(*overrides, "model.gradients=manual", folder="manual")
    auto, _ = train_run(*overrides, folder="autograd")
    for key, value in auto.items():
        assert manual[key] == pytest.approx(value, abs=1e-4) and checked[key] == pytest.approx(value, abs=1e-4)


def test_full_batch_gradient_descent_ends_at_the_least_squares_minimum(train_run, capsys):
    metrics, out = train_run("experiment=intro_exemplo01_linear_regression")
    for name in ("loss_surface.png", "fitted_line.png", "gradient_descent.gif", "coefficients.csv", "summary.md"):
        assert (out / name).is_file(), name
    surface = np.load(out / "loss_surface.npz")
    path = list(csv.DictReader((out / "gd_path.csv").open()))
    assert len(path) == 101  # full batch: one step per epoch, and where the last one left w and b
    last = np.array([float(path[-1]["w"]), float(path[-1]["b"])])
    gap = np.linalg.norm(last - surface["minimum"]) / np.linalg.norm(surface["minimum"])
    assert gap < 0.01
    losses = [float(r["loss"]) for r in path]
    assert losses[-1] < losses[0] / 10 and surface["loss"].min() >= losses[-1] - 1e-6  # at the bowl's bottom
    printed = capsys.readouterr().out
    learnt = next(line for line in printed.splitlines() if line.startswith("after the last step: "))
    w = float(learnt.split("=")[1].split("×")[0])
    assert 2.7 < w < 3.3  # the data: price = 3 × area + 20 + noise, in its own units
    summary = (out / "summary.md").read_text()
    assert "n/a" not in summary and f"{metrics['test/r2']:.3f}" in summary


def test_the_path_and_figures_follow_the_run(train_run):
    runs = [train_run(*LINEAR, "data.batch_size=full", "trainer.max_epochs=5", f"seed={seed}", folder=f"s{seed}")
            for seed in (1, 2)]  # fmt: skip
    starts = [next(csv.DictReader((out / "gd_path.csv").open())) for _, out in runs]
    assert starts[0]["w"] != starts[1]["w"]  # another seed, another start, another path
    _, other = train_run(*LINEAR, "data.batch_size=full", "trainer.max_epochs=5", "seed=1", "data.noise=80",
                         folder="noisy")  # fmt: skip
    noisy, calm = np.load(other / "loss_surface.npz"), np.load(runs[0][1] / "loss_surface.npz")
    assert noisy["loss"].min() > calm["loss"].min()  # noisier data, a higher floor to the bowl


def test_sgd_records_one_point_per_sample(train_run):
    _, out = train_run(*LINEAR, "data.batch_size=1", "optimizer.lr=0.01", "trainer.max_epochs=2")
    rows = list(csv.DictReader((out / "gd_path.csv").open()))
    assert len(rows) == int(history(out)[-1]["step"]) + 1 == 2 * 140 + 1  # 140 training rows, a step each


def test_two_inputs_draw_the_surface_over_both_weights(tmp_path, train_run):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    table = tmp_path / "two.csv"
    lines = ["a,b,y", *(f"{a},{b},{2 * a - b + rng.normal(0, 0.1)}" for a, b in x)]
    table.write_text("\n".join(lines) + "\n")
    _, out = train_run("model=linear", "data=csv", f"data.path={table}", "data.target=y", "data.batch_size=full",
                       "optimizer=sgd", "optimizer.lr=0.3", "trainer.max_epochs=60")  # fmt: skip
    surface = np.load(out / "loss_surface.npz")
    assert list(surface["labels"]) == ["w1", "w2"] and (out / "loss_surface.png").is_file()
    assert not (out / "fitted_line.png").exists()  # a line over the data needs one input


def test_no_path_for_a_net_the_surface_cannot_show(train_run):
    _, out = train_run("model=mlp", "data=house_prices", "trainer.max_epochs=1")
    assert not (out / "loss_surface.png").exists() and not (out / "gd_path.csv").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("model=mlp", "+model.gradients=manual"), r"model.gradients=manual derives the gradients of one dense layer"),
        (("model=linear", "data=house_prices", "model.gradients=chain"), r"model.gradients='chain' is not valid"),
        (("model=linear", "data=house_prices", "model.gradients=manual", "model.loss=mae"), r"model.loss=mae needs"),
    ],
)
def test_gradients_by_hand_refuse_what_they_cannot_derive(train_run, overrides, message):
    with pytest.raises(ZooError, match=message):
        train_run(*overrides)


def test_a_summary_names_what_the_run_did_not_produce_without_failing():
    text = summary_text("accuracy {test_acc:.3f}, r2 {test_r2:.2f} after {epochs} epochs", {"test_acc": 0.98765})
    assert text == "accuracy 0.988, r2 n/a after n/a epochs"
