"""What a run shows while it trains: progress counted in optimiser steps, one numbering of epochs (from 1), and a
summary of the net's own layers. In a terminal the progress is a live bar; anywhere else (a log file, CI, a
notebook) it is one plain line per epoch, with no colour codes or redraws."""

from __future__ import annotations

import math
import shutil
import sys
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelSummary as _LightningModelSummary
from lightning.pytorch.callbacks import ProgressBar as _LightningProgressBar
from torch import nn

from zoo.outputs import RunFolder

LINES = 10  # epochs shown as lines on a run of any length: every tenth, and the last


def epoch_values(trainer: L.Trainer, brief: bool = False) -> str:
    """The epoch's training and validation metrics as ``key=value`` pairs; ``brief``: the losses and the first
    validation metric (what fits beside a progress bar)."""
    shown = sorted(k for k in trainer.callback_metrics if k.startswith(("train/", "val/")) and "_step" not in k)
    if brief:
        first = next((k for k in shown if k.startswith("val/") and k != "val/loss"), None)
        shown = [k for k in ("train/loss", "val/loss", first) if k in shown]
    return "  ".join(f"{k}={float(trainer.callback_metrics[k]):.4f}" for k in shown)


class ProgressBar(_LightningProgressBar):
    """Training progress in optimiser steps (a group of the fast path counts as its steps, not as one), the steps per
    second and the epoch's time, epochs counted from 1. ``live``: a Rich bar that redraws in place (default: when
    the output is a terminal); else one line per epoch, every tenth on long runs."""

    def __init__(self, live: bool | None = None) -> None:
        super().__init__()
        self.live = sys.stdout.isatty() if live is None else live
        self.enabled = True
        self._progress: Any = None
        self._task: Any = None
        self._epoch_start = (0, 0.0)  # (global_step, time) when the epoch began
        self._steps_per_epoch: int | None = None

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def _epochs(self, trainer: L.Trainer) -> str:
        return str(trainer.max_epochs) if trainer.max_epochs and trainer.max_epochs > 0 else "?"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = (trainer.global_step, time.perf_counter())  # a run resumed mid-epoch starts counting here
        if not (self.enabled and self.live and trainer.is_global_zero):
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("steps  {task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[values]}"),
        )
        self._progress.start()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = (trainer.global_step, time.perf_counter())
        if self._progress is None:
            return
        total = self._steps_per_epoch or self._estimated_steps(trainer, pl_module)
        description = f"epoch {trainer.current_epoch + 1}/{self._epochs(trainer)}"
        if self._task is None:
            self._task = self._progress.add_task(description, total=total, rate="", values="")
        else:
            self._progress.reset(self._task, total=total, description=description)

    @staticmethod
    def _estimated_steps(trainer: L.Trainer, pl_module: L.LightningModule) -> int | None:
        """Optimiser steps an epoch before the first one has counted them: Lightning steps times the group size."""
        batches = trainer.num_training_batches
        if not math.isfinite(batches):
            return None
        group = getattr(pl_module, "steps_per_execution", 1)
        return int(batches) * (group if isinstance(group, int) else 1)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._progress is None:
            return
        steps, start = trainer.global_step - self._epoch_start[0], self._epoch_start[1]
        rate = steps / max(time.perf_counter() - start, 1e-9)
        self._progress.update(self._task, completed=steps, rate=f"{rate:,.0f}/s")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self.enabled and trainer.is_global_zero) or trainer.sanity_checking:
            return
        steps = trainer.global_step - self._epoch_start[0]
        seconds = time.perf_counter() - self._epoch_start[1]
        self._steps_per_epoch = steps or self._steps_per_epoch
        if self._progress is not None:
            values = epoch_values(trainer, brief=True)
            self._progress.update(self._task, completed=steps, total=steps, values=values)
            return
        values = epoch_values(trainer)
        epoch, epochs = trainer.current_epoch + 1, trainer.max_epochs
        if epochs and epochs > 0 and epoch % max(1, epochs // LINES) and epoch != epochs:
            return
        print(f"epoch {epoch}/{self._epochs(trainer)}  {steps} steps  {seconds:.2f} s  {values}", flush=True)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress, self._task = None, None


class ModelSummary(_LightningModelSummary):
    """The net's layers (not the task's loss or metric modules) with their output shapes and weights, printed at the
    start of training (``show``) and written to ``model_summary.txt`` in the run folder."""

    def __init__(self, folder: str | None = None, show: bool = True) -> None:
        super().__init__()
        self.folder = RunFolder(folder) if folder else None
        self.show = show

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not isinstance(getattr(pl_module, "net", None), nn.Module):
            return
        rows = layer_rows(pl_module)
        text = summary_text(rows, pl_module.net)
        if self.folder is not None:
            self.folder.write_text("model_summary.txt", text + "\n")
        if self.show:
            print(text, flush=True)


def layer_rows(task: L.LightningModule) -> list[tuple[str, str, str, int]]:
    """``(name, type, output shape, weights)`` for each layer of ``task.net`` that holds no other layer, from one
    forward pass of the task's example input (eval mode, no gradients, nothing kept)."""
    net: nn.Module = task.net
    shapes: dict[str, str] = {}

    def hook(name: str):
        def record(module: nn.Module, args: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor):
                shapes.setdefault(name, str(["N", *out.shape[1:]]).replace("'", ""))

        return record

    # A net with no sub-layers (the ELM) is its own single row.
    leaves = [(n or type(m).__name__, m) for n, m in net.named_modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook(n)) for n, m in leaves]
    modes = {m: m.training for m in task.modules()}
    example = getattr(task, "example_input_array", None)
    try:
        if example is not None:
            task.eval()
            with torch.no_grad():
                task(example.to(task.device))
    except Exception:  # noqa: BLE001 - a summary without shapes rather than none
        shapes.clear()
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    return [(n, type(m).__name__, shapes.get(n, "-"), weights(m)) for n, m in leaves]


def shortened(name: str, width: int) -> str:
    """``name`` cut to ``width`` characters in the middle (``encoder.stage…blocks.2.conv``), whole when it fits."""
    if len(name) <= width:
        return name
    head = (width - 1) // 2
    return f"{name[:head]}…{name[len(name) - (width - 1 - head) :]}"


def weights(layer: nn.Module) -> int:
    """The layer's parameters, or its buffers when it has none (fixed random or closed-form weights)."""
    return sum(p.numel() for p in layer.parameters(recurse=False)) or sum(
        b.numel() for b in layer.buffers(recurse=False)
    )


def summary_text(rows: list[tuple[str, str, str, int]], net: nn.Module, columns: int | None = None) -> str:
    """The rows as a plain table, then the totals. Layer names too long for the terminal (``columns``, by default
    its width) are shortened in the middle, so that every row keeps to one line."""
    header = ("layer", "type", "output", "weights")
    cells = [header, *[(n, t, s, f"{w:,}") for n, t, s, w in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    room = (columns or shutil.get_terminal_size().columns) - sum(widths[1:]) - 6  # what the names may take
    if widths[0] > room >= 12:
        cells = [(shortened(row[0], room), *row[1:]) for row in cells]
        widths[0] = room
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in cells]  # fmt: skip
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    total = sum(p.numel() for p in net.parameters())
    fixed = sum(b.numel() for b in net.buffers())
    totals = f"{type(net).__name__}: {trainable:,} trainable weights of {total:,}"
    if not total and fixed:
        totals += f"; {fixed:,} fixed or solved in closed form"
    return "\n".join([*lines, totals])
