"""What every supervised task shares: the net built from the data's spec, losses, L1/L2, optimiser, logging.

A task is a LightningModule with one ordinary training step; the fast path's grouped steps come from
:class:`zoo.tasks.grouped.GroupedSteps`. Hyperparameters are plain dicts and lists, so checkpoints load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar

import torch
from hydra.utils import get_class
from torch import nn

from zoo.config import instantiate, settings_of
from zoo.errors import ZooError
from zoo.nets.adapt import ImageInput
from zoo.protocols import FineTunable, NHWCOnCPU, PixelInput, RestoresWithoutSource, WantsPixels
from zoo.report import Figure, Table
from zoo.spec import DataSpec, spec_from_dict
from zoo.tasks.graphed import plain_learning_rates
from zoo.tasks.grouped import GroupedSteps
from zoo.tasks.linear import BY_HAND, dense_gradients, dense_layer, output_gradient

LOSSES: dict[str, type[nn.Module]] = {
    "mse": nn.MSELoss,
    "mae": nn.L1Loss,
    "huber": nn.HuberLoss,
    "bce": nn.BCEWithLogitsLoss,
    "cross_entropy": nn.CrossEntropyLoss,
}


class SupervisedTask(GroupedSteps):
    """Base of every task; subclasses say which losses fit, how outputs are read and judged, and what the test
    report shows. ``OPTIONS`` names the model config keys a task takes besides the shared ones (``zoo.run``)."""

    kind = ""
    losses: tuple[str, ...] = ()
    OPTIONS: ClassVar[tuple[str, ...]] = ("gradients",)
    GRADIENTS = ("autograd", "manual", "check")  # model.gradients: who computes ∂L/∂w (check: both, compared)

    def __init__(
        self,
        net: dict[str, Any],
        spec: dict[str, Any],
        loss: str = "auto",
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        l1: float = 0.0,
        l2: float = 0.0,
        channels_last: bool | str = False,
        sparsity: bool | None = None,
        gradients: str = "autograd",
        backbone_lr_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.spec = spec_from_dict(spec)
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
        if isinstance(self.net, RestoresWithoutSource):  # checkpoints rebuild it without its weights' source
            self.hparams["net"] = self.net.restore_settings(dict(net))
        self.input = build_input(self.net, self.spec)
        self.channels_last = False  # NHWC memory: faster convolutions on recent GPUs, and on CPUs for NHWCOnCPU nets
        if channels_last is True:
            self.use_channels_last()
        self.l1, self.l2 = l1, l2
        self.sparsity = bool(l1 or l2) if sparsity is None else bool(sparsity)
        dtype = torch.uint8 if self.spec.is_image else torch.long if self.spec.is_text else torch.float32
        self.example_input_array = torch.zeros(2, *self.spec.input_shape, dtype=dtype)  # the summary shows shapes
        self._train_sums: dict[str, torch.Tensor] = {}
        self.gradients = gradients
        self.dense = self.check_gradients(gradients)
        self.automatic_optimization = self.dense is None  # by hand: the step sets the gradients itself
        self._grad_diff: torch.Tensor | None = None  # gradients=check: the epoch's largest |manual - autograd|
        self._dense_input: torch.Tensor | None = None

    def check_gradients(self, gradients: str) -> nn.Linear | None:
        """``model.gradients``: ``autograd`` (torch differentiates the loss), ``manual`` (the step computes ∂L/∂W and
        ∂L/∂b with the formulas of ``zoo.tasks.linear``) or ``check`` (manual, and compared with autograd at every
        step: ``train/grad_diff``). Returns the dense layer whose gradients are written by hand."""
        if gradients not in self.GRADIENTS:
            raise ZooError(f"model.gradients={gradients!r} is not valid; use one of {', '.join(self.GRADIENTS)}")
        if gradients == "autograd":
            return None
        layer = dense_layer(self.net)
        if layer is None:
            raise ZooError(
                f"model.gradients={gradients} derives the gradients of one dense layer; {type(self.net).__name__} has "
                "other layers: use model=linear or model=logistic, or model.gradients=autograd"
            )
        if self.loss_name not in BY_HAND:
            raise ZooError(
                f"model.gradients={gradients} derives {', '.join(BY_HAND)}; model.loss={self.loss_name} needs "
                "model.gradients=autograd"
            )
        layer.register_forward_pre_hook(self._keep_dense_input)
        return layer

    def _keep_dense_input(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self._dense_input = args[0]

    # -- what subclasses define ---------------------------------------------------------------------------
    def default_loss(self) -> str:
        raise NotImplementedError

    def num_outputs(self) -> int:
        raise NotImplementedError

    def make_loss(self, name: str) -> nn.Module:
        return LOSSES[name]()

    def data_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss_target(self, y: torch.Tensor) -> torch.Tensor:
        """What the loss compares the net's output with (a regression scales it); the manual gradients read it."""
        return y

    def batch_stats(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Extra sums to average over the training epoch (e.g. correct predictions), kept on the device."""
        return {}

    def update_metrics(self, split: str, out: torch.Tensor, y: torch.Tensor) -> None:
        raise NotImplementedError

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def record_test_batch(self, x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        """Keep what the test report needs (see :meth:`test_report`); nothing by default."""

    def test_report(self, datamodule: Any) -> dict[str, Any]:
        """What the test showed, as data, after testing; called on every rank (metrics sync there)."""
        return {}

    def test_outputs(self, report: dict[str, Any]) -> dict[str, Figure | Table]:
        """:meth:`test_report`'s figures and tables for the run folder (``zoo.outputs``: ``<name>.png``,
        ``<name>.csv``; tables also go to W&B as ``test/<name>``)."""
        return {}

    def wandb_images(self, report: dict[str, Any], written: dict[str, Path]) -> dict[str, tuple[list, dict]]:
        """What goes to W&B as ``test/<key>``: images and ``WandbLogger.log_image`` keyword lists (masks, boxes,
        captions); by default the figures as written."""
        return {key: ([str(path)], {}) for key, path in written.items()}

    # -- shared -------------------------------------------------------------------------------------------
    def use_channels_last(self) -> None:
        """The net's weights, and from now on its inputs, in NHWC memory (image nets only)."""
        self.channels_last = self.spec.is_image
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)

    def setup(self, stage: str) -> None:
        # channels_last=auto: NHWC where the run is on the CPU and the net is faster there (NHWCOnCPU); a GPU keeps
        # NCHW, where NHWC pays with bf16 (channels_last=true).
        net = self.net
        if (
            self.hparams.get("channels_last") == "auto"
            and isinstance(net, NHWCOnCPU)
            and net.channels_last_on_cpu
            and self.trainer.strategy.root_device.type == "cpu"
        ):
            self.use_channels_last()
        super().setup(stage)

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
        if self.dense is not None:
            return self.step_by_hand(batch, batch_idx)
        loss, data_loss = self.step_loss(batch)
        self.log_step("train/loss_step", data_loss)
        return loss

    def step_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss to minimise on one mini-batch (the penalty included) and the data loss alone; the epoch's sums
        stay on the device."""
        x, y = batch
        return self.batch_loss(self(x), y)

    def step_by_hand(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One gradient-descent step with ∂L/∂W and ∂L/∂b written out (``zoo.tasks.linear``), no autograd;
        ``gradients=check`` also asks autograd and keeps the largest difference."""
        x, y = batch
        weight, bias = self.dense.weight, self.dense.bias
        with torch.set_grad_enabled(self.gradients == "check"):
            out = self(x)
            loss, data_loss = self.batch_loss(out, y)
        inputs = self._dense_input.detach()
        grad_out = output_gradient(self.loss_name, out.detach(), self.loss_target(y))
        grad_weight, grad_bias = dense_gradients(inputs, grad_out, weight.detach(), self.l1, self.l2)
        if self.gradients == "check":
            auto_weight, auto_bias = torch.autograd.grad(loss, [weight, bias])
            diff = torch.maximum((grad_weight - auto_weight).abs().max(), (grad_bias - auto_bias).abs().max())
            self._grad_diff = diff if self._grad_diff is None else torch.maximum(self._grad_diff, diff)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        weight.grad, bias.grad = grad_weight, grad_bias
        optimizer.step()
        self.log_step("train/loss_step", data_loss)
        if batch_idx + 1 == self.trainer.num_training_batches:
            self.step_epoch_schedulers(plateau=False)  # what automatic optimisation would do
        return loss.detach()

    def batch_loss(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`step_loss` on the net's output."""
        loss = self.data_loss(out, y)  # averaged once over the batch
        sums = {"loss": loss.detach() * len(out), "n": len(out), **self.batch_stats(out.detach(), y)}
        self.add_sums(sums)  # summed on the device: no host sync per step
        penalty = self.penalty()
        return (loss if penalty is None else loss + penalty), loss

    def one_step_reason(self) -> str | None:
        if self.dense is not None:
            return f"model.gradients={self.gradients} (each step writes its gradients by hand)"
        return super().one_step_reason()

    def on_train_epoch_start(self) -> None:
        self._train_sums, self._grad_diff = {}, None
        super().on_train_epoch_start()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx + 1 == self.trainer.num_training_batches:
            self.log_epoch()

    def on_train_epoch_end(self) -> None:
        self.log_epoch()  # an epoch that ended before its last batch (trainer.max_steps)

    def log_epoch(self) -> None:
        """The epoch's training averages (``train/loss``, ``train/acc``...), logged with its last batch: so every
        callback sees them when the epoch ends (the run's history among them), not only those Lightning calls after
        the task's own epoch-end hook."""
        if not self._train_sums:
            return
        sums, self._train_sums = self._train_sums, {}
        n = sums.pop("n")
        for key, total in sums.items():
            self.log(f"train/{key}", total / n, on_step=False, on_epoch=True, prog_bar=key == "loss", sync_dist=True,
                     batch_size=1)  # fmt: skip
        penalty = self.penalty()
        if penalty is not None:
            self.log("train/penalty", penalty.detach(), on_step=False, on_epoch=True, batch_size=1)
        if self._grad_diff is not None:
            self.log("train/grad_diff", self._grad_diff, on_step=False, on_epoch=True, reduce_fx="max", batch_size=1)

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
        """``test/sparsity`` (``model.sparsity``; by default where model.l1 or model.l2 penalise the weights): the share
        of weights (tensors with 2+ dims) below 1e-3, what L1 drives up."""
        if not self.sparsity:
            return
        weights = [p.detach() for p in self.net.parameters() if p.ndim > 1]
        if weights:  # counted tensor by tensor: no copy of a large net's weights
            small = sum(int((w.abs() < 1e-3).sum()) for w in weights)
            self.log("test/sparsity", small / sum(w.numel() for w in weights))

    def configure_optimizers(self) -> Any:
        cfg = dict(self.hparams.optimizer or {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3})
        decay = cfg.get("weight_decay", 0.0)
        trainable = [p for p in self.parameters() if p.requires_grad]  # a frozen backbone stays out (Finetune)
        params = []
        for part, scale in self.learning_rate_parts(trainable, cfg.get("lr")):  # the head's first: optimizer.lr
            rate = {"lr": cfg["lr"] * scale} if scale != 1 else {}
            params += [
                {"params": [p for p in part if p.ndim > 1], "weight_decay": decay, **rate},
                {"params": [p for p in part if p.ndim <= 1], "weight_decay": 0.0, **rate},  # biases, norms
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

    def learning_rate_parts(self, trainable: list[nn.Parameter], lr: Any) -> list[tuple[list[nn.Parameter], float]]:
        """The trainable weights in parts, each with its share of ``optimizer.lr``: a pretrained backbone fine-tuned
        whole from the first step (``model.finetune.mode=full``) learns at ``model.finetune.backbone_lr_scale`` of
        the head's rate, the rest at the full rate."""
        scale = self.hparams.get("backbone_lr_scale", 1.0)
        if scale == 1 or not isinstance(self.net, FineTunable) or not isinstance(lr, (int, float)):
            return [(trainable, 1.0)]
        features = self.net.features
        modules = features if isinstance(features, list) else [features]
        backbone = {id(p) for module in modules for p in module.parameters()}
        head = [p for p in trainable if id(p) not in backbone]
        return [(head, 1.0), ([p for p in trainable if id(p) in backbone], scale)]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning stores hparams as its AttributeDict; a plain dict keeps the file loadable with weights_only=True.
        checkpoint["hyper_parameters"] = dict(checkpoint.get("hyper_parameters", {}))
        plain_learning_rates(checkpoint)


def check_schedule(scheduler: Any) -> Any:
    """Refuse epoch counts torch's schedulers only trip over at their first step (StepLR divides by step_size)."""
    for name in ("step_size", "T_max"):
        value = getattr(scheduler, name, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            hint = " (scheduler=cosine reads trainer.max_epochs: give it, or scheduler.T_max)" * (name == "T_max")
            raise ZooError(f"scheduler.{name}={value} is not valid; give a positive number of epochs{hint}")
    return scheduler


def build_net(net: dict[str, Any], spec: DataSpec, out_features: int) -> nn.Module:
    """The model config's ``net`` block built for this data: ``_target_``'s ``from_spec(spec, out_features,
    **settings)`` (``zoo.protocols.Net``), which sizes the net from the spec."""
    settings = dict(net)
    target = settings.pop("_target_")
    with settings_of("model.net"):
        cls = get_class(target)
        net = cls.from_spec(spec, out_features, **settings) if hasattr(cls, "from_spec") else None
    if not isinstance(net, nn.Module):
        raise ZooError(
            f"model.net._target_={target} is not a net zoo can build: a torch.nn.Module with a classmethod "
            "from_spec(spec, out_features, **settings) (see CONTRIBUTING.md)"
        )
    return net


def build_input(net: nn.Module, spec: DataSpec) -> nn.Module:
    """Images: raw pixels -> the size and normalisation the net asks for (``zoo.protocols.WantsPixels``; see
    ``zoo.nets.adapt``); tables and text: as they are."""
    if not spec.is_image:
        return nn.Identity()
    wants = net.pixel_input if isinstance(net, WantsPixels) else PixelInput()
    channels = spec.input_shape[0]
    mean, std = wants.mean or spec.pixel_mean, wants.std or spec.pixel_std
    if len(mean) != channels and len(mean) != spec.num_features:  # an RGB backbone's statistics for grey data
        mean, std = [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels
    return ImageInput(channels, tuple(spec.input_shape[1:]), mean, std, wants.size, wants.fit)


FUSED_DEVICES = ("cpu", "cuda")  # where torch >= 2.4 has fused Adam, AdamW and SGD kernels


def fused_kernel_available(optimizer: type, params: list[torch.Tensor]) -> bool:
    """Whether ``optimizer`` (a class) takes ``fused=True`` for ``params``: torch's fused kernel runs the same update
    in one kernel per parameter group instead of several per tensor, the larger share of a small net's step (on a GPU,
    2 launches a step instead of ~16). Torch's docs call it the fastest implementation and leave it off by default
    only to give it time to bed in."""
    if "fused" not in inspect.signature(optimizer).parameters or not params:
        return False
    if optimizer is torch.optim.SGD and any(p.device.type != "cuda" for p in params):
        return False  # SGD's fused kernel is CUDA-only in some supported torch versions
    return all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in params)
