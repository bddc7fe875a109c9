"""The command line as a user types it: --help, --cfg job, one-line errors, the default run, multirun."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": ""}


def script(name: str, *args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_help_lists_every_group_and_option_without_importing_torch():
    code = (
        "import runpy, sys; sys.argv = ['train.py', '--help']\n"
        "try: runpy.run_path('scripts/train.py', run_name='__main__')\n"
        "except SystemExit: pass\n"
        "assert 'torch' not in sys.modules and 'hydra' not in sys.modules, 'help imported heavy modules'"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for group, options in {
        "model": "cnn, detector, elm, lenet5, linear, logistic, *mlp, mlp_layers, net, resnet, rnn, text_avgpool, "
        "timm, transformer, triplet, unet",
        "hparams_search": "auto, genetic, grid, optuna",
        "data": "boston, boxes, breast_cancer, cifar10, csv, *digits, fashion_mnist, house_prices, images, imdb, "
        "iris, masks, mnist, mnist5k, pets, sarcasm, shapes, synthetic, text_csv, text_synth, wine, yolo",
        "optimizer": "*adam, adamw, momentum, rmsprop, sgd",
        "debug": "fdr, limit, overfit, profiler",
        "logger": "csv, none, tensorboard, *wandb",
        "trainer": "cpu, ddp, ddp_sim, *default, gpu",
    }.items():
        assert f"{group:<11} {options}" in out


def test_each_scripts_help_lists_its_own_groups_and_says_what_it_does():
    out = script("eval", "--help").stdout
    assert "  data        boston, " in out and "  logger      *csv, " in out and "  trainer     " in out
    assert "  model " not in out and "  experiment " not in out  # the checkpoint brings its model
    assert "python scripts/eval.py ckpt_path=PATH: tests a checkpoint on its test split" in out
    assert "data=NAME tests it on another" in out and "scripts/train.py" not in out


def test_cfg_job_prints_the_composed_config_with_overrides():
    proc = script("train", "model=linear", "data=boston", "data.batch_size=full", "seed=7", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr
    assert "_target_: zoo.nets.linear.Linear" in proc.stdout
    assert "batch_size: full" in proc.stdout and "seed: 7" in proc.stdout


def test_a_group_set_to_null_is_left_out_as_its_config_prints_it():
    """``scheduler: null`` in --cfg job reads as ``scheduler=null`` on the command line: the run goes without that
    group (Hydra's own spelling, ``~scheduler``, too), where Hydra alone stops with a traceback."""
    proc = script("train", "logger=null", "scheduler=null", "experiment=null", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr
    assert "\nlogger:" not in proc.stdout and "\nscheduler:" not in proc.stdout and "\nmodel:" in proc.stdout


@pytest.mark.parametrize("override", ["model=null", "~data"])
def test_leaving_out_a_group_the_run_needs_is_one_line(tmp_path, override):
    proc = script("train", override, f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    group = override.lstrip("~").split("=")[0]
    assert proc.stderr.startswith(f"error: {override}: {group} cannot be left out; choose one of ")
    assert not (tmp_path / "run").exists()


def test_a_group_a_script_leaves_unset_may_be_set_to_null_there(tmp_path):
    """eval's data is unset (the checkpoint's data): ``data=null`` is its default there, and the script goes on to
    the checkpoint; its trainer is needed."""
    proc = script("eval", "data=null", f"ckpt_path={tmp_path}/x.ckpt", f"hydra.run.dir={tmp_path}/run")
    assert (
        proc.stderr.strip().splitlines()[-1]
        == f"error: ckpt_path: '{tmp_path}/x.ckpt' not found; give the path of a .ckpt file from a zoo run"
    )
    proc = script("eval", "trainer=null", f"ckpt_path={tmp_path}/x.ckpt")
    assert proc.returncode == 2 and proc.stderr.startswith("error: trainer=null: trainer cannot be left out; choose ")


@pytest.mark.parametrize(
    "override, line",
    [
        ("seed=${oops}", "error: seed=${oops}: Interpolation key 'oops' not found; refer to a key of the composed "
         "config (--cfg job prints it)"),
        ("model.net.hidden=[${nope},10]", "error: model.net.hidden=[${nope},10]: Interpolation key 'nope' not found; "
         "refer to a key of the composed config (--cfg job prints it)"),
    ],
)  # fmt: skip
def test_an_interpolation_to_no_key_is_one_line_before_the_run_starts(tmp_path, override, line):
    proc = script("train", override, f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "run").exists()
    good = script("train", "name=${model.name}-${hydra:job.name}", "model.net.hidden=[${data.batch_size}]", "-c", "job")
    assert good.returncode == 0 and "name: ${model.name}-${hydra:job.name}" in good.stdout, good.stderr


@pytest.mark.parametrize(
    "args, line",
    [
        (["-cn", "nothing"], "error: -cn nothing: no nothing.yaml in {conf}; choose one of compare, eval, export, "
         "predict, train"),
        (["--config-name=nothing"], "error: -cn nothing: no nothing.yaml in {conf}; choose one of compare, eval, "
         "export, predict, train"),
        (["-cp", "{tmp}/nowhere"], "error: -cp {tmp}/nowhere: no folder {tmp}/nowhere; give a folder of configs "
         "(absolute, or relative to scripts/)"),
        (["-cd", "{tmp}/nowhere"], "error: -cd {tmp}/nowhere: no such folder; give a folder of configs to add to the "
         "search path"),
        (["hydra.run.dir="], "error: hydra.run.dir= is empty; give a folder (hydra.run.dir=runs/mine) or leave it out"),
        (["-cp", "{tmp}"], "error: -cp {tmp}: no train.yaml in {tmp}; name its config with -cn NAME: that folder holds "
         "no .yaml config"),
    ],
)  # fmt: skip
def test_a_config_flag_or_run_folder_that_names_nothing_is_one_line(tmp_path, args, line):
    """Hydra answers a missing config with several lines and its search path, and an empty run folder with a run in
    the current folder; zoo refuses both in one line before anything runs."""
    args = [a.format(tmp=tmp_path) for a in args]
    proc = script("train", *args, "logger=none", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [line.format(tmp=tmp_path, conf=ROOT / "conf")]
    assert os.listdir(tmp_path) == []
    own = script("train", "-cp", "../conf", "-cn", "train.yaml", "--cfg", "job")  # the script's own, spelled out
    assert own.returncode == 0 and "model:" in own.stdout, own.stderr


def test_a_run_folder_that_is_a_file_is_one_line_and_the_file_is_kept(tmp_path):
    (tmp_path / "flowers.csv").write_text("a,b\n1,2\n")
    proc = script("train", "hydra.run.dir=flowers.csv", "logger=none", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: hydra.run.dir=flowers.csv: 'flowers.csv' is a file; give a folder (hydra.run.dir=runs/mine)"
    ]
    assert os.listdir(tmp_path) == ["flowers.csv"] and (tmp_path / "flowers.csv").read_text() == "a,b\n1,2\n"


def test_a_run_refused_at_its_start_leaves_a_folder_it_was_given_as_it_was(tmp_path):
    """Hydra opens the job's log in the folder before zoo refuses the run: the empty log goes, the rest stays."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    proc = script("train", f"hydra.run.dir={mine}", "optimizer.lr=-1", "logger=none", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: optimizer: Invalid learning rate: -1")
    assert os.listdir(mine) == ["notes.txt"]


def test_bad_input_exits_non_zero_with_one_line_and_no_traceback(tmp_path):
    proc = script(
        "train", "data=csv", f"data.path={tmp_path}/missing.csv", "data.target=y", f"hydra.run.dir={tmp_path}/run"
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: data.path: file '{tmp_path}/missing.csv' not found; give the path of an existing CSV file"
    ]


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.batch_size=0", "error: data.batch_size=0 is not valid; use a positive integer"),
        ("data.augment.crop_padding=-1", "error: data.augment.crop_padding=-1 must be an integer >= 0"),
        ("model.net.dropout=1.5", "error: MLP layer 1: dropout=1.5 must lie in [0, 1)"),
    ],
)
def test_a_value_the_data_or_net_refuses_is_one_line_too(tmp_path, override, message):
    proc = script("train", override, "logger=none", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")][0].startswith(message)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["channels_last=3"], "channels_last=3 is not valid; channels_last takes true, false or auto (default auto)"),
        (["cuda_graphs=maybe"], "cuda_graphs=maybe is not valid; cuda_graphs takes true, false or auto (default auto)"),
        (["trainer.deterministic=warn"], None),  # Lightning's own values besides true and false
        (["debug=fdr", "trainer.fast_dev_run=3"], None),
        (
            ["trainer.deterministic=maybe"],
            "trainer.deterministic=maybe is not valid; trainer.deterministic takes true, false or warn (default false)",
        ),
        (
            ["debug=fdr", "trainer.fast_dev_run=abc"],
            "trainer.fast_dev_run=abc is not valid; trainer.fast_dev_run takes true, false or a number of batches "
            "(default true)",
        ),
    ],
)
def test_a_switch_takes_true_or_false_and_what_else_lightning_takes(overrides, message):
    from zoo.cli import check_overrides
    from zoo.errors import ZooError

    if message is None:
        check_overrides("train", overrides)
    else:
        with pytest.raises(ZooError) as err:
            check_overrides("train", overrides)
        assert str(err.value) == message


def test_incompatible_model_and_data_fail_at_once_naming_both(tmp_path):
    proc = script("train", "model=linear", "data=digits", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 2
    assert "error: model=linear does regression but data=digits is a classification data set" in proc.stderr


@pytest.mark.slow
def test_default_run_trains_tests_and_prints_metrics_into_the_chosen_folder(tmp_path):
    run_dir = tmp_path / "my-run"
    proc = script("train", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] >= 0.97
    assert f"test/acc={metrics['test/acc']:.4f}" in proc.stdout
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))  # W&B by default, offline
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / "history.csv").is_file()
    again = script("eval", f"ckpt_path={run_dir}/checkpoints/last.ckpt", f"hydra.run.dir={tmp_path}/eval", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "test/acc=" in again.stdout


@pytest.mark.slow
def test_multirun_gives_each_job_its_own_folder_and_wandb_run(tmp_path):
    proc = script(
        "train",
        "--multirun",
        "model=linear,mlp",
        "data=house_prices",
        "trainer.max_epochs=2",
        f"paths.log_dir={tmp_path}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = sorted(tmp_path.glob("*-house_prices/multiruns/*/*/metrics.json"))  # one per job, in its experiment
    assert len(jobs) == 2
    (results,) = tmp_path.glob("*-house_prices/multiruns/*/results.csv")  # one for the multirun: both jobs
    assert sorted(row["job"] for row in csv.DictReader(results.open())) == ["0", "1"]
    assert f"multirun: 2 of 2 jobs finished; results: {results}" in proc.stdout
    runs = {p.name for job in jobs for p in (job.parent / "wandb").glob("offline-run-*")}
    assert len(runs) == 2


def test_a_multirun_into_the_folder_of_an_earlier_one_is_refused_with_its_results_kept(tmp_path):
    sweep = tmp_path / "sweep"
    first = script("train", "--multirun", f"hydra.sweep.dir={sweep}", "data=iris", "optimizer.lr=0.01,0.02",
                   "trainer.max_epochs=1", "logger=none", cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]
    kept = {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()}
    again = script("train", "--multirun", f"hydra.sweep.dir={sweep}", "data=iris", "optimizer.lr=0.03",
                   "trainer.max_epochs=1", "logger=none", cwd=tmp_path)  # fmt: skip
    assert again.returncode == 2 and again.stderr.strip().splitlines() == [
        f"error: hydra.sweep.dir: '{sweep}' already holds a multirun (jobs.jsonl, results.csv); nothing was "
        "overwritten. Pick another hydra.sweep.dir"
    ]
    assert {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()} == kept


END_OF_A_SCRIPT = """
import atexit, sys, threading, time
from pathlib import Path
from zoo.cli import exit_without_teardown
out = Path(sys.argv[1])
atexit.register(lambda: (out / "atexit").write_text("ran"))
threading.Thread(target=lambda: (time.sleep(0.2), (out / "thread").write_text("joined"))).start()
print("buffered", end="")  # a pipe's stdout holds it until flushed
exit_without_teardown(3)
print("never")
"""


def test_a_script_ends_without_teardown_once_what_a_normal_exit_does_is_done(tmp_path):
    done = subprocess.run([sys.executable, "-c", END_OF_A_SCRIPT, str(tmp_path)], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (3, "buffered", "")
    assert (tmp_path / "atexit").read_text() == "ran" and (tmp_path / "thread").read_text() == "joined"
