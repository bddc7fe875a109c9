"""Scale: DDP with two CPU processes (gloo) learns what one process learns, in one run folder, one W&B run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": ""}


def train(*args: str, log_dir) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "data=iris", "trainer.max_epochs=15", *args]
    return subprocess.run(
        [*cmd, f"paths.log_dir={log_dir}"], env=ENV, capture_output=True, text=True, timeout=900, cwd=log_dir.parent
    )


@pytest.mark.slow
def test_two_cpu_processes_match_one_process_with_the_same_global_batch(tmp_path):
    # each of the 2 ranks takes every 2nd sample of the same shuffled order, 8 a step: together the batch of 16
    # that one process takes, and DDP averages their gradients
    (tmp_path / "ddp").mkdir()
    (tmp_path / "one").mkdir()
    ddp = train(
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "data.batch_size=8",
        "logger=wandb",
        log_dir=tmp_path / "ddp" / "logs",
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = train("data.batch_size=16", "logger=none", log_dir=tmp_path / "one" / "logs")
    assert one.returncode == 0, one.stderr[-3000:]
    (run,) = (tmp_path / "ddp" / "logs" / "mlp-iris" / "runs").iterdir()  # the children made no folders of their own
    assert not [p for p in (tmp_path / "ddp").rglob("*") if run not in p.parents and p != run and p.is_file()]
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1  # rank 0 only
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    got = json.loads((run / "metrics.json").read_text())
    (single,) = (tmp_path / "one" / "logs" / "mlp-iris" / "runs").glob("*/metrics.json")
    expected = json.loads(single.read_text())
    assert got["test/acc"] == pytest.approx(expected["test/acc"], abs=0.04)  # one iris test flower is 0.033
    assert got["test/loss"] == pytest.approx(expected["test/loss"], abs=0.03)
    assert expected["test/acc"] >= 0.8
