"""Early stopping: stops on a stalled metric, restores the best epoch's weights, draws the overfitting figure."""

from __future__ import annotations

import csv

import pytest

from tests.conftest import compose
from zoo.errors import ZooError

OVERFIT = ("model.net.hidden=[512,512]", "data.batch_size=16", "trainer.max_epochs=40", "data.val_fraction=0.1")


def test_stops_restores_the_best_weights_and_marks_the_stop(tmp_path):
    from zoo.callbacks import EarlyStopping, RunOutputs
    from zoo.outputs import RunFolder
    from zoo.run import build_datamodule, build_task, build_trainer, prepare_process

    cfg = compose([*OVERFIT, "callbacks=none"], tmp_path)
    prepare_process(cfg.seed)
    data = build_datamodule(cfg.data, cfg.model)
    task = build_task(cfg, data.spec)
    stopper = EarlyStopping(monitor="val/loss", patience=2)
    out = tmp_path / "run"
    out.mkdir()
    trainer = build_trainer(cfg, out, {}, extra_callbacks=[RunOutputs(RunFolder(out), {}), stopper])
    trainer.fit(task, datamodule=data)
    rows = list(csv.DictReader((out / "history.csv").open()))
    losses = [float(r["val/loss"]) for r in rows]
    assert len(rows) < 40 and stopper.stopped_epoch == len(rows) - 1
    assert losses.index(min(losses)) + 1 == stopper.best_epoch == len(rows) - 2  # patience 2; epochs from 1
    restored = trainer.validate(task, datamodule=data, verbose=False)[0]["val/loss"]
    assert restored == pytest.approx(min(losses), rel=1e-4)  # the best epoch's weights, not the last
    assert (out / "overfitting.png").stat().st_size > 10_000


def test_early_stopping_from_the_config_on_a_maximised_metric(train_run):
    _, out = train_run(*OVERFIT, "callbacks.early_stopping.patience=2", "callbacks.early_stopping.monitor=val/acc",
                       "callbacks.early_stopping.mode=max")  # fmt: skip
    assert len(list(csv.DictReader((out / "history.csv").open()))) < 40
    assert (out / "overfitting.png").is_file()


@pytest.mark.parametrize("epochs, ended_by", [(100, "early stopping"), (3, "the trainer's limit")])
def test_the_experiments_summary_says_what_ended_training(train_run, epochs, ended_by):
    _, out = train_run("experiment=early_stopping_digits", f"trainer.max_epochs={epochs}", folder=str(epochs))
    assert f"; {ended_by}" in (out / "summary.md").read_text()


def test_an_unknown_monitor_names_the_logged_metrics(train_run):
    with pytest.raises(ZooError, match=r"monitor='val/auc' is not a logged metric; choose one of .*val/acc"):
        train_run("callbacks.early_stopping.patience=2", "callbacks.early_stopping.monitor=val/auc")
