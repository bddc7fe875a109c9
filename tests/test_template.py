"""The scenarios of lightning-hydra-template's own tests (``tests/test_train.py``, ``tests/test_sweeps.py``), typed
through zoo's command line as a user of that template would type them, in its spellings where they differ."""

from __future__ import annotations

import json

import pytest

from tests.test_cli import script
from tests.test_experiments import EXPERIMENTS, EXTRA

QUICK = ("data=iris", "logger=none")


def last_line(proc) -> str:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "args",
    [
        ["trainer.fast_dev_run=true"],
        ["trainer.max_epochs=1", "trainer.val_check_interval=0.5"],
        ["+trainer.limit_train_batches=0.1", "trainer.max_epochs=2"],
        ["++trainer.limit_train_batches=0.1", "trainer.max_epochs=2"],
        ["trainer=ddp_sim", "trainer.max_epochs=2"],  # the template's simulated DDP: 2 CPU processes
        ["trainer.max_epochs=2", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp_spawn"],
    ],
    ids=["fast_dev_run", "val_check_interval", "limit_plus", "limit_plusplus", "ddp_sim", "ddp_spawn"],
)
def test_a_template_training_scenario_runs(tmp_path, args):
    proc = script("train", *QUICK, f"hydra.run.dir={tmp_path}", *args)
    assert last_line(proc) == f"run folder: {tmp_path}"
    if "fast_dev_run" not in args[0]:  # a fast dev run checks the code path and writes no results
        assert json.loads((tmp_path / "metrics.json").read_text())["test/acc"] >= 0


def test_resuming_from_last_ckpt_with_more_epochs(tmp_path):
    assert script("train", *QUICK, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'one'}").returncode == 0
    last = tmp_path / "one" / "checkpoints" / "last.ckpt"
    proc = script("train", *QUICK, "trainer.max_epochs=2", f"ckpt_path={last}", f"hydra.run.dir={tmp_path / 'two'}")
    assert last_line(proc) == f"run folder: {tmp_path / 'two'}"
    history = (tmp_path / "two" / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2"]  # epoch 1 from the checkpoint, then epoch 2


@pytest.mark.parametrize("trainer", [[], ["trainer=ddp_sim"]], ids=["one_process", "ddp"])
def test_a_multirun_over_the_learning_rate_in_fast_dev_runs(tmp_path, trainer):
    proc = script("train", "-m", *QUICK, *trainer, "model.optimizer.lr=0.005,0.01", "++trainer.fast_dev_run=true",
                  f"hydra.sweep.dir={tmp_path}")  # fmt: skip
    assert last_line(proc).startswith("multirun: 2 of 2 jobs finished")
    rows = (tmp_path / "results.csv").read_text().splitlines()[1:]
    lrs = [row.split("optimizer.lr=")[1].split()[0] for row in rows]
    assert sorted(lrs) == ["0.005", "0.01"]  # the template's model.optimizer.lr, read as zoo's optimizer.lr


@pytest.mark.parametrize("logger", ["none", "wandb"])
def test_an_optuna_search_of_fast_dev_runs(tmp_path, logger):
    proc = script(
        "train", "-m", "hparams_search=optuna", "data=iris", f"logger={logger}", f"hydra.sweep.dir={tmp_path}",
        "hydra.sweeper.n_trials=10", "hydra.sweeper.sampler.n_startup_trials=5", "++trainer.fast_dev_run=true",
    )  # fmt: skip
    assert proc.returncode == 0 and "multirun: 10 of 10 jobs finished" in proc.stdout, proc.stderr[-3000:]
    if logger == "wandb":  # one offline W&B run per trial
        assert len(list(tmp_path.glob("*/wandb/offline-run-*"))) == 10


@pytest.mark.slow
def test_every_experiment_that_needs_no_file_of_the_users_in_one_multirun_of_fast_dev_runs(tmp_path):
    names = [name for name in EXPERIMENTS if name not in EXTRA]
    proc = script("train", "-m", f"experiment={','.join(names)}", "logger=none", "++trainer.fast_dev_run=true",
                  f"hydra.sweep.dir={tmp_path}")  # fmt: skip
    assert last_line(proc).startswith(f"multirun: {len(names)} of {len(names)} jobs finished"), proc.stderr[-3000:]
