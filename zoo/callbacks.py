"""Callbacks: a run's outputs (history, learning curves, test figures, the config inside checkpoints), written
through the run's :class:`zoo.outputs.RunFolder`, early stopping, and transfer-learning modes (frozen backbone,
fine-tuning, gradual unfreezing)."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BaseFinetuning
from lightning.pytorch.callbacks import EarlyStopping as _LightningEarlyStopping
from lightning.pytorch.callbacks import ModelCheckpoint as _LightningModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from torch import nn

from zoo.errors import ZooError
from zoo.internals import EpochLearningRate, LastCheckpointLinked
from zoo.outputs import RunFolder
from zoo.plots import plot_learning_curves
from zoo.protocols import FineTunable
from zoo.report import Figure, Table


class RunOutputs(EpochLearningRate, L.Callback):
    """Writes ``history.csv`` after every epoch (what Keras' ``fit`` returns), and at the end
    ``learning_curves.png`` and, when early stopping ran, ``overfitting.png``.

    The history and the composed run config travel inside every checkpoint, so a resumed run continues the same
    history and ``scripts/eval.py`` needs nothing but the checkpoint.
    """

    def __init__(self, folder: RunFolder, config: dict[str, Any]) -> None:
        self.folder = folder
        self.config = config
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        row: dict[str, float] = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step}  # from 1
        for key, value in sorted(trainer.callback_metrics.items()):
            if key.startswith(("train/", "val/")) and not key.endswith("_step"):
                row[key] = float(value)
        row["lr"] = math.nan if self.epoch_lr is None else self.epoch_lr  # none for a closed-form ELM
        self.history = [r for r in self.history if r["epoch"] < row["epoch"]] + [row]
        if trainer.is_global_zero:
            self.folder.write_history(self.history)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not self.history:
            return
        self.folder.write_figure("learning_curves", Figure(plot_learning_curves, (self.history,)))
        for stopper in trainer.callbacks:
            if isinstance(stopper, EarlyStopping) and stopper.enabled and stopper.best_epoch >= 0:
                self.folder.write_figure("overfitting", stopper.overfitting(self.history))

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["zoo_config"] = self.config

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))


def to_float_dict(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v.item() if isinstance(v, torch.Tensor) else v) for k, v in sorted(metrics.items())}


class ModelCheckpoint(LastCheckpointLinked, _LightningModelCheckpoint):
    """Lightning's checkpointing, with epochs in file names counted from 1, as everywhere else a run shows them
    (``best-epoch017.ckpt``: the 17th epoch), and ``last.ckpt`` a hard link to the checkpoint written at the same
    step, not a second copy of it (:class:`zoo.internals.LastCheckpointLinked`)."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.fast_dev_run:  # Lightning writes last.ckpt here even in a fast_dev_run, which saves nothing
            super().on_train_end(trainer, pl_module)

    def format_checkpoint_name(self, metrics: dict[str, Any], *args: Any, **kwargs: Any) -> str:
        if "epoch" in metrics:
            metrics = {**metrics, "epoch": metrics["epoch"] + 1}
        return super().format_checkpoint_name(metrics, *args, **kwargs)


class TestReport(L.Callback):
    """After testing, writes the task's figures into the run folder (``confusion_matrix.png`` and
    ``predictions.png`` for classification, mask overlays for segmentation, drawn boxes for detection...) and logs
    them to W&B, with masks and boxes as W&B's interactive overlays where the task provides them."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        report = pl_module.test_report(trainer.datamodule)  # every rank: metrics such as a confusion matrix sync
        if not trainer.is_global_zero or not report:
            return
        outputs = pl_module.test_outputs(report)
        written = self.folder.write_outputs(outputs)
        wandb_loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if wandb_loggers:
            media = pl_module.wandb_images(report, written)
            tables = {key: table for key, table in outputs.items() if isinstance(table, Table)}
            for logger in wandb_loggers:
                for key, (images, kwargs) in media.items():
                    logger.log_image(key=f"test/{key}", images=images, **kwargs)
                for key, table in tables.items():
                    logger.log_table(key=f"test/{key}", columns=table.columns, data=table.rows)


def random_backbone(model: Any) -> bool:
    """Whether the model config's backbone starts from random weights: it can be pretrained (``pretrained``) and
    neither ``pretrained`` nor ``weights`` is given. A model without the choice (a pretrained text encoder) is
    always pretrained."""
    return "pretrained" in model and not model.get("pretrained") and not model.get("weights")


class Finetune(BaseFinetuning):
    """Transfer learning modes for a net with ``features`` (the backbone) and ``head`` (``zoo.protocols.FineTunable``):

    - ``frozen``: the backbone never trains (feature extraction, like tfhub's ``layer_hub`` with trainable=FALSE);
      its batch-norm layers run in inference mode, as Keras does for a frozen layer.
    - ``full``: everything trains from the first step (fine-tuning); a pretrained backbone at ``backbone_lr_scale``
      times the head's learning rate (``SupervisedTask.learning_rate_parts``), one trained from scratch at the
      head's.
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

    @classmethod
    def for_model(cls, model: Any) -> Finetune:
        """The model config's ``finetune`` block, refused where it would freeze a backbone that was never trained:
        its random features would be all the new head sees."""
        finetune = dict(model["finetune"])
        if finetune.get("mode") == "frozen" and random_backbone(model):
            raise ZooError(
                "model.finetune.mode=frozen would freeze a random backbone (model.pretrained=false, model.weights="
                "null); give model.weights=PATH (a weights file or a run's pretrained/ folder) or "
                "model.pretrained=true, or train it all with model.finetune.mode=full"
            )
        return cls(**finetune)

    @classmethod
    def full_backbone_lr_scale(cls, model: Any) -> float:
        """The backbone's share of the learning rate from the first step: ``backbone_lr_scale`` where a pretrained
        backbone is fine-tuned whole (``full``), 1 where it was never trained (it learns as the head does) or where
        it is frozen at the start (``frozen``, ``gradual``: it joins the optimiser later, if at all)."""
        finetune = cls.for_model(model)
        return finetune.backbone_lr_scale if finetune.mode == "full" and not random_backbone(model) else 1.0

    @staticmethod
    def backbone(pl_module: L.LightningModule) -> nn.Module | list[nn.Module]:
        net = pl_module.net
        if not isinstance(net, FineTunable):
            raise ZooError(f"model.finetune: {type(net).__name__} has no backbone (features) and head to fine-tune")
        return net.features

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

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._checked(trainer, lambda: super(EarlyStopping, self).on_train_epoch_end(trainer, pl_module))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._checked(trainer, lambda: super(EarlyStopping, self).on_validation_end(trainer, pl_module))

    def _checked(self, trainer: L.Trainer, check: Any) -> None:
        """Lightning's check (it decides whether this hook checks), noting the epoch and weights when the monitored
        metric improved, and refusing a monitor that is not logged in one line."""
        if not self.enabled:
            return
        before = float(self.best_score)  # Lightning moves best_score to the metric's device (a GPU) on first use
        try:
            check()
        except RuntimeError as err:
            if self.monitor in trainer.callback_metrics:
                raise
            logged = ", ".join(sorted(k for k in trainer.callback_metrics if k.startswith(("train/", "val/"))))
            raise ZooError(
                f"callbacks.early_stopping.monitor={self.monitor!r} is not a logged metric; choose one of {logged}"
            ) from err
        if float(self.best_score) != before:  # improved
            self.best_epoch = trainer.current_epoch + 1  # counted from 1, as in history.csv
            if self.restore_best_weights:
                module = trainer.lightning_module
                self._best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled and self.restore_best_weights and self._best_state is not None:
            pl_module.load_state_dict(self._best_state)  # what test and predict use when no checkpoint is loaded

    def overfitting(self, history: list[dict[str, float]]) -> Figure:
        """The learning curves with the best epoch and the stopping (or last) epoch marked."""
        last = int(history[-1]["epoch"])
        marks = {f"best {self.monitor}": self.best_epoch, "stopped" if self.stopped_epoch else "last": last}
        title = f"overfitting: early stopping on {self.monitor}"
        return Figure(plot_learning_curves, (history,), {"marks": marks, "title": title})

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best_epoch = state_dict.get("best_epoch", -1)
