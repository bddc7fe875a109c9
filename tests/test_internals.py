"""Each private piece of Lightning, Hydra or Optuna that zoo relies on (``zoo.internals``), checked against the
installed versions: an upgrade that moves one fails here, naming it, instead of silently changing step counts or
resumes."""

from __future__ import annotations

import os
import subprocess
import sys

import lightning as L
import torch
from torch import nn

from zoo import internals


class Tiny(L.LightningModule):
    """Three batches of one linear layer; ``manual`` steps the optimiser itself, as zoo's grouped steps do."""

    def __init__(self, manual: bool = False) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.automatic_optimization = not manual

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        if self.automatic_optimization:
            return loss
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        return None

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(12, 2)), batch_size=4)


def fit(module: L.LightningModule) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(module)
    return trainer


def test_lightning_counts_the_loggers_steps_in_batches_that_stepped():
    trainer = fit(Tiny())
    loop = trainer.fit_loop.epoch_loop
    assert getattr(loop, "_batches_that_stepped", None) == 6, (
        "Lightning moved trainer.fit_loop.epoch_loop._batches_that_stepped (zoo.internals.count_group_steps)"
    )
    internals.count_group_steps(trainer, 5)
    assert loop._batches_that_stepped == 10


def test_lightning_counts_manual_optimizer_steps_in_optim_step_progress():
    trainer = fit(Tiny(manual=True))
    progress = internals.optimizer_step_progress(trainer)
    assert progress.total.completed == trainer.global_step == 6, (
        "Lightning moved fit_loop.epoch_loop.manual_optimization.optim_step_progress "
        "(zoo.internals.optimizer_step_progress)"
    )
    assert callable(progress.increment_ready) and callable(progress.increment_completed)


def test_lightning_sets_current_fx_name_on_the_module():
    module = Tiny()
    assert internals.HOOK_NAME in vars(module), (
        "Lightning no longer sets _current_fx_name (zoo.internals.QuickHookName)"
    )


def test_lightnings_log_moves_each_accumulator_to_the_logged_values_device(monkeypatch):
    from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultCollection, _ResultMetric

    internals.logged_values_moved_only_when_elsewhere()
    asked, move = [], _ResultMetric.to
    monkeypatch.setattr(_ResultMetric, "to", lambda metric, *args: (asked.append(args), move(metric, *args))[1])
    results = _ResultCollection(training=True)
    for loss in (1.0, 3.0):
        results.log("training_step", "loss", torch.tensor(loss), batch_size=2)
    assert asked == [(torch.device("cpu"),)] * 2, (
        "Lightning's _ResultCollection.log no longer calls _ResultMetric.to(value.device) "
        "(zoo.internals.logged_values_moved_only_when_elsewhere)"
    )
    (metric,) = results.values()
    assert metric.compute() == 2.0  # the mean, as ever
    metric.to(torch.device("meta"))  # elsewhere: moved, the whole state
    assert metric.value.device.type == metric.cumulated_batch_size.device.type == "meta"


def test_hydras_basic_sweeper_expands_a_sweep():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(["seed=1,2", "model=mlp"])
    assert internals.expand_sweep(parsed) == [["seed=1", "model=mlp"], ["seed=2", "model=mlp"]], (
        "hydra._internal.core_plugins.basic_sweeper.BasicSweeper.split_arguments moved (zoo.internals.expand_sweep)"
    )


def test_hydras_job_return_keeps_a_failed_jobs_exception():
    from hydra.core.utils import JobReturn, JobStatus

    error = ValueError("the job's error")
    job = JobReturn(status=JobStatus.FAILED, _return_value=error)
    assert internals.job_outcome(job) is error, "Hydra's JobReturn._return_value moved (zoo.internals.job_outcome)"


def test_lightnings_wandb_logger_holds_wandbs_init_arguments_until_the_run_starts(tmp_path):
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(offline=True, save_dir=str(tmp_path))
    assert "anonymous" in getattr(logger, "_wandb_init", {}), (
        "Lightning's WandbLogger no longer keeps wandb.init's arguments in _wandb_init with anonymous among them "
        "(zoo.internals.without_wandb_anonymous)"
    )
    assert "anonymous" not in internals.without_wandb_anonymous(logger)._wandb_init


def test_optuna_hands_a_running_trial_to_another_process_by_its_storage_id(tmp_path):
    """The job's side of a search reports to the trial the sweeper asked for, through its own storage object."""
    import optuna

    storage = f"sqlite:///{tmp_path}/study.db"
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    asked = optuna.create_study(storage=storage, study_name="s").ask(space)
    trial = internals.optuna_trial(optuna.load_study(study_name="s", storage=storage), asked.number)
    trial.report(0.5, 1)
    assert trial.number == asked.number and trial.params == asked.params
    assert optuna.load_study(study_name="s", storage=storage).trials[0].intermediate_values == {1: 0.5}


def test_lightnings_ddp_launcher_builds_a_childs_command_line_in_hydra_subprocess_cmd(monkeypatch):
    """zoo.internals.ddp_children_run_this_job replaces the function the Trainer's launcher calls for each child."""
    import inspect

    from lightning.pytorch.strategies.launchers import subprocess_script

    monkeypatch.setattr(subprocess_script, "_hydra_subprocess_cmd", subprocess_script._hydra_subprocess_cmd)
    internals.ddp_children_run_this_job()
    assert subprocess_script._hydra_subprocess_cmd.__module__ == "zoo.internals"
    source = inspect.getsource(subprocess_script._SubprocessScriptLauncher._call_children_scripts)
    assert "_hydra_subprocess_cmd(" in source


IMPORT_LIGHTNING = """
import contextlib, sys
from omegaconf import OmegaConf
from zoo.internals import torchmetrics_without_unused_extras
config = OmegaConf.create({"model": {"_target_": sys.argv[1]}, "data": {"_target_": "zoo.data.images.Digits"}})
with torchmetrics_without_unused_extras(config) if sys.argv[1] else contextlib.nullcontext():
    import lightning
from lightning_utilities.core.imports import RequirementCache, package_available
from torchmetrics.detection import MeanAveragePrecision  # zoo's detector: torchvision's checks are untouched
from torchmetrics.utilities import imports
text = sys.modules["torchmetrics.text"]
print(*sorted(m for m in ("transformers", "scipy.signal") if m in sys.modules), "|",
      bool(RequirementCache("transformers>=4.4.0")), bool(imports._TRANSFORMERS_GREATER_EQUAL_4_4),
      bool(imports._SCIPI_AVAILABLE), package_available("scipy"), hasattr(text, "BERTScore"))
"""


def imported_with(target: str) -> str:
    done = subprocess.run([sys.executable, "-c", IMPORT_LIGHTNING, target], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_torchmetrics_imports_transformers_and_scipy_signal_unless_told_they_are_missing():
    """torchmetrics' eager imports of its optional packages (Lightning-AI/torchmetrics#3457): where an upgrade
    stops making them, ``zoo.internals.torchmetrics_without_unused_extras`` has nothing left to leave out."""
    assert imported_with("") == "scipy.signal transformers | True True True True True"
    # scipy.signal only patched for SRMRpy, which is not installed; transformers kept for a class of the user's
    assert imported_with("my_package.MyNet") == "transformers | True True True True True"
    # a run naming only zoo's own classes: neither imported, and every check answers truly once Lightning is in
    assert imported_with("zoo.tasks.classification.Classification") == "| True True True True False"


LOG_TO_WANDB = """
import sys, time, wandb
from wandb.sdk.lib.service import service_port_file
asked, slept = [], []  # what W&B asks to wait between looks for its service's port file, and what it waits
service_port_file._SLEEP = lambda seconds: (slept.append(seconds), time.sleep(seconds))
from zoo.tracking import poll_service_often, read_each_package_once, skip_pandas_until_imported
listed = sorted((dist.key, dist.version) for dist in wandb.util.working_set())
read_each_package_once()
print(sorted((dist.key, dist.version) for dist in wandb.util.working_set()) == listed, len(listed) > 100, end=" ")
skip_pandas_until_imported()
poll_service_often()
shortened = service_port_file._SLEEP
poll_service_often()  # a second call changes nothing
print(service_port_file._SLEEP is shortened, end=" ")
service_port_file._SLEEP = lambda seconds: (asked.append(seconds), shortened(seconds))
run = wandb.init(mode="offline", dir=sys.argv[1])
print(asked[0], max(slept), end=" ")
run.log({"train/loss": 0.5})
print("pandas" in sys.modules, end=" ")
import pandas as pd
table = pd.DataFrame({"x": [1, 2]})
run.log({"table": table})  # W&B turns a DataFrame into a table, as ever, once pandas is in
print(wandb.util.is_pandas_data_frame(table), wandb.util.is_pandas_data_frame([1, 2]))
run.finish()
"""


def test_wandb_lists_packages_polls_its_service_and_asks_whether_a_value_is_a_dataframe_through_util(tmp_path):
    own = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}  # a service of its own, not this process's
    done = subprocess.run([sys.executable, "-c", LOG_TO_WANDB, str(tmp_path)], capture_output=True, text=True, env=own)
    assert done.returncode == 0, done.stderr
    # the same packages for the run's requirements; W&B asks 0.2 s between looks at its service, zoo's runs wait 5 ms
    assert done.stdout.split() == ["True", "True", "True", "0.2", "0.005", "False", "True", "False"]
