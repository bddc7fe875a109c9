"""Multiruns and hyperparameter searches: a failing job is recorded and the rest run; results.csv and best.yaml."""

from __future__ import annotations

import csv

import pytest
import yaml

from tests.test_cli import script

FAST = ("logger=none", "data=iris", "trainer.max_epochs=2", "callbacks=none")


def results(sweep_dir):
    return list(csv.DictReader((sweep_dir / "results.csv").open()))


def test_a_failing_multirun_job_is_reported_and_the_others_finish(tmp_path):
    proc = script("train", "--multirun", *FAST, "data.batch_size=8,0,16", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 1  # the sweep ran to its end, then says something failed
    assert "error: job 1: data.batch_size=0 is not valid; use a positive integer" in proc.stderr
    rows = results(tmp_path)
    assert [(r["job"], r["status"]) for r in rows] == [("0", "ok"), ("1", "failed"), ("2", "ok")]
    assert rows[1]["error"].startswith("data.batch_size=0 is not valid") and float(rows[2]["test/acc"]) > 0
    for job in (0, 2):
        assert (tmp_path / str(job) / "metrics.json").is_file()


def test_grid_search_sorts_by_the_objective_and_saves_the_best_config(tmp_path):
    proc = script(
        "train", "--multirun", "hparams_search=grid", *FAST, f"hydra.sweep.dir={tmp_path}",
        "hydra.sweeper.params={search.units:'8,32',optimizer.lr:'0.03'}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = results(tmp_path)
    assert len(rows) == 2 * 2 * 2  # units x layers x dropout (the learning rate fixed here)
    objectives = [float(r["objective"]) for r in rows]
    assert objectives == sorted(objectives, reverse=True)
    assert objectives == [float(r["val/acc"]) for r in rows]  # val/acc of the best checkpoint, not test
    best = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert best == yaml.safe_load((tmp_path / rows[0]["job"] / "config.yaml").read_text())
    assert best["model"]["net"]["hidden"] == [best["search"]["units"]] * best["search"]["layers"]


def test_a_sweep_ranked_by_auto_ranks_a_regression_by_its_validation_loss(tmp_path):
    proc = script("train", "--multirun", "logger=none", "data=boston", "trainer.max_epochs=2", "seed=1,2",
                  "optimized_metric=auto", f"hydra.sweep.dir={tmp_path}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = results(tmp_path)
    assert [float(r["objective"]) for r in rows] == sorted(float(r["val/loss"]) for r in rows)  # lowest first
    assert "best val/loss = " in proc.stdout


@pytest.mark.parametrize("search", ["optuna", "genetic"])
def test_optuna_searches_record_a_failed_trial_and_go_on(tmp_path, search):
    proc = script(
        "train", "--multirun", f"hparams_search={search}", *FAST, f"hydra.sweep.dir={tmp_path}",
        "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.population_size=2" if search == "genetic" else "seed=42",
        "+hydra.sweeper.params={optimizer.lr:'choice(0.03,-1)'}", "hydra.sweeper.sampler.seed=3",
    )  # fmt: skip
    rows = results(tmp_path)
    assert len(rows) == 3, proc.stderr[-2000:]
    statuses = {r["status"] for r in rows}
    assert statuses <= {"ok", "failed"} and "ok" in statuses
    assert all("Invalid learning rate" in r["error"] for r in rows if r["status"] == "failed")
    assert proc.returncode == (1 if "failed" in statuses else 0)
    assert (tmp_path / "best.yaml").is_file() and rows[0]["status"] == "ok"  # best first, failed last


def test_an_optimized_metric_no_run_reports_stops_the_search_at_its_first_job(tmp_path):
    """Every trial would fail alike after training: the search stops at job 0 with one line, exit 2."""
    proc = script(
        "train", "--multirun", "hparams_search=optuna", *FAST, f"hydra.sweep.dir={tmp_path}",
        "optimized_metric=val/nope",
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: job 0: optimized_metric='val/nope' is not a metric of this run; choose one of test/acc, test/f1, "
        "test/loss, val/acc, val/f1, val/loss; the search stops: every job would fail alike"
    ]
    assert not (tmp_path / "1").exists()  # no second trial


def test_a_single_run_with_an_optimized_metric_it_does_not_report_says_so_in_one_line(tmp_path):
    proc = script("train", *FAST, f"hydra.run.dir={tmp_path / 'run'}", "optimized_metric=val/nope")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        "error: optimized_metric='val/nope' is not a metric of this run; choose one of test/acc, test/f1, "
        "test/loss, val/acc, val/f1, val/loss"
    ]
    assert (tmp_path / "run" / "metrics.json").is_file()  # the run itself finished and is kept


def test_a_search_where_every_trial_fails_ends_with_each_error_not_optunas_traceback(tmp_path):
    proc = script(
        "train", "--multirun", "hparams_search=optuna", *FAST, f"hydra.sweep.dir={tmp_path}",
        "hydra.sweeper.n_trials=2", "+hydra.sweeper.params={optimizer.lr:'choice(-1,-2)'}",
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert [r["status"] for r in results(tmp_path)] == ["failed", "failed"]
    assert "multirun: 0 of 2 jobs finished" in proc.stdout
    proc = script("train", "--multirun", "hparams_search=optuna", "hydra.sweeper.n_trials=0")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: hydra.sweeper.n_trials=0 is not valid; give a positive number of trials"
    ]
