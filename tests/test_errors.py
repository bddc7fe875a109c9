"""The bad-input catalogue, as a user meets it on the command line: one `error:` line naming the problem and the fix,
exit code 2, no traceback, and no earlier run touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": ""}
MODELS = (
    "cnn, detector, elm, lenet5, linear, logistic, mlp, mlp_layers, net, resnet, rnn, text_avgpool, timm, "
    "transformer, triplet, unet"
)


@pytest.fixture
def fails(tmp_path):
    """Run scripts/train.py (or another script) with overrides next to an earlier run; return its one error line
    after checking exit code 2, no traceback, the earlier run untouched and no new run folder left behind."""
    earlier = tmp_path / "logs" / "earlier"
    earlier.mkdir(parents=True)
    (earlier / "config.yaml").write_text("seed: 1\n")
    (earlier / "metrics.json").write_text('{"test/acc": 0.9}\n')

    def run(*overrides: str, script: str = "train", env: dict | None = None) -> str:
        new = tmp_path / "logs" / "new"
        proc = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / f"{script}.py"), *overrides]
            + (["logger=none"] if script in ("train", "eval") else [])
            + [f"paths.log_dir={tmp_path / 'logs'}", f"hydra.run.dir={new}"],
            cwd=tmp_path,
            env={**ENV, **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, proc.stderr[-3000:]
        assert (earlier / "config.yaml").read_text() == "seed: 1\n"
        assert (earlier / "metrics.json").read_text() == '{"test/acc": 0.9}\n'
        assert not new.exists() or "NaN" in errors[0], sorted(p.name for p in new.iterdir())  # refused: no trace
        return errors[0]

    return run


def test_an_unknown_padding_side_and_gradients_by_hand_for_a_deep_net_are_one_line(fails):
    assert fails("model=rnn", "data=text_synth", "data.padding_side=middle") == (
        "error: data.padding_side='middle' is not valid; choose one of right, left"
    )
    assert fails("model=mlp", "+model.gradients=manual").startswith(
        "error: model.gradients=manual derives the gradients of one dense layer; MLP has other layers"
    )


def test_unknown_model_lists_the_models_and_the_closest(fails):
    assert fails("model=mpl") == f"error: model=mpl is not a zoo model; did you mean model=mlp? choose one of {MODELS}"


def test_unknown_data_set_lists_the_data_sets(fails):
    line = fails("data=mnsit")
    assert line.startswith("error: data=mnsit is not a zoo data; did you mean data=mnist? choose one of boston, ")


def test_unknown_optimizer_lists_the_optimizers(fails):
    assert fails("optimizer=adamm") == (
        "error: optimizer=adamm is not a zoo optimizer; did you mean optimizer=adam? "
        "choose one of adam, adamw, momentum, rmsprop, sgd"
    )


def test_a_sweep_without_multirun_says_to_add_it(fails):
    assert fails("model=linear,mlp") == (
        "error: model=linear,mlp: one run takes one model; add --multirun to run one job for each"
    )


def test_a_typo_in_a_key_suggests_the_right_one(fails):
    assert fails("trainer.max_epoch=3") == (
        "error: trainer.max_epoch is not a setting of trainer; did you mean trainer.max_epochs? "
        "to add a new key: +trainer.max_epoch=3"
    )


def test_a_typo_in_a_nested_key_of_the_model(fails):
    assert fails("model.net.dropuot=0.2").startswith(
        "error: model.net.dropuot is not a setting of model.net; did you mean model.net.dropout?"
    )


def test_a_word_for_a_number(fails):
    assert (
        fails("optimizer.lr=abc") == "error: optimizer.lr=abc is not valid; optimizer.lr takes a number (default 0.001)"
    )


def test_eval_checks_its_overrides_too(fails):
    assert fails("ckpt_path=x.ckpt", "trainer.max_epoch=3", script="eval").startswith(
        "error: trainer.max_epoch is not a setting of trainer; did you mean trainer.max_epochs?"
    )


@pytest.mark.parametrize("script, key", [("eval", "ckpt_path"), ("export", "ckpt_path"), ("predict", "input")])
def test_a_required_setting_left_out(fails, script, key):
    given = [] if key == "ckpt_path" else ["ckpt_path=x.ckpt"]
    assert fails(*given, script=script) == f"error: {key} must be given: python scripts/{script}.py {key}=..."


@pytest.mark.parametrize(
    "experiment, keys",
    [
        ("redes_demo_titanic_elm", "data.path"),
        ("redes_exercicio04_mushroom_elm", "data.path"),
        ("redes_exercicio05_spotify_mlp", "data.path"),
        ("redes_exercicio05_1_multiclass_mlp", "data.path, data.target"),
    ],
)
def test_an_experiment_without_its_file_names_the_keys_to_give(fails, experiment, keys):
    needed = " ".join(f"{k}=..." for k in keys.split(", "))
    assert fails(f"experiment={experiment}") == f"error: {keys} must be given: python scripts/train.py {needed}"


def test_negative_epochs(fails):
    assert fails("trainer.max_epochs=-3") == (
        "error: trainer.max_epochs=-3 is not valid; use a positive number of epochs (-1: no limit)"
    )


@pytest.mark.parametrize("script", ["train", "eval"])
def test_an_unknown_matmul_precision(fails, script):
    assert fails("ckpt_path=x.ckpt", "matmul_precision=fast", script=script) == (
        "error: matmul_precision='fast' must be highest (exact fp32), high (TF32 on tensor-core GPUs) or medium (bf16)"
    )


REFUSED_SETTINGS = {
    "negative_lr": (["optimizer.lr=-1"], "error: optimizer: Invalid learning rate: -1; fix the optimizer.* settings"),
    "unknown_optimizer_key": (
        ["+optimizer.foo=1"],
        "error: optimizer: Adam.__init__() got an unexpected keyword argument 'foo'; fix the optimizer.* settings",
    ),
    "step_size_0": (
        ["scheduler=step", "scheduler.step_size=0"],
        "error: scheduler.step_size=0 is not valid; give a positive number of epochs",
    ),
    "cosine_without_epochs": (
        ["scheduler=cosine", "trainer.max_epochs=-1"],
        "error: scheduler.T_max=-1 is not valid; give a positive number of epochs "
        "(scheduler=cosine reads trainer.max_epochs: give it, or scheduler.T_max)",
    ),
    "plateau_mode": (
        ["scheduler=plateau", "+scheduler.mode=sideways"],
        "error: scheduler: mode sideways is unknown!; fix the scheduler.* settings",
    ),
    "precision": (["trainer.precision=13"], "error: trainer: Precision 13 is invalid. Allowed precision values: ("),
    "net": (
        ["model=rnn", "data=text_synth", "model.net.hidden_size=0"],
        "error: model.net: hidden_size must be greater than zero; fix the model.net.* settings",
    ),
    "devices": (
        ["trainer.devices=0", "trainer.accelerator=cpu"],
        "error: `Trainer(devices=0)` value is not a valid input using cpu accelerator; fix the trainer.* settings",
    ),
    "switch": (["compile=maybe"], "error: compile=maybe is not valid; compile takes true or false (default false)"),
}


@pytest.mark.parametrize("overrides, line", REFUSED_SETTINGS.values(), ids=REFUSED_SETTINGS.keys())
def test_settings_torch_or_lightning_refuse_are_refused_before_the_run_starts(fails, overrides, line):
    """What the optimizer, scheduler or Trainer class refuses (or trips over at its first step) is one line naming
    the config group, found before the run folder is claimed."""
    given = [] if any(o.startswith("model=") for o in overrides) else ["model=mlp", "data=digits"]
    assert fails(*given, *overrides).startswith(line)


def test_a_learning_rate_that_makes_the_loss_nan_stops_naming_the_step(fails):
    line = fails("optimizer=sgd", "optimizer.lr=1e12", "trainer.max_epochs=3", "callbacks=none")
    assert line.startswith("error: the training loss became NaN or infinite at step ")
    assert "training stopped. optimizer.lr=1e+12 is too high here: try optimizer.lr=1e+11" in line


def test_data_files_missing_offline(fails, tmp_path):
    line = fails("data=mnist", f"paths.data_dir={tmp_path / 'nothing'}", "data.download=false")
    assert line.startswith("error: data=mnist: the IDX files (or their .gz) not found in ")
    assert line.endswith("use a data set that works offline: digits, mnist5k, images (your own folder)")


def test_corrupted_data_files(fails, tmp_path):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "t10k"):
        for part in ("images-idx3", "labels-idx1"):
            (raw / f"{split}-{part}-ubyte").write_bytes(os.urandom(100))
    line = fails("data=mnist", f"paths.data_dir={tmp_path / 'data'}")
    assert (
        line
        == f"error: data=mnist: cannot read the IDX files in '{raw}' (AssertionError); delete them to download again"
    )


def test_a_corrupted_csv(fails, tmp_path):
    path = tmp_path / "table.csv"
    path.write_bytes(b"\xbd\x00\xff" * 100)
    assert fails("data=csv", f"data.path={path}", "data.target=y").startswith(
        f"error: data.path: cannot parse '{path}' as CSV"
    )


def test_full_error_shows_the_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "trainer.max_epochs=-3", "logger=none"]
        + [f"hydra.run.dir={tmp_path / 'run'}"],
        env={**ENV, "HYDRA_FULL_ERROR": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_help_stays_fast_and_cfg_job_still_works(tmp_path):
    import time

    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--help"], check=True, capture_output=True)
    assert time.perf_counter() - start < 5  # no Hydra, no torch (about 0.1 s on a quiet machine)
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "optimizer.lr=0.01", "--cfg", "job"],
        check=True,
        capture_output=True,
        text=True,
        env=ENV,
    ).stdout
    assert "lr: 0.01" in out
    assert not list(Path(tmp_path).iterdir())


def test_a_file_that_is_no_checkpoint_says_so(fails, tmp_path):
    """A text file or a truncated checkpoint is named for what it is, not as a file that would run code."""
    text = tmp_path / "config.yaml"
    text.write_text("seed: 1\n")
    line = fails(f"ckpt_path={text}", script="eval")
    assert line == (
        f"error: ckpt_path: cannot load '{text}': torch.save did not write it; give a .ckpt file from a zoo run"
    )
    truncated = tmp_path / "truncated.ckpt"
    torch.save({"weights": torch.zeros(1000)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    line = fails(f"ckpt_path={truncated}", script="eval")
    assert line.startswith(f"error: ckpt_path: cannot load '{truncated}' (PytorchStreamReader failed reading zip")
