"""Callbacks: a run's outputs (history, learning curves, test figures, the config inside checkpoints) and
transfer-learning modes (frozen backbone, fine-tuning, gradual unfreezing)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BaseFinetuning, Checkpoint
from lightning.pytorch.callbacks import EarlyStopping as _LightningEarlyStopping
from lightning.pytorch.loggers import WandbLogger
from torch import nn

from zoo.errors import ZooError


class RunOutputs(Checkpoint):
    """Writes ``history.csv`` after every epoch (what Keras' ``fit`` returns) and ``learning_curves.png`` at the end.

    A ``Checkpoint`` callback, so Lightning calls it after the task's ``on_train_epoch_end`` (where the epoch's
    training metrics are logged), as it does ModelCheckpoint.

    The history and the composed run config travel inside every checkpoint, so a resumed run continues the same
    history and ``scripts/eval.py`` needs nothing but the checkpoint.
    """

    def __init__(self, output_dir: str | Path, config: dict[str, Any]) -> None:
        self.output_dir = Path(output_dir)
        self.config = config
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        row: dict[str, float] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for key, value in sorted(trainer.callback_metrics.items()):
            if key.startswith(("train/", "val/")) and not key.endswith("_step"):
                row[key] = float(value)
        groups = trainer.optimizers[0].param_groups if trainer.optimizers else []  # none for a closed-form ELM
        row["lr"] = float(groups[0]["lr"]) if groups else math.nan
        self.history = [r for r in self.history if r["epoch"] < row["epoch"]] + [row]
        if trainer.is_global_zero:
            write_history(self.history, self.output_dir / "history.csv")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self.history:
            from zoo.plots import plot_learning_curves

            plot_learning_curves(self.history, self.output_dir / "learning_curves.png")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["zoo_config"] = self.config

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))


def write_history(rows: list[dict[str, float]], path: Path) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)  # never leave a half-written history behind


def to_float_dict(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v.item() if isinstance(v, torch.Tensor) else v) for k, v in sorted(metrics.items())}


class TestReport(L.Callback):
    """After testing, writes the task's figures into the run folder (``confusion_matrix.png`` and
    ``predictions.png`` for classification, mask overlays for segmentation, drawn boxes for detection...) and logs
    them to W&B, with masks and boxes as W&B's interactive overlays where the task provides them."""

    def __init__(self, output_dir: str | Path) -> None:
        self.output_dir = Path(output_dir)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        report = pl_module.test_report()  # every rank: metrics such as the confusion matrix sync across processes
        if not trainer.is_global_zero or not report:
            return
        written = pl_module.write_test_figures(report, self.output_dir)
        wandb_loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if wandb_loggers:
            media = pl_module.wandb_images(report, written)
            for logger in wandb_loggers:
                for key, (images, kwargs) in media.items():
                    logger.log_image(key=f"test/{key}", images=images, **kwargs)
                for key, (columns, rows) in pl_module.wandb_tables(report).items():
                    logger.log_table(key=f"test/{key}", columns=columns, data=rows)


class Finetune(BaseFinetuning):
    """Transfer learning modes for a net with ``features`` (the backbone) and ``head``:

    - ``frozen``: the backbone never trains (feature extraction, like tfhub's ``layer_hub`` with trainable=FALSE);
      its batch-norm layers run in inference mode, as Keras does for a frozen layer.
    - ``full``: everything trains from the first step (fine-tuning).
    - ``gradual``: frozen until ``unfreeze_epoch``, then the backbone joins the optimiser at ``backbone_lr_scale``
      times the head's learning rate. Lightning's BaseFinetuning restores that state when a run resumes.
    """

    MODES = ("frozen", "full", "gradual")

    def __init__(self, mode: str = "full", unfreeze_epoch: int = 1, backbone_lr_scale: float = 0.1) -> None:
        super().__init__()
        if mode not in self.MODES:
            raise ZooError(f"model.finetune.mode={mode!r} is not valid; choose one of {', '.join(self.MODES)}")
        if isinstance(unfreeze_epoch, bool) or not isinstance(unfreeze_epoch, int) or unfreeze_epoch < 0:
            raise ZooError(f"model.finetune.unfreeze_epoch={unfreeze_epoch!r} must be an integer >= 0")
        if not backbone_lr_scale > 0:
            raise ZooError(f"model.finetune.backbone_lr_scale={backbone_lr_scale} must be > 0")
        self.mode, self.unfreeze_epoch, self.backbone_lr_scale = mode, unfreeze_epoch, backbone_lr_scale

    @staticmethod
    def backbone(pl_module: L.LightningModule) -> nn.Module | list[nn.Module]:
        return pl_module.net.features

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        if self.mode != "full":
            self.freeze(self.backbone(pl_module), train_bn=False)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: torch.optim.Optimizer) -> None:
        if self.mode == "gradual" and epoch == self.unfreeze_epoch:
            lr = optimizer.param_groups[0]["lr"] * self.backbone_lr_scale
            self.unfreeze_and_add_param_group(self.backbone(pl_module), optimizer, lr=lr, train_bn=True)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        for module in self.flatten_modules(self.backbone(pl_module)):
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.track_running_stats:
                module.eval()  # frozen: use (and keep) the pretrained running statistics


class EarlyStopping(_LightningEarlyStopping):
    """Lightning's early stopping, plus Keras' ``restore_best_weights`` and ``overfitting.png`` (train vs validation
    curves with the best and the stopping epochs marked). ``patience: null`` leaves it off."""

    def __init__(
        self,
        monitor: str = "val/loss",
        patience: int | None = None,
        mode: str = "min",
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
    ) -> None:
        if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 0):
            raise ZooError(f"callbacks.early_stopping.patience={patience!r} must be an integer >= 0 (or null: off)")
        if mode not in ("min", "max"):
            raise ZooError(f"callbacks.early_stopping.mode={mode!r} must be min or max")
        super().__init__(monitor=monitor, patience=patience or 0, mode=mode, min_delta=min_delta)
        self.enabled = patience is not None
        self.restore_best_weights = restore_best_weights
        self.best_epoch = -1
        self._best_state: dict[str, torch.Tensor] | None = None

    def _run_early_stopping_check(self, trainer: L.Trainer) -> None:
        if not self.enabled or trainer.sanity_checking:
            return
        if self.monitor not in trainer.callback_metrics:
            logged = ", ".join(sorted(k for k in trainer.callback_metrics if k.startswith(("train/", "val/"))))
            raise ZooError(
                f"callbacks.early_stopping.monitor={self.monitor!r} is not a logged metric; choose one of {logged}"
            )
        before = float(self.best_score)  # Lightning moves best_score to the metric's device (a GPU) on first use
        super()._run_early_stopping_check(trainer)
        if float(self.best_score) != before:  # improved
            self.best_epoch = trainer.current_epoch
            if self.restore_best_weights:
                module = trainer.lightning_module
                self._best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled or self.best_epoch < 0:
            return
        if self.restore_best_weights and self._best_state is not None:
            pl_module.load_state_dict(self._best_state)  # what test and predict use when no checkpoint is loaded
        history = next((c.history for c in trainer.callbacks if isinstance(c, RunOutputs)), [])
        if trainer.is_global_zero and history:
            from zoo.plots import plot_learning_curves

            last = int(history[-1]["epoch"])
            marks = {f"best {self.monitor}": self.best_epoch, "stopped" if self.stopped_epoch else "last": last}
            path = Path(trainer.default_root_dir) / "overfitting.png"
            plot_learning_curves(history, path, marks=marks, title=f"overfitting: early stopping on {self.monitor}")

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best_epoch = state_dict.get("best_epoch", -1)
