"""Scale: DDP with two CPU processes (gloo) learns what one process learns, in one run folder, one W&B run; the same
with two torchrun "nodes" on this machine, and a worker killed under torchrun restarts from the last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def torchrun(*args: str, run, nodes: tuple[str, ...], per_node: int = 1, node: int = 0) -> subprocess.Popen:
    """``torchrun NODES scripts/train.py trainer=ddp ARGS`` on the CPU (gloo), iris, batch 8 per process."""
    cmd = [sys.executable, "-m", "torch.distributed.run", *nodes, f"--nproc-per-node={per_node}",
           str(ROOT / "scripts" / "train.py"), "trainer=ddp", "trainer.accelerator=cpu", f"trainer.devices={per_node}",
           "data=iris", "data.batch_size=8", "logger=none", f"hydra.run.dir={run}", *args]  # fmt: skip
    output = Path(f"{run}.node{node}.out")
    with output.open("w") as log:  # a pipe nobody reads until the end could fill up and block the workers
        proc = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    proc.output = output
    return proc


def finished(proc: subprocess.Popen) -> str:
    proc.wait(timeout=900)
    out = proc.output.read_text()
    assert proc.returncode == 0, out[-3000:]
    return out


@pytest.mark.slow
def test_two_torchrun_nodes_learn_what_one_process_learns(tmp_path):
    """``torchrun --nnodes=2`` with a rendezvous on localhost: two "machines" of one process each, one run folder."""
    rendezvous = ("--nnodes=2", "--master-addr=127.0.0.1", "--master-port=29531")
    nodes = [
        torchrun("trainer.num_nodes=2", "trainer.max_epochs=15", run=tmp_path / "run",
                 nodes=(*rendezvous, f"--node-rank={rank}"), node=rank)
        for rank in (0, 1)
    ]  # fmt: skip
    out = [finished(node) for node in nodes]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in out[1] and "test metrics:" in out[0]
    (tmp_path / "one").mkdir()
    one = train("data.batch_size=16", "logger=none", log_dir=tmp_path / "one" / "logs")
    assert one.returncode == 0, one.stderr[-3000:]
    (single,) = (tmp_path / "one" / "logs" / "mlp-iris" / "runs").glob("*/metrics.json")
    got = json.loads((tmp_path / "run" / "metrics.json").read_text())
    expected = json.loads(single.read_text())
    assert got["test/acc"] == pytest.approx(expected["test/acc"], abs=0.04)  # one iris test flower is 0.033
    assert got["test/loss"] == pytest.approx(expected["test/loss"], abs=0.03)


def children(pid: int) -> list[int]:
    stats = {p: p / "stat" for p in Path("/proc").iterdir() if p.name.isdigit()}
    found = []
    for path, stat in stats.items():
        try:
            if int(stat.read_text().rsplit(") ", 1)[1].split()[1]) == pid:
                found.append(int(path.name))
        except (OSError, IndexError):  # the process ended while being read
            continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds torchrun's workers through /proc")
def test_a_worker_killed_mid_run_restarts_from_the_last_checkpoint_and_ends_as_an_uninterrupted_run(tmp_path):
    nodes = ("--standalone", "--max-restarts=1")
    proc = torchrun("trainer.max_epochs=30", run=tmp_path / "killed", nodes=nodes, per_node=2)
    history = tmp_path / "killed" / "history.csv"
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if history.is_file() and len(history.read_text().splitlines()) > 8:  # 8 epochs done, the 9th under way
            break
        time.sleep(0.02)
    ranks = {pid: (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0") for pid in children(proc.pid)}
    (worker,) = [pid for pid, env in ranks.items() if b"LOCAL_RANK=1" in env]
    os.kill(worker, signal.SIGKILL)
    out = finished(proc)
    assert "restarted by the launcher: the run goes on in" in out and "last.ckpt" in out
    epochs = [int(row.split(",")[0]) for row in history.read_text().splitlines()[1:]]
    assert epochs == list(range(1, 31))  # one history, continued from the checkpoint
    whole = finished(torchrun("trainer.max_epochs=30", run=tmp_path / "whole", nodes=nodes, per_node=2))
    assert "restarted" not in whole
    killed, uninterrupted = (json.loads((tmp_path / f / "metrics.json").read_text()) for f in ("killed", "whole"))
    assert killed == pytest.approx(uninterrupted, abs=1e-6)


def test_a_requeued_slurm_job_goes_on_in_its_folder_from_its_last_checkpoint(tmp_path):
    """sbatch --requeue starts the same command again (same SLURM_JOB_ID, so the same hydra.run.dir), with
    SLURM_RESTART_COUNT=1: the run resumes where its last checkpoint left it, in its own folder."""
    run = tmp_path / "logs" / "slurm" / "1234"
    first = train("trainer.max_epochs=2", "logger=none", f"hydra.run.dir={run}", log_dir=tmp_path / "logs")
    assert first.returncode == 0, first.stderr[-3000:]
    env = {**ENV, "SLURM_RESTART_COUNT": "1"}
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "data=iris", "trainer.max_epochs=4", "logger=none",
           f"hydra.run.dir={run}"]  # fmt: skip
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"restarted by the launcher: the run goes on in {run} from {run}/checkpoints/last.ckpt" in again.stdout
    epochs = [row.split(",")[0] for row in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2", "3", "4"]
