"""The fast path for small models: several optimiser steps per Lightning step, data kept on the GPU when it fits.

On a small net, Lightning's per-step machinery (hooks, closures, progress and logging bookkeeping, ~0.5-2 ms) costs
as much as the step itself. ``steps_per_execution=K`` (Keras' ``model.compile`` option of that name) has the
in-memory batch iterator hand the task K mini-batches at once; the task then runs K ordinary optimiser steps with
manual optimisation. With plain fp32 on one device and nothing hooked around backward or the step, those steps call
the optimiser directly (:class:`StepCounter` keeps Lightning's step count); otherwise they go through
``manual_backward`` and Lightning's optimiser wrapper, so precision plugins, AMP and the hooks still apply. Results
are those of K=1 for the same seed: the same mini-batches in the same order, one optimiser step each,
``global_step`` counting optimiser steps. Where that cannot hold, the run falls back to K=1 and says why.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from typing import Any

import torch

from zoo.errors import ZooError

log = logging.getLogger(__name__)

AUTO_STEPS = 64  # Lightning's ~2 ms per Lightning step over 64 optimiser steps: a few % of a 0.3 ms step
DEVICE_SHARE = 0.5  # data kept on the GPU only while it takes at most this share of the free memory


def check_steps_per_execution(value: Any) -> int | str:
    """``steps_per_execution``: ``auto`` or a positive integer; anything else is a user mistake."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ZooError(f"steps_per_execution={value!r} is not valid; use a positive integer (1 turns it off) or auto")


def why_one_step(trainer: Any, task: Any) -> str | None:
    """Why this run must keep one optimiser step per Lightning step (automatic optimisation), or None."""
    from zoo.data.memory import InMemoryDataModule
    from zoo.tasks.base import SupervisedTask

    if trainer.world_size > 1:
        return "several devices (DDP)"
    if trainer.gradient_clip_val:
        return "trainer.gradient_clip_val (Lightning clips in automatic optimisation only)"
    if trainer.accumulate_grad_batches != 1:
        return "trainer.accumulate_grad_batches"
    if trainer.fast_dev_run or trainer.overfit_batches or trainer.limit_train_batches != 1.0:
        return "a debug setting that counts batches (fast_dev_run, overfit_batches, limit_train_batches)"
    if trainer.max_steps != -1 or trainer.val_check_interval != 1.0:
        return "trainer.max_steps or val_check_interval (they count Lightning steps)"
    if getattr(task.net, "closed_form", False):
        return "a net solved in closed form"
    if type(task).training_step is not SupervisedTask.training_step:
        return f"{type(task).__name__} has its own training step"
    if not isinstance(trainer.datamodule, InMemoryDataModule) or trainer.datamodule.streams:
        return "the data is not batched in memory"
    return None


def resolve_steps_per_execution(requested: int | str, trainer: Any, task: Any) -> int:
    """K for this run: ``auto`` -> ``AUTO_STEPS`` where the fast path holds, else 1; an explicit K > 1 that cannot
    hold falls back to 1 with a warning naming the reason."""
    if requested == 1:
        return 1
    reason = why_one_step(trainer, task)
    if reason is None:
        # zoo's task steps the schedulers itself in this mode (SupervisedTask.step_epoch_schedulers)
        warnings.filterwarnings("ignore", message=r".*call `lr_scheduler.step\(\)` manually.*")
        return AUTO_STEPS if requested == "auto" else int(requested)
    if requested != "auto":
        log.warning("steps_per_execution=%s falls back to 1: %s", requested, reason)
    return 1


def fits_on_device(nbytes: int, device: torch.device, free_bytes: int | None) -> bool:
    """Whether tensors of ``nbytes`` should move to ``device`` once, for good: a GPU with room to spare."""
    return device.type == "cuda" and free_bytes is not None and nbytes <= DEVICE_SHARE * free_bytes


def keep_on_device(
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]], device: torch.device
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The splits moved to ``device`` when they fit there (then no batch crosses the bus again), else as they are."""
    tensors = [t for pair in splits.values() for t in pair if isinstance(t, torch.Tensor)]
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    if not fits_on_device(nbytes, device, free):
        return splits
    log.info("keeping the data on %s (%.1f MB)", device, nbytes / 1e6)
    return {name: tuple(_to(t, device) for t in pair) for name, pair in splits.items()}


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    return value


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A CPU tensor on ``device``; to a GPU through pinned memory, queued behind the work there: a copy from pageable
    memory waits for all of it first (a stall). The caching host allocator keeps the pinned copy until it is done."""
    device = torch.device(device)
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


FUSED_DEVICES = ("cpu", "cuda")  # where torch >= 2.4 has fused Adam, AdamW and SGD kernels


def fused_kernel_available(optimizer: type, params: list[torch.Tensor]) -> bool:
    """Whether ``optimizer`` (a class) takes ``fused=True`` for ``params``: torch's fused kernel runs the same update
    in one kernel per parameter group instead of several per tensor, the larger share of a small net's step (an
    MLP epoch 12-18% faster on a 2-core CPU; on a GPU, 2 launches a step instead of ~16). Torch's docs call it the
    fastest implementation and leave it off by default only to give it time to bed in."""
    if "fused" not in inspect.signature(optimizer).parameters or not params:
        return False
    if optimizer is torch.optim.SGD and any(p.device.type != "cuda" for p in params):
        return False  # SGD's fused kernel is CUDA-only in some supported torch versions
    return all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in params)


# Where Lightning calls user code around a manual backward and optimiser step (Precision.pre_backward, backward,
# post_backward, _after_closure); when nothing overrides them, skipping the wrapper changes nothing but the time.
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


class StepCounter:
    """Optimiser steps taken outside Lightning's ``LightningOptimizer`` wrapper, still counted where Lightning counts
    them (the manual-optimisation step progress, hence ``global_step``, checkpoints and resume).

    The wrapper costs ~0.5 ms a step (a profiler span, the precision plugin's closure and the calls of every hook
    above on every callback), as much as a small net's whole step; ``for_run`` says when it may be skipped."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress

    @classmethod
    def for_run(cls, trainer: Any, task: Any) -> StepCounter | None:
        """A counter when the wrapper would add nothing to this run: plain fp32 precision, one device, no profiler,
        and neither the task nor any callback overriding a hook the wrapper calls; else None (the wrapper runs)."""
        import lightning as L
        from lightning.pytorch.plugins.precision import Precision
        from lightning.pytorch.profilers import PassThroughProfiler
        from lightning.pytorch.strategies import SingleDeviceStrategy

        if type(trainer.precision_plugin) is not Precision or type(trainer.strategy) is not SingleDeviceStrategy:
            return None
        if not isinstance(trainer.profiler, PassThroughProfiler):
            return None
        if type(task).backward is not L.LightningModule.backward:
            return None
        for hook in STEP_HOOKS:
            if getattr(type(task), hook) is not getattr(L.LightningModule, hook):
                return None
            if any(getattr(type(cb), hook) is not getattr(L.Callback, hook) for cb in trainer.callbacks):
                return None
        return cls(trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self.progress.increment_ready()
        optimizer.step()
        self.progress.increment_completed()
