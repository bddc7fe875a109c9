"""The job's side of an Optuna search (:mod:`zoo.sweeper`): after each validation the trial reports
``optimized_metric`` to its study, and the study's pruner may stop the training there.

A pruned trial still tests its best checkpoint and writes its run folder; results.csv lists it as ``pruned`` (never
the best), and the study records it as Optuna's PRUNED with its last reported value.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from omegaconf import DictConfig

from zoo.internals import optuna_trial
from zoo.search import PRUNED_AT, make_pruner, optuna_storage, record_pruned, study_location


class PruneTrial(L.Callback):
    """Report ``metric`` to the trial after every validation epoch; stop training when the pruner says so."""

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial = trial
        self.metric = metric

    @classmethod
    def for_job(cls, cfg: DictConfig) -> PruneTrial | None:
        """The callback for a job of an Optuna search whose pruner is not ``none`` (and which does not
        cross-validate); else None."""
        number = (cfg.get("hparams_search") or {}).get("trial")
        if number is None or not cfg.get("optimized_metric") or (cfg.get("cv") or {}).get("folds") is not None:
            return None  # a cross-validated trial runs every fold in full: each fold's curve starts again
        from hydra.core.hydra_config import HydraConfig

        sweeper = HydraConfig.get().sweeper
        if sweeper.get("pruner", "none") == "none":
            return None
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        pruner = make_pruner(
            sweeper.pruner, sweeper.pruner_warmup_epochs, sweeper.pruner_startup_trials, cfg.trainer.max_epochs
        )
        storage, name = study_location(sweeper, HydraConfig.get().sweep.dir)
        study = optuna.load_study(study_name=name, storage=optuna_storage(storage), pruner=pruner)
        return cls(optuna_trial(study, int(number)), cfg.optimized_metric)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit" or self.metric not in trainer.callback_metrics:
            return  # the validation after testing (the objective's) reports nothing
        epoch = trainer.current_epoch + 1
        prune = False
        if trainer.is_global_zero:
            value = float(trainer.callback_metrics[self.metric])
            self.trial.report(value, epoch)
            prune = self.trial.should_prune()
            if prune:
                self.trial.set_user_attr(PRUNED_AT, epoch)
                number, metric = self.trial.number, self.metric
                print(f"trial {number} pruned after epoch {epoch}: {metric} {value:.4f} trails the earlier trials")
        if trainer.strategy.broadcast(prune):  # every process stops together
            record_pruned(f"pruned after epoch {epoch}")
            trainer.should_stop = True
