"""Callbacks that write a run's outputs: per-epoch history, learning curves, and the config inside checkpoints."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint


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
        row["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else math.nan
        self.history = [r for r in self.history if r["epoch"] < row["epoch"]] + [row]
        if trainer.is_global_zero:
            write_history(self.history, self.output_dir / "history.csv")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self.history:
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


def plot_learning_curves(rows: list[dict[str, float]], path: Path) -> None:
    """Train vs validation loss per epoch, and the first validation metric beside it when there is one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] + 1 for r in rows]
    metric = next((k for k in ("acc", "rmse", "f1", "mae") if any(f"val/{k}" in r for r in rows)), None)
    fig, axes = plt.subplots(1, 2 if metric else 1, figsize=(10 if metric else 5, 3.8), squeeze=False)
    for ax, key in zip(axes[0], ["loss", metric] if metric else ["loss"], strict=True):
        for split, style in (("train", "-o"), ("val", "-s")):
            values = [r.get(f"{split}/{key}", math.nan) for r in rows]
            if not all(math.isnan(v) for v in values):
                ax.plot(epochs, values, style, markersize=3, label=f"{split}/{key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("learning curves")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def to_float_dict(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v.item() if isinstance(v, torch.Tensor) else v) for k, v in sorted(metrics.items())}
