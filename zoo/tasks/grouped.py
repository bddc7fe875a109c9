"""The fast path for small models, one opt-in piece: several optimiser steps per Lightning step.

On a small net, Lightning's per-step machinery (hooks, closures, progress and logging bookkeeping, ~0.5-2 ms) costs
as much as the step itself. ``steps_per_execution=K`` (Keras' ``model.compile`` option of that name) has the
in-memory batch iterator hand the task K mini-batches at once; :class:`GroupedSteps` then runs K ordinary optimiser
steps with manual optimisation. The seam is the task's own ``training_step``: it is called once per mini-batch and
returns the loss, whatever task defines it, so a task that writes its own step keeps the fast path.

With plain fp32 on one device and nothing hooked around backward or the step, those steps call the optimiser
directly (:class:`StepCounter` keeps Lightning's step count); otherwise they go through ``manual_backward`` and
Lightning's optimiser wrapper, so precision plugins, AMP and the hooks still apply. Results are those of K=1 for the
same seed: the same mini-batches in the same order, one optimiser step each, ``global_step`` counting optimiser
steps. Where that cannot hold, the run falls back to K=1 and says why. On a GPU each group runs as one replay of
a recorded CUDA graph (``cuda_graphs``, :mod:`zoo.tasks.graphed`).
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
import torch

from zoo.data.batches import PlannedGroup
from zoo.errors import ZooError
from zoo.internals import (
    QuickHookName,
    count_group_steps,
    logged_values_moved_only_when_elsewhere,
    optimizer_step_progress,
)
from zoo.protocols import GroupsBatches
from zoo.tasks.graphed import GroupGraph, GroupOutputs

log = logging.getLogger(__name__)

AUTO_STEPS = 64  # Lightning's per-step cost shared by 64 optimiser steps: a few % of a small net's step

# Where Lightning calls user code around a manual backward and optimiser step (Precision.pre_backward, backward,
# post_backward, _after_closure); when nothing overrides them, skipping the wrapper changes nothing but the time.
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


def check_steps_per_execution(value: Any) -> int | str:
    """``steps_per_execution``: ``auto`` or a positive integer; anything else is a user mistake."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ZooError(f"steps_per_execution={value!r} is not valid; use a positive integer (1 turns it off) or auto")


class GroupedSteps(QuickHookName, L.LightningModule):
    """Mixin for a LightningModule: ``steps_per_execution`` optimiser steps per Lightning step where the run allows
    it (``auto``: 64). Every ``training_step`` a subclass defines is wrapped so that a group of mini-batches runs
    it once per mini-batch; a single mini-batch passes straight through."""

    steps_per_execution: int | str = 1  # the run sets it (zoo.run.build_task); setup("fit") resolves auto
    cuda_graphs: bool | str = "auto"  # the run sets it; setup("fit") decides (zoo.tasks.graphed)
    single_pass = False  # a closed-form task reads the training set once (zoo.protocols.TrainingBatches)
    _direct: StepCounter | None = None  # set when the steps may call the optimiser directly
    _graph: GroupGraph | None = None  # set when groups run as recorded CUDA graphs
    _group_logged: dict[tuple[str, int], torch.Tensor] | None = None  # step-level values logged inside a group
    _group_index = 0  # the step's position in its group
    # What the task's steps add up over the epoch (add_sums: SupervisedTask's train/loss, train/acc); a group's steps
    # start from an empty dict and their sums are added after the group.
    _train_sums: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        step = cls.training_step  # defined here, or by a base or mixin (already wrapped if it is a GroupedSteps)
        if not getattr(step, "runs_groups", False):
            cls.training_step = _running_groups(step)

    def one_step_reason(self) -> str | None:
        """Why this run must keep one optimiser step per Lightning step (automatic optimisation), or None."""
        trainer = self.trainer
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
        if self.single_pass:
            return "a net solved in closed form"
        data = trainer.datamodule
        if not (isinstance(data, GroupsBatches) and data.groups_batches()):
            return "the data is not batched in memory"
        return None

    def setup(self, stage: str) -> None:
        super().setup(stage)
        logged_values_moved_only_when_elsewhere()
        if stage != "fit":
            return
        self.steps_per_execution = self._resolve(self.steps_per_execution)
        if self.steps_per_execution > 1:
            self.automatic_optimization = False
            self._direct = StepCounter.for_run(self.trainer, self)
        self._graph = GroupGraph.for_task(self, self.cuda_graphs)

    @property
    def records_groups(self) -> bool:
        """Whether groups should come as plans that a recorded graph gathers (``zoo.data.batches``)."""
        return self._graph is not None

    def drop_graph(self) -> None:
        self._graph = None

    def step_is_zoos(self) -> bool:
        """Whether the training step is one of zoo's (whose Python does nothing but queue the step's work)."""
        return type(self).training_step.__module__.startswith("zoo.")

    def graph_reason(self) -> str | None:
        """Why this task's steps cannot be recorded as a CUDA graph (a step that does Python work of its own), or
        None."""
        return None

    def raw_optimizer(self) -> torch.optim.Optimizer:
        return self.optimizers(use_pl_optimizer=False)

    def _resolve(self, requested: int | str) -> int:
        """``auto`` -> ``AUTO_STEPS`` where the fast path holds, else 1; an explicit K > 1 that cannot hold falls
        back to 1 with a warning naming the reason."""
        if requested == 1:
            return 1
        reason = self.one_step_reason()
        if reason is None:
            # the epoch schedulers are stepped here in this mode (step_epoch_schedulers)
            warnings.filterwarnings("ignore", message=r".*call `lr_scheduler.step\(\)` manually.*")
            return AUTO_STEPS if requested == "auto" else int(requested)
        if requested != "auto":
            log.warning("steps_per_execution=%s falls back to 1: %s", requested, reason)
        return 1

    def log_step(self, name: str, value: torch.Tensor) -> None:
        """Log a training step's value where Lightning writes step-level values (every ``log_every_n_steps``
        optimiser steps): through ``self.log`` one step at a time, kept by position and written once per group
        otherwise (Lightning writes only when a Lightning step ends on such a multiple, which a group seldom does)."""
        every = self.trainer.log_every_n_steps  # 0: no step-level logging
        if not every:
            return
        if self._group_logged is not None:
            self._group_logged[(name, self._group_index)] = value.detach()
        elif (self.global_step + 1) % every == 0:
            self.log(name, value, on_step=True, on_epoch=False)

    def run_group(self, step: Callable[..., Any], batch: list[Any] | PlannedGroup, batch_idx: int) -> torch.Tensor:
        """A group of optimiser steps, as automatic optimisation runs them one by one (see :meth:`group_steps`):
        recorded and replayed as a CUDA graph where the run allows it, else in Python. Then what Lightning does
        after each step: the epoch's sums, step-level logging, the step count, the epoch's schedulers."""
        first = self.global_step
        outputs = None
        if isinstance(batch, PlannedGroup):
            if self._graph is not None:
                outputs = self._graph.run(step, batch, batch_idx)
            if outputs is None:
                batch = batch.batches()
        steps = batch.steps if isinstance(batch, PlannedGroup) else len(batch)
        loss, sums, logged = self.group_steps(step, batch, batch_idx) if outputs is None else outputs
        self.add_sums(sums)
        self.log_group(first, logged)
        if outputs is not None and self._direct is not None:
            self._direct.count(steps)
        count_group_steps(self.trainer, steps)
        if batch_idx + 1 == self.trainer.num_training_batches:
            self.step_epoch_schedulers(plateau=False)
        return loss.detach().clone()  # a replay refills the graph's own

    def group_steps(
        self, step: Callable[..., Any], batches: list[Any], batch_idx: int, counting: bool = True
    ) -> GroupOutputs:
        """One optimiser step per mini-batch: ``step`` (the task's training step: forward and loss), zero_grad,
        backward, optimiser step. Returns the group's outputs; ``counting``: count each direct step as it is taken
        (a recorded graph's steps are counted after each replay)."""
        direct = self._direct
        optimizer = self.optimizers(use_pl_optimizer=direct is None)
        epoch_sums, self._train_sums = getattr(self, "_train_sums", {}), {}
        self._group_logged = {}
        try:
            for i, batch in enumerate(batches):
                self._group_index = i
                loss = step(self, batch, batch_idx)
                optimizer.zero_grad()
                if direct is None:
                    self.manual_backward(loss)
                    optimizer.step()
                else:
                    loss.backward()
                    if counting:
                        direct.step(optimizer)
                    else:
                        optimizer.step()
            return loss, self._train_sums, self._group_logged
        finally:
            self._train_sums, self._group_logged = epoch_sums, None

    def add_sums(self, sums: dict[str, Any]) -> None:
        """Add ``sums`` to what the steps add up (``_train_sums``: the epoch's, or the group's inside one)."""
        for key, value in sums.items():
            self._train_sums[key] = self._train_sums.get(key, 0) + value

    def log_group(self, first: int, logged: dict[tuple[str, int], torch.Tensor]) -> None:
        """A group's step-level values (its steps numbered from ``first``) where Lightning would write them, in one
        read from the device."""
        every = self.trainer.log_every_n_steps
        chosen = {(name, first + i): value for (name, i), value in logged.items() if (first + i + 1) % every == 0}
        if not chosen:
            return
        for (name, at), value in zip(chosen, torch.stack(list(chosen.values())).tolist(), strict=True):
            for logger in self.loggers:
                logger.log_metrics({name: value}, step=at)

    @property
    def grouped(self) -> bool:
        """Whether training batches come as groups of mini-batches (once ``setup("fit")`` resolved K)."""
        k = self.steps_per_execution
        return isinstance(k, int) and k > 1

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        if not self.automatic_optimization:  # a group, or a step of the task's own
            self.step_epoch_schedulers(plateau=True)

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


def _running_groups(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` as Lightning calls it: a group (a list of mini-batches) runs it once per mini-batch."""

    @functools.wraps(step)
    def training_step(self: GroupedSteps, batch: Any, batch_idx: int, *args: Any, **kwargs: Any) -> Any:
        if isinstance(batch, list | PlannedGroup) and self.grouped:
            return self.run_group(step, batch, batch_idx)
        return step(self, batch, batch_idx, *args, **kwargs)

    training_step.runs_groups = True
    return training_step


class StepCounter:
    """Optimiser steps taken outside Lightning's ``LightningOptimizer`` wrapper, still counted where Lightning counts
    them (the manual-optimisation step progress, hence ``global_step``, checkpoints and resume).

    The wrapper (a profiler span, the precision plugin's closure and the calls of every hook above on every callback)
    costs about as much as a small net's whole step; ``for_run`` says when it may be skipped."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress

    @classmethod
    def for_run(cls, trainer: L.Trainer, task: L.LightningModule) -> StepCounter | None:
        """A counter when the wrapper would add nothing to this run: plain fp32 precision, one device, no profiler,
        and neither the task nor any callback overriding a hook the wrapper calls; else None (the wrapper runs)."""
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
        return cls(optimizer_step_progress(trainer))

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self.progress.increment_ready()
        optimizer.step()
        self.progress.increment_completed()

    def count(self, steps: int) -> None:
        """``steps`` optimiser steps taken without Python (a replayed CUDA graph)."""
        self.progress.increment_by(steps)  # ready and completed, as step() counts each
