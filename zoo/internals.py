"""The one door to Lightning's, torchmetrics', Hydra's and Optuna's private internals: the few places zoo needs
them, each saying why.

Nothing else in zoo touches a private attribute of Lightning, torchmetrics, Hydra or Optuna.
``tests/test_internals.py`` checks each one below against the installed versions and fails naming the attribute when
an upgrade moves it; the lower bounds in ``pyproject.toml`` are the versions those tests ran against. Kept free of
torch and Lightning at import time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from typing import Any
from weakref import proxy


def replace_once(owner: Any, name: str, wrap: Any) -> None:
    """``owner.name = wrap(owner.name)``, once: the replacement is marked, and a second call finds the mark. Nothing
    changes where ``owner`` has no ``name`` (a release that moved it)."""
    old = getattr(owner, name, None)
    if old is None or getattr(old, "zoo_replaced", False):
        return
    new = wrap(old)
    new.zoo_replaced = True
    setattr(owner, name, new)


# -- Lightning -------------------------------------------------------------------------------------------------


def count_group_steps(trainer: Any, steps: int) -> None:
    """A group of ``steps`` optimiser steps ran in one Lightning step (``zoo.tasks.grouped``). Lightning adds one
    to the loggers' step axis (W&B's ``trainer/global_step``) per Lightning step; the group's others are added here,
    so that the axis counts optimiser steps as one step at a time does. Lightning keeps that count in the epoch
    loop's ``_batches_that_stepped`` (also saved in checkpoints, so a resumed run continues it)."""
    trainer.fit_loop.epoch_loop._batches_that_stepped += steps - 1


def optimizer_step_progress(trainer: Any) -> Any:
    """The progress tracker in which Lightning counts manual optimisation's optimiser steps (its ``global_step``,
    saved in checkpoints). The fast path steps the optimiser itself where Lightning's wrapper would add nothing
    and counts each step here (``zoo.tasks.grouped.StepCounter``)."""
    return trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress


HOOK_NAME = "_current_fx_name"


class QuickHookName:
    """Mixin for a LightningModule: Lightning sets ``_current_fx_name`` around every hook, dozens of times a step,
    and ``nn.Module.__setattr__``'s parameter, buffer and module checks make that a measurable share of a small
    model's step. The value is a plain string, so it is set as one."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == HOOK_NAME:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)


def logged_values_moved_only_when_elsewhere() -> None:
    """Every ``self.log`` call moves the logged value's accumulator (Lightning's ``_ResultMetric``) to the value's
    device, ``_ResultCollection.log`` calling its ``to``, which walks the accumulator's whole state each time, there
    already or not: 0.2 ms a call on a CPU, 0.12 s of the default run's 300. Here the walk is left out where the
    accumulated value and batch-size count are on that device already (the rest of its state moves with them), and
    runs as before where they are not."""
    import torch
    from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultMetric

    def wrap(move: Any) -> Any:
        def to(self: Any, *args: Any, **kwargs: Any) -> Any:
            if len(args) == 1 and not kwargs and isinstance(args[0], torch.device):
                state = vars(self)
                value, count = state.get("value"), state.get("cumulated_batch_size")
                if getattr(value, "device", None) == args[0] and getattr(count, "device", args[0]) == args[0]:
                    return self
            return move(self, *args, **kwargs)

        return to

    replace_once(_ResultMetric, "to", wrap)


class LastCheckpointLinked:
    """Mixin for Lightning's ModelCheckpoint: ``last.ckpt`` a hard link to the checkpoint written at the same step.
    With ``save_last=true`` Lightning writes it whenever it writes a best one, the same content serialised and
    written a second time (19 of the default run's 38 checkpoint writes) and kept twice on disk. Lightning replaces
    either file by renaming a new one over it, so neither changes the other; where the folder cannot hold hard
    links, ``last.ckpt`` is written as Lightning writes it. Lightning's ``_save_checkpoint(trainer, filepath)``
    writes each file, and records the newest in ``_last_checkpoint_saved`` and its step in
    ``_last_global_step_saved``."""

    def _save_checkpoint(self, trainer: Any, filepath: str) -> None:
        same_step = self._last_checkpoint_saved if self._last_global_step_saved == trainer.global_step else ""
        if filepath != self.last_model_path or not same_step or same_step == filepath:
            return super()._save_checkpoint(trainer, filepath)  # type: ignore[misc]
        linked = trainer.strategy.broadcast(link_over(same_step, filepath) if trainer.is_global_zero else False)
        if not linked:
            return super()._save_checkpoint(trainer, filepath)  # type: ignore[misc]
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))


def learning_rate(trainer: Any) -> float | None:
    """The first optimiser's first group's learning rate now (a tensor one read as a number); None without one."""
    groups = trainer.optimizers[0].param_groups if trainer.optimizers else []  # none for a closed-form ELM
    return float(groups[0]["lr"]) if groups else None


class EpochLearningRate:
    """Mixin for a Lightning callback (before ``L.Callback`` in its bases): ``epoch_lr``, the rate the current epoch
    trains at, read at its first batch. Schedulers step at an epoch's end (ReduceLROnPlateau as the next one begins),
    so a read at the end gives the next epoch's."""

    epoch_lr: float | None = None

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, index: int) -> None:
        if index == 0:
            self.epoch_lr = learning_rate(trainer)


def link_over(source: str, target: str) -> bool:
    """Make ``target`` a hard link to ``source``, replacing what was there in one rename, so that ``target`` is
    whole at every moment; False where the file system refuses (no hard links, another device, a URL)."""
    temporary = f"{target}.link-{os.getpid()}"
    try:
        os.link(source, temporary)
        os.replace(temporary, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        return False
    return True


def without_wandb_anonymous(logger: Any) -> Any:
    """``logger`` (Lightning's WandbLogger) without the ``anonymous`` argument it always hands ``wandb.init``: W&B
    warns on every run that the setting has no effect, whatever its value. The arguments wait in the logger's
    ``_wandb_init`` until the W&B run starts."""
    logger._wandb_init.pop("anonymous", None)
    return logger


def ddp_children_run_this_job() -> None:
    """Lightning starts DDP's other processes (``trainer=ddp`` on one machine) with the script's own command line
    and ``hydra.run.dir`` (its private ``_hydra_subprocess_cmd``, which the Trainer's launcher imports by name).
    Under ``--multirun`` that line is the whole sweep, and each child would run every job of it; here a child gets
    this job's overrides and this job's folder."""
    import sys

    from lightning.pytorch.strategies.launchers import subprocess_script

    def command(local_rank: int) -> tuple[list[str], str]:
        from hydra.core.hydra_config import HydraConfig
        from hydra.utils import get_original_cwd, to_absolute_path

        import __main__

        hydra = HydraConfig.get()
        script = [sys.executable, to_absolute_path(sys.argv[0])]
        if __main__.__spec__ is not None:  # started with python -m
            script = [sys.executable, "-m", __main__.__spec__.name]
        folder = f'hydra.run.dir="{hydra.runtime.output_dir}"'
        job = [folder, f"hydra.job.name=train_ddp_process_{local_rank}", "hydra.output_subdir=null"]
        return [*script, *hydra.overrides.task, *job], get_original_cwd()

    subprocess_script._hydra_subprocess_cmd = command


# -- torchmetrics ----------------------------------------------------------------------------------------------

OWN_CLASSES = ("zoo.", "torch.", "lightning.")  # whose classes a run may name without using torchmetrics' extras


@contextlib.contextmanager
def torchmetrics_without_unused_extras(config: Any) -> Iterator[None]:
    """Around the import of Lightning in a training run: torchmetrics leaves out what the run cannot use.

    ``import lightning`` imports torchmetrics, and torchmetrics imports every optional package it finds installed,
    used or not (Lightning-AI/torchmetrics#3457): ``scipy.signal``, to patch it for the SRMRpy package, and
    ``transformers``, for its BERTScore, InfoLM and CLIP metrics, 1.4 s of the default run's 4.5 s of imports on a
    2-core CPU. Here torchmetrics' checks (``lightning_utilities``' ``package_available`` and ``RequirementCache``)
    read scipy as missing where SRMRpy is not installed, and transformers as missing where the run's ``config``
    names only zoo's, torch's and Lightning's classes (``_target_``), which never use those metrics; the checks are
    themselves again after the block, for every other package and caller. zoo's own transformer net imports
    transformers itself, as usual. Nothing changes where torchmetrics is already imported."""
    if "torchmetrics" in sys.modules:
        yield
        return
    unused = {"transformers"} if all(str(target).startswith(OWN_CLASSES) for target in targets(config)) else set()
    if importlib.util.find_spec("srmrpy") is None:
        unused.add("scipy")
    from lightning_utilities.core import imports

    real_available, real_bool = imports.package_available, imports.RequirementCache.__bool__
    hiding = [unused]  # emptied after the block: a module that bound the checks below then gets the real answers

    def package_available(name: str) -> bool:
        return name.split(".")[0] not in hiding[0] and real_available(name)

    def requirement_met(cache: Any) -> bool:
        name = re.split(r"[\s<>=!~;\[]", cache.requirement or cache.module or "", maxsplit=1)[0]
        return name.split(".")[0] not in hiding[0] and real_bool(cache)

    imports.package_available, imports.RequirementCache.__bool__ = package_available, requirement_met
    try:
        yield
    finally:
        hiding[0] = set()
        imports.package_available, imports.RequirementCache.__bool__ = real_available, real_bool


def targets(node: Any) -> Iterator[Any]:
    """Every ``_target_`` (a class or function Hydra instantiates) in a config (a DictConfig, dict or list)."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(node):
        node = OmegaConf.to_container(node, resolve=False)
    if isinstance(node, dict):
        if "_target_" in node:
            yield node["_target_"]
        for value in node.values():
            yield from targets(value)
    elif isinstance(node, list):
        for value in node:
            yield from targets(value)


# -- Hydra -----------------------------------------------------------------------------------------------------


def expand_sweep(parsed_overrides: list[Any]) -> list[list[str]]:
    """Every override list of a ``--multirun`` sweep, as Hydra's basic sweeper expands them (its
    ``split_arguments``, in ``hydra._internal``), so that each combination is checked before any job starts."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return [combo for batch in BasicSweeper.split_arguments(parsed_overrides, None) for combo in batch]


def job_outcome(job_return: Any) -> Any:
    """What a Hydra job returned, or the exception that ended it: ``JobReturn.return_value`` raises the exception
    again for a failed job, so the recorded outcome is read from ``_return_value``."""
    return job_return._return_value


# -- Optuna ----------------------------------------------------------------------------------------------------


def optuna_trial(study: Any, number: int) -> Any:
    """Trial ``number`` of ``study`` as the ``optuna.Trial`` its job reports to (``zoo.pruning``): the sweeper asks
    for the trial in its own process, and Optuna's public API hands a running trial to another process only by its
    storage id, which the study's ``_storage`` and ``_study_id`` give."""
    import optuna

    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return optuna.trial.Trial(study, trial_id)
