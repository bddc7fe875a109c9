"""Figures written into the run folder: learning curves, the confusion matrix, and a grid of test images with their
predictions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(rows: list[dict[str, float]], path: Path) -> None:
    """Train vs validation loss per epoch, and the first validation metric beside it when there is one."""
    plt = _pyplot()
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


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: Path) -> Path:
    """Counts per (true, predicted) class, with each row's share shown as colour (so rare classes read too)."""
    plt = _pyplot()
    k = len(class_names)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = min(14.0, 2.5 + 0.55 * k)
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")  # fmt: skip
        ax.set_xticks(range(k), class_names, rotation=45 if max(map(len, class_names)) > 3 else 0, ha="right")
        ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"confusion matrix (test, accuracy {accuracy:.4f})")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_predictions(
    images: np.ndarray, true: np.ndarray, pred: np.ndarray, class_names: list[str], path: Path
) -> Path:
    """A grid of test images ``[N, C, H, W]`` (uint8) titled ``true -> predicted``, mistakes in red."""
    plt = _pyplot()
    n = len(images)
    cols = min(8, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, t, p in zip(axes.ravel(), images, true, pred, strict=False):
        grey = image.shape[0] == 1
        ax.imshow(image[0] if grey else image.transpose(1, 2, 0), cmap="gray" if grey else None, vmin=0, vmax=255)
        ax.set_title(f"{class_names[t]} -> {class_names[p]}", fontsize=8, color="black" if t == p else "red")
    fig.suptitle("test images: true -> predicted")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
