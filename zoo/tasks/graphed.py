"""The fast path on a GPU: a group of K optimiser steps recorded once as a CUDA graph and replayed.

A small net on a GPU is launch-bound: each of its ~30 kernels a step costs the host a few microseconds to queue, more
than the GPU takes to run it. ``steps_per_execution`` already hands the task K mini-batches at once from data kept on
the device; here the whole group (gathering the mini-batches from the epoch's order, augmenting them, forward, loss,
backward and the optimiser's update, K times) is recorded once with ``torch.cuda.graph`` and each later group of that
shape is one replay: one launch for some thousand kernels. An epoch has at most two shapes of group: its full ones
and its last one.

What the replay reads sits in fixed buffers: the group's sample positions and augmentation draws (copied in before
each replay: the epoch's order and draws are still made on the CPU from ``seed + epoch``, so a run is the same on any
device), the data itself, the weights and the optimiser's state (updated in place; the learning rate a device tensor
that the schedulers fill). What a step adds up for the epoch (``train/loss``, ``train/acc``) and the step values it
logs come out of the graph and are added after each replay, so nothing crosses to the host but the step-level values
Lightning writes (one read per group, as without a graph).

``cuda_graphs=auto`` (the default) records where it holds and says nothing otherwise; ``cuda_graphs=true`` also
records a training step a user wrote (its Python runs once, when it is recorded: per-step counters or lists stay
still) and says in one line why it cannot where it cannot; ``false`` turns it off. Where recording fails (a host
sync such as ``.item()``, a shape that depends on the data) the run goes on one step at a time in Python and says why.
"""

from __future__ import annotations

import logging
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from zoo.data.batches import PlannedGroup

log = logging.getLogger(__name__)

# A group's outputs: the last step's loss, what its steps added up for the epoch (``_train_sums``' keys) and the
# step-level values it logged, by (name, position in the group).
GroupOutputs = tuple[torch.Tensor, dict[str, Any], dict[tuple[str, int], torch.Tensor]]
GroupedSteps = Any  # zoo.tasks.grouped.GroupedSteps, which imports this module

# Optimisers whose update runs on the device with a device-tensor learning rate (capturable=True); SGD too with its
# fused kernel, which zoo picks on a GPU (its other kernels read the rate on the host).
CAPTURABLE = (torch.optim.Adam, torch.optim.AdamW)
WARMUP_STEPS = 3  # eager steps before recording: cuBLAS/cuDNN handles and the optimiser's state exist by then


class CudaRecorder:
    """Records and warms up on the current CUDA device: warm-up on a side stream, recording with errors raised only
    for this thread's work (what torch's docs ask of whole-network capture)."""

    device_type = "cuda"  # where the data must sit

    @staticmethod
    def warm_up(fn: Callable[[], Any]) -> Any:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            out = fn()
        torch.cuda.current_stream().wait_stream(stream)
        return out

    @staticmethod
    def record(fn: Callable[[], Any]) -> tuple[Any, Any]:
        """The graph of ``fn`` (not run yet: ``graph.replay()`` runs it) and its outputs, which each replay refills.
        Where recording fails, the error raised is the first one inside ``fn`` (ending the capture then raises one
        of its own that names no operation), and the thread is back on its stream (torch's context manager leaves it
        on the capture stream when ending the capture fails)."""
        graph, stream, first = torch.cuda.CUDAGraph(), torch.cuda.current_stream(), []

        def recorded() -> Any:
            try:
                return fn()
            except Exception as err:
                first.append(err)
                raise

        try:
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                outputs = recorded()
        except Exception as err:
            torch.cuda.set_stream(stream)
            raise (first[0] if first else err) from None
        return graph, outputs


def recorder_for(device: torch.device) -> type[CudaRecorder] | None:
    """What records graphs on ``device``: CUDA's; none elsewhere."""
    return CudaRecorder if device.type == "cuda" else None


class Recording:
    """One shape of group (its steps and samples: the epoch's full groups, its last one): the fixed buffers its
    replays read, its graph and outputs, and what the graph holds fixed (:meth:`GroupGraph.signature_now`)."""

    def __init__(self, plan: PlannedGroup) -> None:
        self.positions = torch.empty_like(plan.positions)
        self.draw = None if plan.draw is None else plan.draw.empty_like()
        self.graph: Any = None
        self.outputs: GroupOutputs | None = None
        self.signature: tuple | None = None
        self.warm = False  # run once eagerly: cuBLAS/cuDNN have met its shapes

    def load(self, plan: PlannedGroup) -> None:
        """The group's positions and draws into the buffers (copies on the device, queued)."""
        self.positions.copy_(plan.positions, non_blocking=True)
        if self.draw is not None:
            self.draw.copy_(plan.draw)

    def holds(self, signature: tuple) -> bool:
        """Whether the graph was recorded with the very objects of ``signature`` (tensors compared by identity)."""
        if self.signature is None:
            return False
        now, then = _leaves(signature), _leaves(self.signature)
        return len(now) == len(then) and all(map(_same, now, then))


class GroupGraph:
    """A task's groups (:class:`zoo.data.batches.PlannedGroup`) run as recorded graphs, one for each shape of group
    (the full ones, the epoch's last one). A shape's first group runs eagerly (the warm-up, at least
    ``WARMUP_STEPS`` steps in all before the first recording), the next one is recorded, every later one replayed; a
    change in the optimiser's groups or in which weights train records again."""

    def __init__(self, task: GroupedSteps, recorder: type[CudaRecorder], setting: bool | str) -> None:
        self.task, self.recorder, self.setting = task, recorder, setting
        self.recordings: dict[tuple[int, int], Recording] = {}  # by (steps, samples)
        self.warm = 0  # eager steps run so far

    @classmethod
    def for_task(cls, task: GroupedSteps, setting: bool | str) -> GroupGraph | None:
        """The task's graph where this run allows one, else None: ``cuda_graphs=true`` says why not in one line."""
        reason = cls.reason(task, setting)
        if reason is None:
            warnings.filterwarnings("ignore", message=".*constructed with capturable=True.*")  # warm-up steps
            return cls(task, recorder_for(task.trainer.strategy.root_device), setting)
        if setting is True:
            log.warning("cuda_graphs=true falls back to steps one at a time in Python: %s", reason)
        return None

    @staticmethod
    def reason(task: GroupedSteps, setting: bool | str) -> str | None:
        """Why this run cannot record its groups, or None."""
        if setting is False:
            return "turned off"
        device = task.trainer.strategy.root_device  # where the net will train (setup runs before it moves there)
        if recorder_for(device) is None:
            return f"CUDA graphs need a CUDA GPU (this run trains on the {device.type}; trainer.accelerator=gpu)"
        if not task.grouped:
            return "steps_per_execution is 1 here (nothing to record: one step per Lightning step)"
        if task._direct is None:
            return (
                "Lightning's optimiser wrapper runs on every step here (mixed precision, a profiler, or a hook on "
                "backward or the optimiser step)"
            )
        if setting == "auto" and not task.step_is_zoos():
            return "the task has a training step of its own (cuda_graphs=true records it; its Python runs once)"
        return task.graph_reason()

    def run(self, step: Callable[..., Any], plan: PlannedGroup, batch_idx: int) -> GroupOutputs | None:
        """The group's steps, eagerly (warm-up), recorded and replayed, or replayed; their outputs. None where the
        graph cannot hold (the reason logged once): the caller runs the steps itself."""
        if not self.recordings and (reason := self.runtime_reason(plan)) is not None:
            self.give_up(reason)
            return None
        shape = (plan.steps, len(plan.positions))
        if shape not in self.recordings:
            self.recordings[shape] = Recording(plan)
        recording = self.recordings[shape]
        recording.load(plan)

        def group() -> GroupOutputs:
            batches = plan.batches(recording.positions, recording.draw)
            return self.task.group_steps(step, batches, batch_idx, counting=False)

        self.tensor_learning_rates()
        signature = self.signature_now(plan)
        if recording.graph is not None and not recording.holds(signature):  # a new parameter group, (un)frozen weights
            log.info("the optimiser's groups or the trained weights changed: recording the group of steps again")
            recording.graph, recording.warm = None, False  # new weights get their optimiser state eagerly first
        if self.warm < WARMUP_STEPS or not recording.warm:
            self.warm += plan.steps
            recording.warm = True
            return self.recorder.warm_up(group)
        if recording.graph is None:
            try:
                recording.graph, recording.outputs = self.recorder.record(group)
            except Exception as err:  # a host sync, a data-dependent shape, an op CUDA graphs cannot hold
                self.task.raw_optimizer().zero_grad()
                self.give_up(f"recording the steps failed: {str(err).strip().splitlines()[0]}{where(err)}")
                return None
            recording.signature = signature
        recording.graph.replay()
        return recording.outputs

    def runtime_reason(self, plan: PlannedGroup) -> str | None:
        """What only the first group shows: where the data is, which optimiser steps."""
        if plan.source.x.device.type != self.recorder.device_type:
            return "the training data does not fit on the GPU (it is copied there batch by batch)"
        optimizer = self.task.raw_optimizer()
        fused_sgd = isinstance(optimizer, torch.optim.SGD) and optimizer.defaults.get("fused")
        if not (fused_sgd or isinstance(optimizer, CAPTURABLE)):
            return (
                f"{type(optimizer).__name__} cannot step inside a CUDA graph here (Adam, AdamW and SGD with its fused "
                "kernel can)"
            )
        return None

    def signature_now(self, plan: PlannedGroup) -> tuple:
        """What a recorded graph holds fixed besides its buffers: the optimiser's groups (their parameters and
        learning-rate tensors, held here so that no other object can take their ids), which weights train, the data's
        tensors."""
        groups = tuple((tuple(g["params"]), g["lr"]) for g in self.task.raw_optimizer().param_groups)
        training = tuple(p.requires_grad for p in self.task.parameters())
        return groups, training, plan.source.x, plan.source.y

    def tensor_learning_rates(self) -> None:
        """Learning rates as device tensors, so the schedulers' new rates reach the recorded update (a float would be
        fixed in the graph), and the update made capturable: its step counts on the device too (a run resumed
        without the fused kernel loads them on the CPU)."""
        optimizer = self.task.raw_optimizer()
        for group in optimizer.param_groups:
            if not isinstance(group["lr"], torch.Tensor):
                group["lr"] = torch.tensor(float(group["lr"]), device=self.task.device)
            if "capturable" in group and not group["capturable"]:
                group["capturable"] = True
                for p in group["params"]:
                    state = optimizer.state.get(p, {})
                    if isinstance(state.get("step"), torch.Tensor):
                        state["step"] = state["step"].to(device=p.device, dtype=torch.float32)

    def give_up(self, reason: str) -> None:
        level = logging.WARNING if self.setting is True else logging.INFO
        log.log(level, "cuda_graphs falls back to steps one at a time in Python: %s", reason)
        self.recordings.clear()
        self.task.drop_graph()


def where(err: Exception) -> str:
    """`` (file:line in function)`` of the innermost frame of ``err`` outside torch: which step of a net or task."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "/torch/" not in f.filename]
    if not frames:
        return ""
    frame = frames[-1]
    return f" ({Path(frame.filename).name}:{frame.lineno} in {frame.name})"


def _leaves(signature: tuple) -> list[Any]:
    return [leaf for part in signature for leaf in (_leaves(part) if isinstance(part, tuple) else [part])]


def _same(a: Any, b: Any) -> bool:
    return a is b if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor) else a == b


def plain_learning_rates(checkpoint: dict[str, Any]) -> None:
    """A checkpoint's learning rates as numbers and its update as built (a recorded run keeps the rates as device
    tensors and makes the update capturable while it trains): it loads and resumes anywhere, with any optimiser
    settings."""
    for state in checkpoint.get("optimizer_states", []):
        for group in state.get("param_groups", []):
            if isinstance(group.get("lr"), torch.Tensor):
                group["lr"] = float(group["lr"])
                group["capturable"] = False
    for state in checkpoint.get("lr_schedulers", []):
        if isinstance(state.get("_last_lr"), list):
            state["_last_lr"] = [float(v) if isinstance(v, torch.Tensor) else v for v in state["_last_lr"]]
