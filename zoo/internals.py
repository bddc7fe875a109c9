"""The one door to Lightning's, Hydra's and Optuna's private internals: the few places zoo needs them, each saying
why.

Nothing else in zoo touches a private attribute of Lightning, Hydra or Optuna. ``tests/test_internals.py`` checks
each one below against the installed versions and fails naming the attribute when an upgrade moves it; the lower
bounds in ``pyproject.toml`` are the versions those tests ran against. Kept free of torch and Lightning at import time.
"""

from __future__ import annotations

from typing import Any

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
