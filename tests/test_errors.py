"""The bad-input catalogue, as a user meets it on the command line: one `error:` line naming the problem and the fix,
exit code 2, no traceback, and no earlier run touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import ROOT
from zoo.cli import SCRIPTS, check_overrides
from zoo.config import CONF_DIR
from zoo.errors import ZooError

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


def test_several_unknown_keys_are_each_named_in_the_one_line(fails):
    """Hydra stops at the first key it lacks; the line names every one, each with its fix."""
    assert fails("lr=0.1", "epochs=3") == (
        "error: lr is not a setting; did you mean optimizer.lr? to add a new key: +lr=0.1; also epochs is not a "
        "setting; did you mean trainer.max_epochs (Keras' fit(epochs=...))? to add a new key: +epochs=3"
    )
    assert fails("ckpt_path=x.ckpt", "lr=0.1", "epochs=3", script="eval").startswith("error: lr is not a setting")


def test_a_new_data_key_the_data_set_does_not_take_is_one_line(fails):
    assert fails("+data.nokey=7") == (
        "error: data: ImageDataModule.__init__() got an unexpected keyword argument 'nokey'; fix the data.* settings"
    )


def test_a_folder_given_as_ckpt_path_names_a_checkpoint_in_it(fails, tmp_path):
    run = tmp_path / "logs" / "earlier"
    assert fails(f"ckpt_path={run}") == (
        f"error: ckpt_path: '{run}' is a folder; give a .ckpt file in it; it holds none: give an existing .ckpt file "
        "or ckpt_path=last"
    )
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert fails(f"ckpt_path={run}", script="eval") == (
        f"error: ckpt_path: '{run}' is a folder; give a .ckpt file in it, e.g. ckpt_path={run}/checkpoints/last.ckpt"
    )


def test_a_typo_in_a_nested_key_of_the_model(fails):
    assert fails("model.net.dropuot=0.2").startswith(
        "error: model.net.dropuot is not a setting of model.net; did you mean model.net.dropout?"
    )


@pytest.mark.parametrize(
    "override, hint",
    [
        ("lr=0.01", "did you mean optimizer.lr?"),
        ("batch_size=32", "did you mean data.batch_size?"),
        ("epochs=5", "did you mean trainer.max_epochs (Keras' fit(epochs=...))?"),
        ("patience=3", "did you mean callbacks.early_stopping.patience?"),
        ("data.validation_split=0.2", "did you mean data.val_fraction (Keras' fit(validation_split=...))?"),
        ("data.test_size=0.3", "did you mean data.test_fraction (scikit-learn's train_test_split(test_size=...))?"),
        ("optimizer.learning_rate=0.01", "did you mean optimizer.lr (Keras' and scikit-learn's learning_rate)?"),
        ("trainer.gpus=1", "did you mean trainer.devices (Lightning 1.x's Trainer(gpus=N); with "
         "trainer.accelerator=gpu)?"),
    ],
)  # fmt: skip
def test_a_key_in_another_librarys_words_or_at_the_wrong_level_names_zoos(override, hint):
    """The words users bring (Keras' epochs and validation_split, scikit-learn's test_size, a bare lr=) point to
    the setting that does it, in the one line that refuses them."""
    with pytest.raises(ZooError) as refused:
        check_overrides("train", [override])
    key, value = override.split("=")
    assert str(refused.value).endswith(f"; {hint} to add a new key: +{key}={value}"), str(refused.value)


def test_a_word_for_a_number_names_the_default_the_run_would_take(fails):
    assert fails("optimizer.lr=abc", "recipe=none") == (
        "error: optimizer.lr=abc is not valid; optimizer.lr takes a number (default 0.001)"
    )
    assert fails("trainer.max_epochs=abc") == (  # the bare run's recipe sets 60 epochs, not the config's 30
        "error: trainer.max_epochs=abc is not valid; trainer.max_epochs takes an integer "
        "(default 60 with the mlp+digits recipe)"
    )


def test_eval_checks_its_overrides_too(fails):
    assert fails("ckpt_path=x.ckpt", "trainer.max_epoch=3", script="eval").startswith(
        "error: trainer.max_epoch is not a setting of trainer; did you mean trainer.max_epochs?"
    )


def left_to_the_user(group: str, option: str) -> dict[str, bool]:
    """Each key ``<group>/<option>.yaml`` sets, read from the YAML itself (not through zoo): True where the value is
    ``???`` after what it includes (another option of its group, an alias's new name; ``override /data: csv``) and its
    own keys over them."""
    path = CONF_DIR / group / f"{option}.yaml"
    if not path.is_file():  # a plugin's own config (override /hydra/sweeper: optuna)
        return {}
    text = path.read_text()
    raw = yaml.safe_load(text) or {}
    keys: dict[str, bool] = {}
    for entry in raw.pop("defaults", []):
        if isinstance(entry, str) and entry != "_self_" and not entry.startswith("/"):
            keys.update(left_to_the_user(group, entry))
        elif isinstance(entry, dict):
            for name, chosen in entry.items():
                if str(name).startswith("override /") and chosen:
                    keys.update(left_to_the_user(str(name).removeprefix("override /"), chosen))
    prefix = "" if "# @package _global_" in text else group.replace("/", ".")

    def walk(node: object, key: str) -> None:
        if isinstance(node, dict) and node:
            for name, value in node.items():
                walk(value, f"{key}.{name}")
        else:
            keys[key.lstrip(".")] = node == "???"

    walk(raw, prefix)
    return keys


def required_cases() -> list[tuple[str, list[str], str, list[str]]]:
    """(script, overrides, who needs it, keys) for every script's own config and every option in conf/ that leaves a
    value to the user."""
    cases = []
    for script in SCRIPTS:
        keys = [k for k, unset in left_to_the_user("", script).items() if unset]
        if keys:
            cases.append((script, [], f"scripts/{script}.py", keys))
    for group in sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in ("hydra", "base")):
        for option in sorted(f.stem for f in (CONF_DIR / group).glob("*.yaml")):
            keys = [k for k, unset in left_to_the_user(group, option).items() if unset]
            if keys:
                cases.append(("train", [f"{group}={option}"], f"{group}={option}", keys))
    return cases


REQUIRED = required_cases()


def test_the_required_values_are_found_in_the_configs():
    found = {who: keys for _, _, who, keys in REQUIRED}
    assert found["data=csv"] == ["data.path", "data.target"] and found["scripts/eval.py"] == ["ckpt_path"]
    assert sum(who.startswith("experiment=") for who in found) >= 5, found


@pytest.mark.parametrize("script, overrides, who, keys", REQUIRED, ids=[case[2] for case in REQUIRED])
def test_a_required_value_left_out_is_one_line_naming_every_key(script, overrides, who, keys):
    """Every option with a ``???`` (an experiment that needs the user's file, its old name, an option that includes
    it), composed as the scripts do before Hydra runs: one line naming the option, each key and what to give; given
    on the command line, the same keys pass."""
    with pytest.raises(ZooError) as refused:
        check_overrides(script, overrides)
    line = str(refused.value)
    needs, _, give = line.partition(": give ")
    assert needs.startswith(f"{who} needs "), line
    assert sorted(needs.removeprefix(f"{who} needs ").replace(" and ", ", ").split(", ")) == sorted(keys), line
    assert all(f"{key}=" in give for key in keys) and "\n" not in line, line
    check_overrides(script, [*overrides, *(f"{key}=x" for key in keys)])


def test_a_required_value_stays_required_where_it_lands_on_a_value(tmp_path):
    """``???`` over a value another config set (Hydra's merge keeps the value: a frozen backbone's ``weights: ???``
    over the model's null would train a random backbone) is still required; the command line may give null."""
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "frozen_mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: timm\n"
        "model:\n  weights: ??? # model.weights=DIR (my pretrained run)\n  finetune:\n    mode: frozen\n"
    )
    mine = [f"hydra.searchpath=[file://{tmp_path}]", "experiment=frozen_mine"]
    with pytest.raises(ZooError, match=r"^experiment=frozen_mine needs model.weights: give model.weights=DIR \(my pre"):
        check_overrides("train", mine)
    check_overrides("train", [*mine, "model.weights=null", "model.finetune.mode=full"])


@pytest.mark.parametrize(
    "script, overrides, line",
    [
        (
            "train",
            ["experiment=redes_exercicio05_1_multiclass_mlp"],
            "error: experiment=redes_exercicio05_1_multiclass_mlp needs data.path and data.target: give "
            "data.path=FILE (the exercise's CSV file) and data.target=COLUMN (its class column)",
        ),
        (
            "train",
            ["experiment=ex10_sarcasm"],
            "error: experiment=ex10_sarcasm needs data.path: give data.path=FILE (Kaggle's "
            "Sarcasm_Headlines_Dataset.json)",
        ),
        (
            "predict",
            [],
            "error: scripts/predict.py needs ckpt_path and input: give ckpt_path=FILE (a .ckpt from a run folder's "
            "checkpoints/, or a search's ensemble.json) and input=FILE (image files or a folder, a CSV table, or a "
            "text file with one input a line)",
        ),
    ],
    ids=["two_keys", "old_name", "script"],
)
def test_a_required_value_left_out_on_the_command_line(fails, script, overrides, line):
    """The same check through the scripts: exit code 2, the one line on stderr, no run folder."""
    assert fails(*overrides, script=script) == line


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


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(), reason="a GPU takes trainer=gpu")
def test_trainer_gpu_without_a_gpu_says_so_and_names_auto(fails):
    assert fails("trainer=gpu") == (
        "error: trainer.accelerator=gpu: this machine has no GPU that torch can use; leave it to "
        "trainer.accelerator=auto (trainer=default), which takes a GPU where there is one and the CPU elsewhere"
    )


def test_a_learning_rate_that_makes_the_loss_nan_stops_naming_the_step(fails):
    line = fails("optimizer=sgd", "optimizer.lr=1e12", "trainer.max_epochs=3", "callbacks=none", "recipe=none")
    assert line.startswith("error: the training loss became NaN or infinite at step ")
    assert "training stopped. optimizer.lr=1e+12 is too high here: try optimizer.lr=1e+11" in line


def test_data_files_missing_offline(fails, tmp_path):
    line = fails("data=mnist", f"paths.data_dir={tmp_path / 'nothing'}", "data.download=false")
    assert line.startswith("error: data=mnist: the IDX files (or their .gz) not found in ")
    assert line.endswith("use a data set that works offline: digits, mnist5k, images (your own folder)")


def test_fashion_mnist_missing_offline_names_the_command_that_fetches_it(fails, tmp_path):
    folder = tmp_path / "nothing"
    line = fails("experiment=fashion_fast", f"paths.data_dir={folder}", "data.download=false")
    assert line.startswith(f"error: data=fashion_mnist: the IDX files (or their .gz) not found in '{folder}/")
    assert f"fetch them with `python scripts/fetch_data.py fashion_mnist --data-dir {folder}`, " in line


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


def test_a_checkpoint_tested_on_data_it_cannot_read_is_refused_naming_both(fails, tmp_path):
    """scripts/eval.py data=NAME tests a checkpoint on another data set, which must give the inputs and classes the
    model was trained on; the same data set, picked by name, tests as the stored config does."""
    import zoo
    from tests.conftest import compose
    from zoo.run import evaluate

    run = zoo.fit("model=mlp", "data=iris", "logger=none", "trainer.max_epochs=3", f"paths.log_dir={tmp_path / 'iris'}")
    ckpt = f"ckpt_path={run.folder / 'checkpoints' / 'last.ckpt'}"
    assert fails(ckpt, "data=breast_cancer", script="eval") == (
        "error: data=breast_cancer gives classes ['malignant', 'benign'] but the model was trained on classes "
        "['setosa', 'versicolor', 'virginica'] (data=iris); test it on data like that"
    )
    assert fails(ckpt, "data=digits", script="eval").startswith("error: data=digits gives image inputs but the model")
    by_name = evaluate(compose([ckpt, "data=iris"], tmp_path, config_name="eval", folder="by_name"))
    stored = evaluate(compose([ckpt], tmp_path, config_name="eval", folder="stored"))
    assert by_name == pytest.approx(stored, abs=1e-6)
    with pytest.raises(zoo.ZooError, match=r"^data=mnist5k gives image inputs but the model was trained on table"):
        run.evaluate(data="mnist5k")


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


def test_a_refused_run_leaves_no_empty_folders_behind_and_keeps_earlier_runs(tmp_path):
    runs = tmp_path / "logs" / "mlp-digits" / "runs"
    earlier = runs / "earlier"
    earlier.mkdir(parents=True)
    env = {k: v for k, v in ENV.items() if k != "ZOO_LOG_DIR"}  # the folders a bare command makes, under ./logs
    for expected in ([earlier], []):
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "cv.folds=1"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        # refused inside its Hydra run, whose folders Hydra made
        assert proc.returncode == 2 and proc.stderr.startswith("error: cv.folds=1 is not valid")
        assert list(tmp_path.rglob("*")) == ([runs.parent.parent, runs.parent, runs, earlier] if expected else [])
        if expected:
            earlier.rmdir()  # an empty runs/ made by an earlier run is gone too, once a refused run leaves it empty
