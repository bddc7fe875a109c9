"""End to end through zoo.run: each family learns, the run folder is complete, eval/resume work, nothing is lost."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import compose
from zoo.errors import ZooError
from zoo.run import evaluate, train


def test_mlp_learns_digits(train_run):
    metrics, _ = train_run("model=mlp", "data=digits", "trainer.max_epochs=30", "recipe=none")  # the plain MLP
    assert metrics["test/acc"] >= 0.97


def test_logistic_regression_learns_breast_cancer(train_run):
    metrics, _ = train_run("model=logistic", "data=breast_cancer", "trainer.max_epochs=30")
    assert metrics["test/acc"] >= 0.94


def test_softmax_regression_learns_iris(train_run):
    metrics, _ = train_run("model=logistic", "data=iris", "optimizer.lr=0.05", "trainer.max_epochs=40")
    assert metrics["test/acc"] >= 0.9


def test_linear_regression_recovers_the_house_price_line(train_run):
    metrics, _ = train_run(
        "model=linear", "data=house_prices", "optimizer=sgd", "optimizer.lr=0.1", "trainer.max_epochs=30"
    )
    assert metrics["test/r2"] > 0.9
    assert metrics["test/rmse"] < 35  # the generator's noise is 25 (thousands)


def test_mlp_regression_on_boston_and_logistic_on_its_binary_target(train_run):
    reg, _ = train_run("model=mlp", "data=boston", "model.net.hidden=[64,32]", "trainer.max_epochs=60", folder="reg")
    # a tuned SVR reaches 4.46; this shortened recipe (60 epochs, [64,32]) reads 4.0-4.9 over seeds 1-7 and 42 on
    # the 102 test rows (the full recipe, the bare pair, is held to 4.0 in test_recipes); a mean predictor reads 9
    assert reg["test/rmse"] < 5.0
    clf, _ = train_run("model=logistic", "data=boston", "data.target=above_median", folder="clf")
    assert clf["test/acc"] > 0.8


def test_run_folder_holds_config_checkpoints_metrics_history_and_curves(train_run):
    metrics, out = train_run("trainer.max_epochs=4")
    assert (out / "config.yaml").is_file()
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert len(list((out / "checkpoints").glob("best-epoch*.ckpt"))) == 1
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert set(metrics) >= {"test/acc", "test/loss", "test/f1"}
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]  # counted from 1, as the progress and figures count
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr"} <= set(rows[0])
    assert float(rows[-1]["train/loss"]) < float(rows[0]["train/loss"])
    assert (out / "learning_curves.png").stat().st_size > 10_000


def test_last_ckpt_is_a_hard_link_to_the_best_checkpoint_or_a_copy_where_links_fail(train_run, monkeypatch):
    _, out = train_run("trainer.max_epochs=4", "data.val_fraction=0.5", folder="linked")
    (best,) = (out / "checkpoints").glob("best-epoch*.ckpt")
    assert (out / "checkpoints" / "last.ckpt").samefile(best), (  # one file under two names, written once
        "Lightning no longer writes last.ckpt through ModelCheckpoint._save_checkpoint at the best one's step "
        "(zoo.internals.LastCheckpointLinked)"
    )

    def refuse(*args: object) -> None:
        raise OSError("hard links are not supported")

    monkeypatch.setattr(os, "link", refuse)
    _, out = train_run("trainer.max_epochs=4", "data.val_fraction=0.5", folder="copied")
    (best,) = (out / "checkpoints").glob("best-epoch*.ckpt")
    last = out / "checkpoints" / "last.ckpt"
    assert not last.samefile(best) and last.read_bytes() == best.read_bytes()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == sorted([best.name, "last.ckpt"])


def test_checkpoints_load_with_weights_only(train_run):
    _, out = train_run("trainer.max_epochs=1")
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["zoo_config"]["model"]["name"] == "mlp"
    assert ckpt["hyper_parameters"]["spec"]["name"] == "digits"


def test_eval_reproduces_the_test_metrics_from_a_checkpoint(train_run, tmp_path):
    metrics, out = train_run("model=logistic", "data=wine", "trainer.max_epochs=5")
    best = next((out / "checkpoints").glob("best-epoch*.ckpt"))
    cfg = compose([f"ckpt_path={best}"], tmp_path, config_name="eval")
    again = evaluate(cfg)
    assert again == pytest.approx(metrics, abs=1e-6)
    assert json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text()) == again


def test_resume_continues_the_history_in_a_new_folder(train_run, tmp_path):
    _, first = train_run("trainer.max_epochs=2", "data=iris", folder="first")
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file() and p.suffix != ".log"}
    _, second = train_run("trainer.max_epochs=4", "data=iris", "ckpt_path=last", folder="second")
    rows = list(csv.DictReader((second / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert all(p.read_bytes() == content for p, content in before.items())  # the first run is untouched
    with pytest.raises(
        ZooError, match=r"has trained 4 epochs and trainer.max_epochs=3; give trainer.max_epochs above 4"
    ):
        train_run("trainer.max_epochs=3", "data=iris", "ckpt_path=last", folder="third")


def test_the_history_records_the_learning_rate_each_epoch_trained_at(train_run):
    _, out = train_run("recipe=none", "optimizer.lr=0.005", "scheduler=cosine", "trainer.max_epochs=2")
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.005, 0.0025])  # not the rate the next epoch starts at


def test_ckpt_path_last_without_an_earlier_run_says_so(train_run):
    with pytest.raises(ZooError, match="ckpt_path=last: no last.ckpt under .*mlp-digits"):
        train_run("ckpt_path=last")


def test_an_existing_run_folder_is_never_overwritten(train_run):
    _, out = train_run("trainer.max_epochs=1")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ZooError, match="already holds a run .*nothing was overwritten"):
        train_run("trainer.max_epochs=1")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_same_seed_same_metrics(train_run):
    a, _ = train_run("model.net.dropout=0.2", "trainer.max_epochs=3", folder="a")
    b, _ = train_run("model.net.dropout=0.2", "trainer.max_epochs=3", folder="b")
    assert a == b


@pytest.mark.parametrize("preset", ["fdr", "overfit", "limit", "profiler"])
def test_debug_presets_run(train_run, preset):
    metrics, out = train_run(f"debug={preset}")
    assert "test/loss" in metrics
    if preset == "fdr":  # one batch through everything, no checkpoint: ckpt_path=last never resumes from it
        assert not list(out.rglob("*.ckpt"))
    if preset == "overfit":
        rows = list(csv.DictReader((out / "history.csv").open()))
        assert float(rows[-1]["train/loss"]) < 0.1 * float(rows[0]["train/loss"])


@pytest.mark.parametrize("logger, produced", [("csv", "csv/metrics.csv"), ("tensorboard", "tensorboard")])
def test_csv_and_tensorboard_loggers(train_run, logger, produced):
    _, out = train_run(f"logger={logger}", "trainer.max_epochs=1")
    assert (out / produced).exists()


def test_wandb_offline_run_is_written_without_an_account(train_run):
    metrics, out = train_run("logger=wandb", "trainer.max_epochs=2")
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    (record,) = runs[0].glob("run-*.wandb")  # what `wandb sync` uploads later: config, history, summary
    deadline = time.monotonic() + 60  # wandb-core may still be flushing the file after finish() returns
    while b"test/acc" not in (data := record.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert b"zoo.nets.mlp.MLP" in data and b"digits" in data  # the composed config
    assert b"test/acc" in data and json.dumps(metrics["test/acc"]).encode()[:6] in data  # the final metrics
    media = runs[0] / "files" / "media" / "images" / "test"  # the run folder's figures, as W&B images
    assert list(media.glob("confusion_matrix_*.png")) and list(media.glob("predictions_*.png"))


def test_a_run_that_fails_to_start_leaves_no_run_behind(tmp_path):
    cfg = compose(["data=csv", f"data.path={tmp_path}/none.csv", "data.target=y"], tmp_path)
    with pytest.raises(ZooError, match="not found"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "config.yaml").exists()  # the same folder can be used again
