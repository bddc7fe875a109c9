"""Crash safety and safe checkpoints: a killed run resumes to the same metrics, Ctrl-C/SIGTERM save a checkpoint and
exit non-zero, a checkpoint that would run code or belongs to another model is refused in one line."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT
from zoo.errors import ZooError

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": ""}
# iris in batches of 4 with dropout: ~26 steps an epoch, so every epoch draws many dropout masks and shuffles
RUN = ["model=mlp", "data=iris", "model.net.dropout=0.3", "data.batch_size=4", "trainer.max_epochs=40", "logger=none"]
# The same run without an epoch limit, for the signal tests: 40 epochs take ~1.5 s after the first checkpoint, so a
# signal sent late on a busy machine could find the run over.
ENDLESS = [arg if not arg.startswith("trainer.max_epochs=") else "trainer.max_epochs=-1" for arg in RUN]


def start(*args: str, run_dir: Path, script: str = "train") -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "scripts" / f"{script}.py"), *args, f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(
        cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_as_in_a_terminal
    )


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT as a terminal's foreground job has it: a suite started in the background (``make test &``, nohup, some
    CI runners) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_to_exactly_the_uninterrupted_metrics(tmp_path):
    straight = start(*RUN, run_dir=tmp_path / "straight")
    code, err = finish(straight)
    assert code == 0, err[-3000:]
    killed = start(*RUN, run_dir=tmp_path / "killed")
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    wait_for(last, killed)
    killed.send_signal(signal.SIGKILL)
    assert finish(killed)[0] == -signal.SIGKILL
    epoch = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    assert epoch < 39  # killed in the middle of training
    resumed = start(*RUN, f"ckpt_path={last}", run_dir=tmp_path / "resumed")
    code, err = finish(resumed)
    assert code == 0, err[-3000:]
    expected = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert json.loads((tmp_path / "resumed" / "metrics.json").read_text()) == expected
    assert not (tmp_path / "killed" / "metrics.json").exists()  # the killed run's folder is left as it was


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_save_a_checkpoint_and_exit_non_zero(tmp_path, sig, code):
    run_dir = tmp_path / "run"
    proc = start(*ENDLESS, "logger=wandb", run_dir=run_dir)
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(sig)
    returncode, err = finish(proc, timeout=120)  # an interrupted run stops in seconds; ENDLESS never would
    saved = run_dir / "checkpoints" / "interrupted.ckpt"
    assert returncode == code, err[-3000:]
    name = "SIGTERM" if sig == signal.SIGTERM else "SIGINT"
    assert f"error: interrupted by {name}: checkpoint saved to {saved}; resume with ckpt_path={saved}" in err
    checkpoint = torch.load(saved, map_location="cpu", weights_only=True)
    assert checkpoint["zoo_config"]["data"]["name"] == "iris" and checkpoint["wandb_run_id"]
    (record,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")  # the W&B run was closed: its file is whole
    assert record.stat().st_size > 0


@pytest.mark.slow
def test_ctrl_c_stops_a_whole_multirun_after_recording_the_interrupted_job(tmp_path):
    sweep = tmp_path / "sweep"
    proc = start("--multirun", *ENDLESS, "seed=1,2", f"hydra.sweep.dir={sweep}", run_dir=tmp_path / "unused")
    wait_for(sweep / "0" / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(signal.SIGINT)
    returncode, err = finish(proc, timeout=120)  # job 1 would never end: the sweep must not start it
    saved = sweep / "0" / "checkpoints" / "interrupted.ckpt"
    assert returncode == 130, err[-3000:]
    stopped = f"error: job 0: interrupted by SIGINT: checkpoint saved to {saved}; resume with ckpt_path={saved}"
    assert f"{stopped}; the search stops" in err.splitlines() and saved.is_file()
    assert not (sweep / "1").exists()
    (row,) = [json.loads(line) for line in (sweep / "jobs.jsonl").read_text().splitlines()]
    assert row["status"] == "failed" and row["error"].startswith("interrupted by SIGINT")
    assert (sweep / "results.csv").is_file()  # the summary every multirun ends with


@pytest.mark.parametrize("during_training", [False, True])
def test_ctrl_c_while_wandb_closes_the_run_names_the_folder_to_sync(tmp_path, monkeypatch, during_training):
    """A second Ctrl-C, as W&B sends what it has left, is one line that keeps the first one's checkpoint (when
    Ctrl-C had stopped training) and names the W&B folder to upload later; the run's own files are all there."""
    import wandb

    from tests.conftest import compose
    from zoo.errors import Interrupted
    from zoo.run import train
    from zoo.safety import ReseedEachEpoch

    finish, reseed = wandb.finish, ReseedEachEpoch.on_train_epoch_start

    def interrupted_upload(*args, **kwargs):
        finish(*args, **kwargs)  # closed for real, so that later runs start their own W&B runs
        raise KeyboardInterrupt

    def ctrl_c_at_the_second_epoch(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            raise KeyboardInterrupt
        reseed(self, trainer, pl_module)

    monkeypatch.setattr(wandb, "finish", interrupted_upload)
    if during_training:
        monkeypatch.setattr(ReseedEachEpoch, "on_train_epoch_start", ctrl_c_at_the_second_epoch)
    cfg = compose(["data=iris", "trainer.max_epochs=2", "logger=wandb"], tmp_path)
    with pytest.raises(Interrupted) as raised:
        train(cfg)
    out = Path(cfg.paths.output_dir)
    (folder,) = (out / "wandb").glob("offline-run-*")
    saved = out / "checkpoints" / "interrupted.ckpt"
    first = f"interrupted by SIGINT: checkpoint saved to {saved}; resume with ckpt_path={saved}; then "
    first = first if during_training else ""
    closing = f"interrupted while W&B was closing the run: what it had not uploaded stays in {folder}"
    assert str(raised.value) == f"{first}{closing}; upload it with `wandb sync {folder}`"
    assert raised.value.exit_code == 130
    assert saved.is_file() if during_training else (out / "metrics.json").is_file()


def test_a_resumed_run_continues_the_same_wandb_run(train_run):
    _, first = train_run("data=iris", "trainer.max_epochs=1", "logger=wandb", folder="first")
    _, second = train_run("data=iris", "trainer.max_epochs=2", "logger=wandb", "ckpt_path=last", folder="second")
    (run_a,) = (first / "wandb").glob("offline-run-*")
    (run_b,) = (second / "wandb").glob("offline-run-*")
    assert run_a.name.rsplit("-", 1)[1] == run_b.name.rsplit("-", 1)[1]  # offline-run-<time>-<run id>
    assert torch.load(second / "checkpoints" / "last.ckpt", weights_only=True)["wandb_run_id"] == run_b.name[-8:]


class Payload:
    """Unpickling this runs ``touch MARKER``: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("script", ["eval", "train"])
def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path, script):
    marker, evil = tmp_path / "pwned", tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "zoo_config": Payload(marker), "hyper_parameters": {}}, evil)
    pickle.loads(pickle.dumps(Payload(tmp_path / "real")))  # the payload is real: plain unpickling runs it
    assert (tmp_path / "real").exists()
    proc = start(f"ckpt_path={evil}", "logger=none", run_dir=tmp_path / "run", script=script)
    code, err = finish(proc)
    assert code == 2 and "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: ckpt_path: '{evil}' would run code when loaded (it calls posix.system); refused, nothing was run"
    ]
    assert not marker.exists()


def test_a_checkpoint_of_another_model_or_data_set_names_both(train_run):
    _, out = train_run("model=mlp", "data=digits", "trainer.max_epochs=1", folder="mlp")
    last = out / "checkpoints" / "last.ckpt"
    with pytest.raises(ZooError, match="holds model=mlp data=digits but this run is model=cnn data=digits"):
        train_run("model=cnn", "data=digits", f"ckpt_path={last}", folder="cnn")
    with pytest.raises(ZooError, match="holds model=mlp data=digits but this run is model=mlp data=iris"):
        train_run("model=mlp", "data=iris", f"ckpt_path={last}", folder="iris")
    with pytest.raises(ZooError, match=r"different model=mlp data=digits net \(model.net.hidden=\[1024\] there"):
        train_run("model.net.hidden=[32]", f"ckpt_path={last}", folder="narrow")
