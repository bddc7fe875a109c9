"""Extreme Learning Machine: closed-form training through the usual command line, data in batches, bad settings."""

from __future__ import annotations

import json
import re

import pytest
import torch

from zoo.errors import ZooError
from zoo.nets.elm import ELM, gram


def test_elm_classifies_digits_in_one_pass_without_an_optimiser(train_run):
    metrics, out = train_run("model=elm", "trainer.max_epochs=30")
    assert metrics["test/acc"] >= 0.97
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert (out / "confusion_matrix.png").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    assert (out / "history.csv").read_text().count("\n") == 2  # stopped after the one epoch that solves


def test_elm_regression_on_boston(train_run):
    metrics, _ = train_run("model=elm", "data=boston", "model.net.hidden=[300]", "model.ridge=1")
    assert metrics["test/r2"] > 0.72  # linear regression: about 0.7


def test_batches_give_the_same_solution_as_the_whole_set():
    x, t = torch.randn(300, 5), torch.randn(300, 2)
    whole, batched = ELM(5, 2, [40], ridge=0.0, seed=3), ELM(5, 2, [40], ridge=0.0, seed=3)
    whole.accumulate(x, t)
    for i in range(0, 300, 64):
        batched.accumulate(x[i : i + 64], t[i : i + 64])
    assert torch.allclose(whole(x), batched(x), atol=1e-4)
    h = whole.hidden(x).double()  # ridge 0: the Moore-Penrose least-squares solution
    assert torch.allclose(whole.output.double(), torch.linalg.pinv(h) @ t.double(), atol=1e-3)


@pytest.mark.parametrize("width", [40, 301, 501])
def test_gram_from_the_upper_block_triangle_is_the_whole_product(width):
    h = torch.rand(700, width, dtype=torch.float64)
    assert torch.allclose(gram(h), h.T @ h, rtol=0, atol=1e-10)


@pytest.mark.parametrize("activation", ["tanh", "relu", "rbf"])
def test_every_activation_fits_a_smooth_function(activation):
    x = torch.linspace(-2, 2, 400).unsqueeze(1)
    net = ELM(1, 1, [60], activation=activation, ridge=1e-6)
    net.accumulate(x, torch.sin(x))
    assert (net(x) - torch.sin(x)).abs().max() < 0.1


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.ridge=-1", "model.ridge=-1 must be >= 0"),
        ("model.net.hidden=[0]", "model.net.hidden=[0] is not valid for an ELM"),
        ("model.net.activation=swish", "model.net.activation='swish' is not an ELM activation"),
    ],
)
def test_bad_elm_settings_are_clear_errors(train_run, override, message):
    with pytest.raises(ZooError, match=re.escape(message)):
        train_run("model=elm", override)
