"""zoo from Python: fit and load return a Run (metrics, history, figures, predict, evaluate), the command line's
checks and one-line errors, and nets of your own written the three Keras ways."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import zoo
from tests.conftest import ROOT
from tests.test_resume import Payload

QUICK = {"logger": "none", "recipe": "none", "trainer": {"max_epochs": 30}}  # the plain MLP: 64 -> 128 -> 10


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # run folders land in ./logs, as from a notebook's folder
    monkeypatch.delenv("ZOO_FAST", raising=False)


def folders(tmp_path):
    return sorted(p for p in (tmp_path / "logs").rglob("runs/*") if p.is_dir()) if (tmp_path / "logs").is_dir() else []


def test_import_zoo_loads_no_torch():
    code = "import sys, zoo; assert callable(zoo.ZooError); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_fit_returns_the_run_and_a_second_fit_makes_a_new_folder(tmp_path, capsys):
    run = zoo.fit(model="mlp", data="digits", **QUICK)
    printed = capsys.readouterr().out
    assert "epoch 30/30  40 steps  " in printed and "┏" not in printed  # a line per epoch, no bars or tables
    assert run.metrics["test/acc"] >= 0.95
    assert run.folder.is_dir() and (run.folder / "metrics.json").is_file() and run.config.model.name == "mlp"
    history = run.history
    assert list(history.index) == list(range(1, 31)) and {"train/loss", "val/loss", "val/acc"} <= set(history)
    assert not run.task.training and next(run.net.parameters()).device.type == "cpu"
    assert [p.stem for p in run.figures][:1] == ["learning_curves"] and 'alt="confusion_matrix"' in run._repr_html_()
    again = zoo.fit("model=mlp", "data=digits", "logger=none", "recipe=none", "trainer.max_epochs=30")
    assert again.folder != run.folder and again.metrics == pytest.approx(run.metrics)  # the same run, seeded
    assert len(folders(tmp_path)) == 2 and (run.folder / "metrics.json").is_file()


def test_predict_and_evaluate_use_the_runs_preprocessing(caplog):
    from sklearn.datasets import load_digits, load_iris

    run = zoo.fit(model="mlp", data="digits", **QUICK)
    digits = load_digits()
    pixels = (digits.images[:50] * 255 / 16).round().astype(np.uint8)  # raw pixels, as the data module holds them
    rows = run.predict(pixels)
    assert len(rows) == 50 and (rows["predicted"].astype(int) == digits.target[:50]).mean() >= 0.9
    assert run.predict(pixels.reshape(50, 64)).equals(rows)  # flat rows of pixels, as scikit-learn's digits.data
    assert run.predict(pixels[0]).equals(rows.iloc[:1]) and run.predict(pixels[:1, None]).equals(rows.iloc[:1])
    with pytest.raises(
        zoo.ZooError, match=r"^inputs: pixel values run 0\.\.1, scaled to 0\.\.1; give raw pixels 0\.\.255"
    ):
        run.predict(pixels / 255.0)  # scaled as torchvision's ToTensor scales them
    with pytest.raises(
        zoo.ZooError, match=r"^inputs: pixel values run -[\d.]+\.\.[\d.]+; give raw pixels 0\.\.255 \(not"
    ):
        run.predict((pixels - 80.0) / 60.0)  # normalised
    with caplog.at_level(logging.WARNING):
        run.predict(digits.images[:50])  # scikit-learn's own 0..16: predicted, with a warning naming the fix
    assert "far darker than the training images" in caplog.text and "images * 255 / 16" in caplog.text
    assert run.evaluate() == pytest.approx(run.metrics, abs=1e-5)  # the test split again, nothing written
    iris = zoo.fit(model="mlp", data="iris", logger="none", trainer={"max_epochs": 100})
    data = load_iris(as_frame=True)
    predicted = iris.predict(data.frame.drop(columns="target"))["predicted"]  # the columns as the data set names them
    assert (predicted == data.target_names[data.target]).mean() >= 0.9


def test_predict_on_texts_and_token_ids_refuses_what_the_vocabulary_cannot_read():
    run = zoo.fit(model="text_avgpool", data="text_synth", logger="none", trainer={"max_epochs": 2})
    size = run.task.spec.vocab_size
    assert len(run.predict(["a good day", ""])) == 2 and len(run.predict(np.array([[1, 2, 3]]))) == 1
    with pytest.raises(
        zoo.ZooError, match=rf"^inputs: give texts, or token ids as integers \[N, length\] in 0..{size - 1} "
    ):
        run.predict(np.array([[size, 2, 3]]))  # an id past the vocabulary
    with pytest.raises(zoo.ZooError, match=r"^inputs: nothing to predict \(no rows\)"):
        run.predict([])


def test_predict_on_a_run_that_does_not_classify_or_regress_is_one_line():
    """An embedding (like a detector's boxes or a segmenter's masks) is not a row of classes: refused as
    scripts/predict.py refuses it."""
    run = zoo.fit(model="triplet", data="digits", logger="none", trainer={"max_epochs": 1})
    with pytest.raises(zoo.ZooError, match=r"^predict handles classification and regression; this is a triplet model$"):
        run.predict(np.zeros((2, 1, 8, 8), dtype=np.uint8))


def test_drawing_a_runs_figures_leaves_the_notebooks_plotting_backend_alone(tmp_path):
    """Figures go to files through bare matplotlib Figures: the backend a notebook set (its inline one; here svg)
    stays, so the user's own plots still show after a run."""
    code = (
        "import matplotlib; matplotlib.use('svg'); from pathlib import Path; "
        "from zoo.plots import plot_learning_curves; "
        "plot_learning_curves([{'epoch': 1, 'train/loss': 1.0, 'val/loss': 1.2}, {'epoch': 2, 'train/loss': 0.5, "
        "'val/loss': 0.7}], Path('curves.png')); print(matplotlib.get_backend(), Path('curves.png').stat().st_size)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    backend, size = out.stdout.split()
    assert backend == "svg" and int(size) > 1000


def test_a_mistake_is_the_command_lines_one_line_error_and_writes_nothing(tmp_path):
    with pytest.raises(zoo.ZooError, match=r"^optimizer.lr=abc is not valid; optimizer.lr takes a number"):
        zoo.fit("optimizer.lr=abc")
    with pytest.raises(zoo.ZooError, match=r"^data=nope is not a zoo data; choose one of .*digits"):
        zoo.fit(data="nope")
    with pytest.raises(zoo.ZooError, match="one run"):
        zoo.fit("--multirun", "seed=1,2")
    assert not (tmp_path / "logs").exists()


def test_keyword_arguments_are_overrides():
    from zoo.api import as_overrides

    given = dict(model="mlp", trainer={"max_epochs": 5}, model_net={"hidden": [64, 32]}, seed=1, ckpt_path=None)
    assert list(as_overrides(given)) == [
        "model=mlp", "trainer.max_epochs=5", "model_net.hidden=[64,32]", "seed=1", "ckpt_path=null"
    ]  # fmt: skip
    assert list(as_overrides({"data": {"path": "my file.csv", "drop": ["Name", "Ticket"], "flag": True}})) == [
        "data.path='my file.csv'", "data.drop=[Name,Ticket]", "data.flag=true"
    ]  # fmt: skip


class TwoLayers(nn.Module):
    """Keras' subclassing way."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden, self.output = nn.LazyLinear(128), nn.LazyLinear(10)

    def forward(self, x):
        return self.output(torch.relu(self.hidden(x.flatten(1))))


def functional() -> nn.Module:
    """Keras' functional way: a layer called on a tensor gives a tensor; the model is the graph between them."""
    inputs = zoo.Input(shape=(1, 8, 8))
    x = nn.ReLU()(nn.LazyLinear(128)(nn.Flatten()(inputs)))
    return zoo.Model(inputs, nn.LazyLinear(10)(x))


@pytest.mark.parametrize(
    "build",
    [
        TwoLayers,
        lambda: zoo.Sequential([nn.Flatten(), nn.LazyLinear(128), nn.ReLU(), nn.LazyLinear(10)]),
        functional,
    ],
    ids=["subclassing", "sequential", "functional"],
)
def test_a_net_of_your_own_reaches_the_mlps_accuracy(build):
    mlp = zoo.fit(model="mlp", data="digits", **QUICK)  # the same layers: 64 -> 128 -> ReLU -> 10
    own = zoo.fit(net=build(), data="digits", **QUICK)
    assert own.metrics["test/acc"] >= mlp.metrics["test/acc"] - 0.015
    assert (own.folder / "checkpoints" / "last.ckpt").is_file() and (own.folder / "learning_curves.png").is_file()


def test_a_net_that_does_not_fit_the_data_is_refused_before_training(tmp_path):
    with pytest.raises(zoo.ZooError, match=r"gives outputs \[2, 5\] for 2 inputs but data=digits needs \[2, 10\]"):
        zoo.fit(net=zoo.Sequential([nn.Flatten(), nn.LazyLinear(5)]), data="digits", logger="none")
    with pytest.raises(zoo.ZooError, match=r"forward fails on data=digits's inputs, float32 \[2, 1, 8, 8\]"):
        zoo.fit(net=nn.Linear(3, 10), data="digits", logger="none")
    with pytest.raises(zoo.ZooError, match="not a torch.nn.Module"):
        zoo.fit(net="mlp", data="digits")
    with pytest.raises(zoo.ZooError, match="not both"):
        zoo.fit(model="mlp", net=nn.Linear(64, 10))
    with pytest.raises(zoo.ZooError, match=r"^Sequential: layer 1 is 'relu', not a torch module \(nn.Linear"):
        zoo.Sequential([nn.Flatten(), "relu"])
    with pytest.raises(zoo.ZooError, match=r"^Sequential: layer 1 is <class .*ReLU'>, not a torch module .*; call it"):
        zoo.Sequential([nn.Flatten()]).add(nn.ReLU)
    assert not (tmp_path / "logs").exists()


def test_load_reads_a_run_folder_or_checkpoint_safely(tmp_path):
    run = zoo.fit(model="mlp", data="digits", **QUICK)
    for where in (run.folder, run.folder / "checkpoints" / "last.ckpt"):
        loaded = zoo.load(where)
        assert loaded.folder == run.folder and not loaded.task.training
    assert zoo.load(run.folder).evaluate() == pytest.approx(run.metrics, abs=1e-5)  # the best checkpoint
    with pytest.raises(zoo.ZooError, match="'missing' not found; give a zoo run folder"):
        zoo.load("missing/")
    tampered, marker = tmp_path / "tampered.ckpt", tmp_path / "pwned"
    torch.save({"state_dict": {}, "zoo_config": Payload(marker), "hyper_parameters": {}}, tampered)
    with pytest.raises(zoo.ZooError, match="would run code when loaded"):
        zoo.load(tampered)
    assert not marker.exists()


def test_a_run_of_your_own_net_loads_with_that_net_again(tmp_path):
    run = zoo.fit(net=functional(), data="digits", **QUICK)
    code = f"import zoo; zoo.load({str(run.folder)!r})"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "this run trained a net of your own (zoo.nets.functional.Model)" in proc.stderr
    code = (
        "import zoo, torch; from torch import nn; from tests.test_api import functional; "
        f"r = zoo.load({str(run.folder)!r}, net=functional()); print(r.evaluate()['test/acc'])"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert float(proc.stdout.strip().splitlines()[-1]) == pytest.approx(run.metrics["test/acc"], abs=1e-6)


def test_a_functional_graph_replays_branches_and_keeps_batch_norm_statistics():
    norm = nn.BatchNorm1d(4)
    inputs = zoo.Input(shape=(4,))
    left, right = nn.Linear(4, 3), nn.Linear(4, 3)
    x = norm(inputs)
    joined = torch.cat([torch.relu(left(x)), right(x)], dim=1) * 2
    model = zoo.Model(inputs, nn.Linear(6, 2)(joined) + x[:, :2])
    assert torch.equal(norm.running_mean, torch.zeros(4)) and int(norm.num_batches_tracked) == 0
    model.eval()
    batch = torch.randn(5, 4)
    with torch.no_grad():
        expected = model.layers[-1](torch.cat([torch.relu(left(norm(batch))), right(norm(batch))], 1) * 2)
        assert torch.allclose(model(batch), expected + norm(batch)[:, :2])
    assert len(list(model.parameters())) == 2 + 2 + 2 + 2  # norm, left, right, head: each once


def test_zoo_fast_caps_every_fit_at_two_epochs(monkeypatch):
    monkeypatch.setenv("ZOO_FAST", "1")
    run = zoo.fit(model="mlp", data="digits", logger="none")
    assert len(run.history) == 2


def test_history_is_a_dataframe_keras_users_plot():
    run = zoo.fit(model="mlp", data="iris", **QUICK)
    assert isinstance(run.history, pd.DataFrame) and run.history.index.name == "epoch"


def test_in_ipython_a_zoo_error_shows_as_its_one_line(monkeypatch, capsys):
    from zoo.errors import one_line_errors_in_ipython

    class Shell:
        handlers: dict = {}

        def set_custom_exc(self, types, handler):
            Shell.handlers = {t: handler for t in types}

    fake = type(sys)("IPython")
    fake.get_ipython = Shell
    monkeypatch.setitem(sys.modules, "IPython", fake)
    one_line_errors_in_ipython()
    shown = Shell.handlers[zoo.ZooError](None, zoo.ZooError, zoo.ZooError("data=nope is not a zoo data"), None)
    assert shown == [] and capsys.readouterr().err == "ZooError: data=nope is not a zoo data\n"
