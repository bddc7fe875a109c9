"""Cross-validation: K folds, each its own run folder, metrics as mean and std, folds checked against the classes."""

from __future__ import annotations

import csv
import json
import statistics

import pytest
import yaml

import zoo
from zoo.errors import ZooError


def test_three_folds_report_mean_and_std_and_keep_each_fold(train_run, capsys):
    metrics, out = train_run("data=iris", "model=logistic", "optimizer.lr=0.05", "trainer.max_epochs=15", "cv.folds=3",
                             "summary='held out: {cv_acc:.4f}'")  # fmt: skip
    rows = list(csv.DictReader((out / "cv_folds.csv").open()))
    accs = [float(r["test/acc"]) for r in rows]
    assert [r["fold"] for r in rows] == ["0", "1", "2"]
    assert metrics["test/acc"] == pytest.approx(statistics.fmean(accs)) and metrics["test/acc"] > 0.8
    assert metrics["test/acc_std"] == pytest.approx(statistics.stdev(accs))
    assert json.loads((out / "metrics.json").read_text()) == metrics
    printed = capsys.readouterr().out
    assert f"test/acc = {metrics['test/acc']:.4f} ± {metrics['test/acc_std']:.4f}" in printed
    summary = f"held out: {metrics['cv/acc']:.4f}"  # the whole cross-validation's, once: no fold has one
    assert printed.count("what this run showed") == 1 and f"what this run showed:\n{summary}" in printed
    assert (out / "summary.md").read_text().endswith(f"{summary}\n")
    vals = []
    for fold in range(3):
        assert not (out / f"fold{fold}" / "summary.md").exists()
        assert (out / f"fold{fold}" / "checkpoints" / "last.ckpt").is_file()
        config = yaml.safe_load((out / f"fold{fold}" / "config.yaml").read_text())
        assert config["cv"]["fold"] == fold
        vals.append(json.loads((out / f"fold{fold}" / "metrics.json").read_text())["test/acc"])
    assert vals == accs  # the same test split, three different validation folds
    with pytest.raises(ZooError, match=rf"^'{out}' is a cross-validation of 3 folds, each its own run: give one"):
        zoo.load(out)
    assert zoo.load(out / "fold1").metrics["test/acc"] == pytest.approx(vals[1])


def test_held_out_folds_are_scored_apart_from_the_test_split(train_run, capsys):
    """cv/acc is each fold's accuracy on the samples it held out (a different set each time), test/acc the same
    models on the fixed test split; cv_folds.png draws both from the run's numbers."""
    metrics, out = train_run("data=iris", "model=logistic", "optimizer.lr=0.05", "trainer.max_epochs=15", "cv.folds=3")
    rows = list(csv.DictReader((out / "cv_folds.csv").open()))
    held_out = [float(r["cv/acc"]) for r in rows]
    assert metrics["cv/acc"] == pytest.approx(statistics.fmean(held_out)) and metrics["cv/acc"] > 0.8
    assert metrics["cv/acc_std"] == pytest.approx(statistics.stdev(held_out))
    assert not any(k.startswith("val/") for k in metrics)  # the held-out scores are cv/, never mixed with val/
    printed = capsys.readouterr().out
    assert f"cv/acc = {metrics['cv/acc']:.4f} ± {metrics['cv/acc_std']:.4f}" in printed
    assert (
        printed.index("cv/acc =")
        < printed.index("the same models on the fixed test split")
        < printed.index("test/acc =")
    )
    assert (out / "cv_folds.png").stat().st_size > 10_000
    other, out2 = train_run("data=iris", "model=logistic", "optimizer.lr=0.05", "trainer.max_epochs=15", "cv.folds=3",
                            "data.split_seed=1", folder="other")  # fmt: skip
    assert [float(r["cv/acc"]) for r in csv.DictReader((out2 / "cv_folds.csv").open())] != held_out


def test_folds_are_held_out_in_turn_stratified(tmp_path):
    from tests.conftest import compose
    from zoo.cv import hold_out_fold
    from zoo.run import build_datamodule

    seen = []
    for fold in range(4):
        cfg = compose(["data=iris"], tmp_path)
        data = build_datamodule(cfg.data, cfg.model)
        test_before = data.splits["test"][0].clone()
        hold_out_fold(data, fold, 4, 0)
        val = data.splits["val"][1]
        assert data.splits["test"][0].equal(test_before)
        assert max(val.bincount()) - min(val.bincount()) <= 1  # stratified: classes in equal shares
        seen.append({tuple(r.tolist()) for r in data.splits["val"][0]})
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1 :])  # disjoint folds


def test_more_folds_than_a_class_has_samples_is_a_clear_error(train_run):
    with pytest.raises(ZooError, match=r"cv.folds=50 is more than the \d+ training\+validation samples of class"):
        train_run("data=iris", "cv.folds=50")


def test_one_fold_is_not_cross_validation(train_run):
    with pytest.raises(ZooError, match=r"cv.folds=1 is not valid; use an integer >= 2"):
        train_run("data=iris", "cv.folds=1")
    with pytest.raises(ZooError, match=r"cv.folds='auto' is not valid; .* auto is for hparams_search=auto"):
        train_run("data=iris", "cv.folds=auto")


def test_the_folds_share_a_time_limit_and_none_starts_once_it_is_spent(train_run, capsys):
    """A search's budget reaches a cross-validated trial as one trainer.max_time: the first fold trains until it
    ends, and the folds after it are not started (the means are over the folds that ran)."""
    metrics, out = train_run("data=iris", "model=logistic", "cv.folds=3", "trainer.max_epochs=100000",
                             "++trainer.max_time=00:00:00:02")  # fmt: skip
    printed = capsys.readouterr().out
    assert "cross-validation: trainer.max_time is spent after 1 of 3 folds; the means are theirs" in printed
    assert (out / "fold0" / "metrics.json").is_file() and not (out / "fold1").exists()
    assert [r["fold"] for r in csv.DictReader((out / "cv_folds.csv").open())] == ["0"] and 0 <= metrics["cv/acc"] <= 1


def test_a_multiruns_job_the_time_limit_cut_short_is_listed_pruned_never_the_best(tmp_path):
    """Its means are over fewer folds than the other jobs': results.csv lists it with why, and ranks it after them."""
    from tests.test_cli import script

    proc = script("train", "--multirun", "data=iris", "model=logistic", "cv.folds=3", "trainer.max_epochs=100000",
                  "++trainer.max_time=00:00:00:02", "seed=1", "logger=none", f"hydra.sweep.dir={tmp_path}",
                  cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = csv.DictReader((tmp_path / "results.csv").open())
    assert row["status"] == "pruned" and row["error"] == "cut short by trainer.max_time after 1 of 3 folds"


def test_figures_false_writes_the_numbers_and_draws_nothing(train_run):
    """``figures=false`` (a budgeted search's trials): no figure in the cross-validation's folder or its folds',
    every number and table still written."""
    metrics, out = train_run("data=iris", "model=logistic", "trainer.max_epochs=3", "cv.folds=2", "figures=false")
    assert not list(out.rglob("*.png")) and not list(out.rglob("*.gif"))
    assert (out / "cv_folds.csv").is_file() and 0 <= metrics["cv/acc"] <= 1
    for fold in ("fold0", "fold1"):
        assert (out / fold / "history.csv").is_file() and (out / fold / "metrics.json").is_file()
