"""What a run prints: optimiser steps and epochs counted from 1, the net's layers, which checkpoint was tested,
one W&B line, no third-party noise and no colour codes where the output is not a terminal; Hydra's flags anywhere
on the command line."""

from __future__ import annotations

import os
import subprocess
import sys

import lightning as L
import pytest
import torch
from torch import nn

from tests.conftest import ROOT
from zoo.cli import hydra_order
from zoo.display import layer_rows, summary_text
from zoo.nets.elm import ELM

ENV = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": ""}
ENV.pop("WANDB_SILENT", None)  # as a user's shell has it


def train(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *args], cwd=cwd, env=ENV, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default run, as `make train` starts it, with its output going to a file (no terminal)."""
    folder = tmp_path_factory.mktemp("default") / "run"
    return train(f"hydra.run.dir={folder}"), folder


def test_the_default_run_says_only_what_helps(default_run):
    proc, folder = default_run
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "\x1b[" not in out and "\r" not in out  # no colour codes or progress redraws in a file
    for noise in ("NumExpr", "fontManager", "anonymous setting", "logging interval", "wandb: Run history", "Tip:",
                  "Restoring states", "TPU available", "test/sparsity", "┏"):  # fmt: skip
        assert noise not in out, noise
    lines = out.splitlines()
    assert lines[0].startswith("using the mlp+digits recipe: model.net.hidden=[1024] ")  # what it trains with
    assert "epoch 60/60  10 steps  " in out  # optimiser steps of the fast path, epochs from 1
    assert next(line for line in lines if line.startswith("tested: best-epoch")).endswith(" of 60")
    assert any(line.startswith("W&B run: offline in ") and "wandb sync" in line for line in lines)
    best = next((folder / "checkpoints").glob("best-epoch*.ckpt")).stem
    assert f"tested: {best}.ckpt" in out and int(best.removeprefix("best-epoch")) >= 1
    summary = (folder / "model_summary.txt").read_text()
    assert "dense1    Linear       [N, 1024]" in summary and "metrics" not in summary and summary.strip() in out


def test_verbose_shows_what_is_hidden(tmp_path):
    proc = train("-v", "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Restoring states from the checkpoint" in out and "Test metric" in out


def test_a_disabled_wandb_run_names_no_folder(tmp_path):
    proc = train("logger.wandb.mode=disabled", "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "W&B run" not in out and "wandb sync" not in out  # W&B stored nothing: no line points at a folder
    assert not (tmp_path / "run" / "wandb").exists()


def test_wandb_refusing_to_start_is_one_line_and_leaves_no_run_folder(tmp_path):
    """An online run with no W&B login and no terminal to ask for one on: W&B's refusal, in one line with the ways
    out, exit 2, and no run folder."""
    env = {k: v for k, v in ENV.items() if k not in ("WANDB_MODE", "WANDB_API_KEY")}
    env["NETRC"] = str(tmp_path / "no-netrc")  # no `wandb login` entry
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "logger.wandb.mode=online", "trainer.max_epochs=1"]
    proc = subprocess.run([*command, f"hydra.run.dir={tmp_path / 'run'}"], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: W&B could not start the run (No API key configured.")
    assert line.endswith("or log offline with logger.wandb.mode=offline and upload later with `wandb sync`")
    assert not (tmp_path / "run").exists()


STARTS_WANDB = """
import sys
from lightning.pytorch.loggers import WandbLogger
from zoo.tracking import LAUNCH_INPUTS, start_logging
applied = []
if sys.argv[2] == "staged":  # W&B Launch staged this job's inputs: its module is in, and wandb.init applies them
    from wandb.sdk.launch.inputs import internal
    internal.StagedLaunchInputs.apply = lambda self, run: applied.append(run.id)
logger = WandbLogger(save_dir=sys.argv[1], offline=True)
start_logging(logger, {"lr": 0.1})
assert logger.experiment.config["lr"] == 0.1
print(LAUNCH_INPUTS in sys.modules, applied == [logger.experiment.id])
logger.experiment.finish()
"""


def test_a_wandb_run_skips_launchs_inputs_unless_launch_staged_some(tmp_path):
    """wandb.init looks for W&B Launch's staged inputs through W&B's public API (about a second): zoo's runs skip
    the look where nothing could have been staged, and apply them where W&B Launch did stage some."""
    for staged, printed in (("none", "False False"), ("staged", "True True")):
        proc = subprocess.run([sys.executable, "-c", STARTS_WANDB, str(tmp_path / staged), staged], cwd=ROOT,
                              env=ENV, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0 and proc.stdout.split()[-2:] == printed.split(), proc.stderr[-3000:]


def test_hydras_flags_may_come_before_between_or_after_the_overrides():
    assert hydra_order(["seed=1", "--cfg", "job", "logger=none"]) == ["--cfg", "job", "seed=1", "logger=none"]
    assert hydra_order(["model=mlp", "--multirun", "seed=1,2", "-i", "config"]) == [
        "--multirun", "-i", "config", "model=mlp", "seed=1,2"
    ]  # fmt: skip
    proc = train("seed=7", "--cfg", "job", "logger=none")
    assert proc.returncode == 0 and "seed: 7" in proc.stdout and "logger: {}" in proc.stdout


def test_a_search_logged_to_a_file_has_no_colour_codes_and_names_each_jobs_wandb_run(tmp_path):
    proc = train("hparams_search=optuna", "hydra.sweeper.n_trials=2", "trainer.max_epochs=1",
                 f"paths.log_dir={tmp_path}", "--multirun")  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "\x1b[" not in out and "alembic" not in out
    assert sum(line.startswith("W&B run: offline in ") for line in out.splitlines()) == 2


class Holder(L.LightningModule):
    def __init__(self, net):
        super().__init__()
        self.net, self.example_input_array = net, torch.zeros(2, 64)

    def forward(self, x):
        return self.net(x)


def test_a_net_without_sub_layers_is_one_row_with_its_fixed_weights():
    rows = layer_rows(Holder(ELM(64, 10, hidden=[100])))
    assert rows == [("ELM", "ELM", "[N, 10]", 64 * 100 + 100 + 101 * 10)]
    assert "fixed or solved in closed form" in summary_text(rows, ELM(64, 10, hidden=[100]))


def test_the_model_summary_keeps_each_layer_to_one_line_of_the_terminal():
    rows = [("encoder.stages.3.blocks.2.attention.projection", "Linear", "[N, 196, 768]", 590_592)]
    text = summary_text(rows, nn.Linear(2, 2), columns=60)
    assert all(len(line) <= 60 for line in text.splitlines()[:-1]) and "encoder.s" in text and "…" in text
    assert "encoder.stages.3.blocks.2.attention.projection" in summary_text(rows, nn.Linear(2, 2), columns=200)
