"""What every supervised task shares: net building from the data spec, losses, L1/L2, optimiser, logging.

Hyperparameters are plain dicts and lists, so checkpoints load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class
from torch import nn

from zoo.config import instantiate, settings_of
from zoo.data.spec import DataSpec
from zoo.errors import ZooError
from zoo.fast import fused_kernel_available
from zoo.nets.adapt import ImageInput
from zoo.nets.width_rules import resolve_widths

LOSSES: dict[str, type[nn.Module]] = {
    "mse": nn.MSELoss,
    "mae": nn.L1Loss,
    "huber": nn.HuberLoss,
    "bce": nn.BCEWithLogitsLoss,
    "cross_entropy": nn.CrossEntropyLoss,
}


class SupervisedTask(L.LightningModule):
    """Base of ClassificationTask and RegressionTask; subclasses say which losses fit and how outputs are read."""

    kind = ""
    losses: tuple[str, ...] = ()
    steps_per_execution: int | str = 1  # optimiser steps per Lightning step; run.build_task sets it (zoo.fast)
    _direct = None  # a zoo.fast.StepCounter when the fast path may step the optimiser itself

    def __init__(
        self,
        net: dict[str, Any],
        spec: dict[str, Any],
        loss: str = "auto",
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        l1: float = 0.0,
        l2: float = 0.0,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.spec = DataSpec.from_dict(spec)
        self.loss_name = self.default_loss() if loss == "auto" else loss
        if self.loss_name not in self.losses:
            raise ZooError(
                f"model.loss={loss!r} does not fit {self.kind} (data={self.spec.name}); choose one of "
                f"{', '.join(self.losses)}"
            )
        if l1 < 0 or l2 < 0:
            raise ZooError(f"model.l1={l1} and model.l2={l2} must be >= 0")
        self.loss_fn = self.make_loss(self.loss_name)
        self.net = build_net(net, self.spec, self.num_outputs())
        self.input = build_input(self.net, self.spec)
        self.channels_last = channels_last and self.spec.is_image  # NHWC: faster convolutions on recent GPUs
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.l1, self.l2 = l1, l2
        dtype = torch.uint8 if self.spec.is_image else torch.long if self.spec.is_text else torch.float32
        self.example_input_array = torch.zeros(2, *self.spec.input_shape, dtype=dtype)  # the summary shows shapes
        self._train_sums: dict[str, torch.Tensor] = {}
        # A net solved in closed form (ELM) gathers the training set in one pass, with no optimiser.
        self.closed_form = getattr(self.net, "closed_form", False)
        self.automatic_optimization = not self.closed_form

    # -- what subclasses define ---------------------------------------------------------------------------
    def default_loss(self) -> str:
        raise NotImplementedError

    def num_outputs(self) -> int:
        raise NotImplementedError

    def make_loss(self, name: str) -> nn.Module:
        return LOSSES[name]()

    def data_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def batch_stats(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Extra sums to average over the training epoch (e.g. correct predictions), kept on the device."""
        return {}

    def update_metrics(self, split: str, out: torch.Tensor, y: torch.Tensor) -> None:
        raise NotImplementedError

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def record_test_batch(self, x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        """Keep what the test report needs (see :meth:`test_report`); nothing by default."""

    def test_report(self) -> dict[str, Any]:
        """Figures' data for the run folder after testing; called on every rank (metrics sync there)."""
        return {}

    def write_test_figures(self, report: dict[str, Any], folder: Path) -> dict[str, Path]:
        """Draw :meth:`test_report`'s data into ``folder`` (rank zero only); returns ``{key: png path}``."""
        return {}

    def wandb_tables(self, report: dict[str, Any]) -> dict[str, tuple[list[str], list[list]]]:
        """What goes to W&B as ``test/<key>`` tables: ``{key: (columns, rows)}``; none by default."""
        return {}

    def wandb_images(self, report: dict[str, Any], written: dict[str, Path]) -> dict[str, tuple[list, dict]]:
        """What goes to W&B as ``test/<key>``: images and ``WandbLogger.log_image`` keyword lists (masks, boxes,
        captions); by default the figures as written."""
        return {key: ([str(path)], {}) for key, path in written.items()}

    # -- shared -------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def penalty(self) -> torch.Tensor | None:
        """L1/L2 on weights (tensors with 2+ dims), never on biases or norm parameters, added once per step."""
        if not (self.l1 or self.l2):
            return None
        weights = [p for p in self.net.parameters() if p.ndim > 1]
        total = torch.zeros((), device=weights[0].device)
        if self.l1:
            total = total + self.l1 * sum(w.abs().sum() for w in weights)
        if self.l2:
            total = total + self.l2 * sum(w.pow(2).sum() for w in weights)
        return total

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.is_group(batch):
            return self.training_steps(batch, batch_idx)
        if self.closed_form:
            x, y = batch
            return self.net.accumulate(self.input(x), self.solve_targets(y))
        loss, data_loss = self.step_loss(batch)
        every = self.trainer.log_every_n_steps  # 0: no step-level logging
        if every and (self.global_step + 1) % every == 0:
            self.log("train/loss_step", data_loss, on_step=True, on_epoch=False)
        return loss

    def step_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss to minimise on one mini-batch (the penalty included) and the data loss alone; the epoch's sums
        stay on the device."""
        x, y = batch
        out = self(x)
        loss = self.data_loss(out, y)  # averaged once over the batch
        sums = {"loss": loss.detach() * len(x), "n": len(x), **self.batch_stats(out.detach(), y)}
        for key, value in sums.items():  # summed on the device: no host sync per step
            self._train_sums[key] = self._train_sums.get(key, 0) + value
        penalty = self.penalty()
        return (loss if penalty is None else loss + penalty), loss

    def is_group(self, batch: Any) -> bool:
        """Whether ``batch`` is a group of mini-batches (a list of ``(x, y)`` tensor pairs) for the fast path."""
        k = self.steps_per_execution  # "auto" until setup("fit") resolves it
        return isinstance(batch, list) and isinstance(k, int) and k > 1

    def on_train_epoch_start(self) -> None:
        self._train_sums = {}
        if self.steps_per_execution > 1:
            self.step_epoch_schedulers(plateau=True)

    # -- the fast path: several optimiser steps per Lightning step (zoo.fast) --------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit":
            from zoo.fast import StepCounter, resolve_steps_per_execution

            self.steps_per_execution = resolve_steps_per_execution(self.steps_per_execution, self.trainer, self)
            if self.steps_per_execution > 1:
                self.automatic_optimization = False
                self._direct = StepCounter.for_run(self.trainer, self)

    def training_steps(self, batches: list[tuple[torch.Tensor, torch.Tensor]], batch_idx: int) -> torch.Tensor:
        """One optimiser step per mini-batch, as automatic optimisation runs them (forward, zero_grad, backward,
        step). With plain fp32 on one device and no hook around backward or the step (``StepCounter.for_run``) the
        steps go straight to the optimiser, counted in Lightning's progress; otherwise through Lightning's optimiser
        wrapper so precision plugins and AMP apply."""
        direct = self._direct
        optimizer = self.optimizers(use_pl_optimizer=direct is None)
        every, step, logged = self.trainer.log_every_n_steps, self.global_step, {}
        for batch in batches:
            loss, data_loss = self.step_loss(batch)
            optimizer.zero_grad()
            if direct is None:
                self.manual_backward(loss)
                optimizer.step()
            else:
                loss.backward()
                direct.step(optimizer)
            step += 1
            if every and step % every == 0:
                logged[step - 1] = data_loss.detach()  # at the step index one step at a time logs it
        if logged:
            # Lightning writes a logged value when a Lightning step ends on a multiple of log_every_n_steps, which a
            # group seldom does: the group writes its own (one host sync per group).
            for at, value in zip(logged, torch.stack(list(logged.values())).tolist(), strict=True):
                for logger in self.loggers:
                    logger.log_metrics({"train/loss_step": value}, step=at)
        # The loggers' step axis (W&B's trainer/global_step) counts optimiser steps, as one step at a time does:
        # Lightning adds one per Lightning step after this, the group's others are added here.
        self.trainer.fit_loop.epoch_loop._batches_that_stepped += len(batches) - 1
        if batch_idx + 1 == self.trainer.num_training_batches:
            self.step_epoch_schedulers(plateau=False)
        return loss.detach()

    def step_epoch_schedulers(self, plateau: bool) -> None:
        """What Lightning does for epoch schedulers in automatic optimisation only: the others step after the epoch's
        last training step, ``ReduceLROnPlateau`` after the epoch-end hooks (here: as the next epoch starts, once the
        checkpoint has been saved) and not right after a resume, when no metric is known yet."""
        for config in self.trainer.lr_scheduler_configs:
            # Lightning keeps neither the monitor nor the plateau flag for manual optimisation: zoo monitors val/loss
            on_plateau = isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
            epoch = self.current_epoch if plateau else self.current_epoch + 1
            if config.interval != "epoch" or on_plateau != plateau or epoch == 0 or epoch % config.frequency:
                continue
            if not plateau:
                self.lr_scheduler_step(config.scheduler, None)
            elif "val/loss" in self.trainer.callback_metrics:
                self.lr_scheduler_step(config.scheduler, self.trainer.callback_metrics["val/loss"])

    def on_train_epoch_end(self) -> None:
        if self.closed_form:  # solved once from the whole pass: later epochs would repeat it
            self.net.solve()
            self.trainer.should_stop = True
        if not self._train_sums:
            return
        n = self._train_sums.pop("n")
        for key, total in self._train_sums.items():
            self.log(f"train/{key}", total / n, prog_bar=key == "loss", sync_dist=True)
        penalty = self.penalty()
        if penalty is not None:
            self.log("train/penalty", penalty.detach())

    def _eval_step(self, split: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        x, y = batch
        out = self(x)
        self.log(f"{split}/loss", self.data_loss(out, y), batch_size=len(x), prog_bar=True, sync_dist=True)
        self.update_metrics(split, out, y)
        if split == "test":
            self.record_test_batch(x, out, y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step("test", batch)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self.predict(self(x))

    def on_test_epoch_end(self) -> None:
        """``test/sparsity``: the share of weights (tensors with 2+ dims) below 1e-3, what L1 drives up."""
        weights = [p.detach() for p in self.net.parameters() if p.ndim > 1]
        if weights:  # counted tensor by tensor: no copy of a large net's weights
            small = sum(int((w.abs() < 1e-3).sum()) for w in weights)
            self.log("test/sparsity", small / sum(w.numel() for w in weights))

    def solve_targets(self, y: torch.Tensor) -> torch.Tensor:
        """What a closed-form net fits for labels ``y`` (one-hot classes, standardised targets...)."""
        raise NotImplementedError

    def configure_optimizers(self) -> Any:
        if self.closed_form:
            return None
        cfg = dict(self.hparams.optimizer or {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3})
        decay = cfg.get("weight_decay", 0.0)
        trainable = [p for p in self.parameters() if p.requires_grad]  # a frozen backbone stays out (Finetune)
        params = [
            {"params": [p for p in trainable if p.ndim > 1], "weight_decay": decay},
            {"params": [p for p in trainable if p.ndim <= 1], "weight_decay": 0.0},  # biases, norms
        ]
        with settings_of("optimizer"):
            if "fused" not in cfg and fused_kernel_available(get_class(cfg["_target_"]), trainable):
                cfg["fused"] = True  # torch's fused kernel, the same update; +optimizer.fused=false turns it off
            optimizer = instantiate(cfg)(params)
        if not self.hparams.scheduler:
            return optimizer
        with settings_of("scheduler"):
            scheduler = check_schedule(instantiate(dict(self.hparams.scheduler))(optimizer))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss"}}

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets _current_fx_name around every hook, dozens of times a step; nn.Module.__setattr__'s
        # parameter/buffer/module checks make that a measurable share of a small model's step. It is a plain str.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning stores hparams as its AttributeDict; a plain dict keeps the file loadable with weights_only=True.
        checkpoint["hyper_parameters"] = dict(checkpoint.get("hyper_parameters", {}))


def check_schedule(scheduler: Any) -> Any:
    """Refuse epoch counts torch's schedulers only trip over at their first step (StepLR divides by step_size)."""
    for name in ("step_size", "T_max"):
        value = getattr(scheduler, name, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            hint = " (scheduler=cosine reads trainer.max_epochs: give it, or scheduler.T_max)" * (name == "T_max")
            raise ZooError(f"scheduler.{name}={value} is not valid; give a positive number of epochs{hint}")
    return scheduler


def build_net(net: dict[str, Any], spec: DataSpec, out_features: int) -> nn.Module:
    """Instantiate a net config, sized from the data spec: text nets take ``vocab_size`` (and ``pad_id``), image nets
    ``input_shape`` (``[C, H, W]``), the others ``in_features`` (images flattened); width rules in ``hidden`` become
    integers."""
    cfg = dict(net)
    alpha = cfg.pop("width_alpha", 2.0)
    if "hidden" in cfg:
        hidden = cfg["hidden"] if isinstance(cfg["hidden"], list | tuple) else [cfg["hidden"]]  # hidden=64: one layer
        cfg["hidden"] = resolve_widths(list(hidden), spec.num_features, out_features, spec.num_train, alpha)
    takes = inspect.signature(get_class(cfg["_target_"])).parameters
    if "vocab_size" in takes:  # text nets: token ids in, the data's vocabulary and padding id
        text = {"vocab_size": spec.vocab_size, "pad_id": spec.pad_id, "max_length": spec.input_shape[0]}
        size = {k: v for k, v in text.items() if k in takes}
    elif "input_shape" in takes:
        size = {"input_shape": list(spec.input_shape)}
    else:
        size = {"in_features": spec.num_features}
    with settings_of("model.net"):
        return instantiate(cfg, **size, out_features=out_features, _convert_="all")


def build_input(net: nn.Module, spec: DataSpec) -> nn.Module:
    """Images: raw pixels -> the size and normalisation the net asks for (see ``zoo.nets.adapt``); tables: as is."""
    if not spec.is_image:
        return nn.Identity()
    channels = spec.input_shape[0]
    mean, std = getattr(net, "input_mean", spec.pixel_mean), getattr(net, "input_std", spec.pixel_std)
    if len(mean) != channels and len(mean) != spec.num_features:  # an RGB backbone's statistics for grey data
        mean, std = [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels
    size = getattr(net, "input_size", None)
    return ImageInput(channels, tuple(spec.input_shape[1:]), mean, std, size, getattr(net, "input_fit", "auto"))
