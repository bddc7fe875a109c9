"""Figures written into the run folder: learning curves, the confusion matrix, and a grid of test images with their
predictions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

CURVE_METRICS = ("acc", "iou", "map_50", "knn_acc", "rmse", "f1", "mae")  # the first one logged is drawn


class _Figures:
    """The part of pyplot zoo's figures use, without pyplot: bare ``matplotlib.figure.Figure`` objects, which Agg
    draws when they are saved. pyplot's state is left alone: its backend stays as the user set it (switching it to
    Agg stopped a notebook's own plots from showing after a run), no registry holds the figures, and a figure drawn
    in a background thread never meets a GUI backend. A returned figure still shows inline in Jupyter."""

    @staticmethod
    def figure(**kwargs: Any) -> Any:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(**kwargs)
        FigureCanvasAgg(fig)  # drawn in memory too (an animation's frames), not only when saved
        return fig

    @staticmethod
    def subplots(nrows: int = 1, ncols: int = 1, *, figsize: Any = None, dpi: Any = None, **kwargs: Any) -> Any:
        fig = _Figures.figure(figsize=figsize, dpi=dpi)
        return fig, fig.subplots(nrows, ncols, **kwargs)

    @staticmethod
    def get_cmap(name: str) -> Any:
        import matplotlib

        return matplotlib.colormaps[name]

    @staticmethod
    def close(fig: Any) -> None:
        """Nothing to free: the figure goes with its last reference."""


def _pyplot() -> type[_Figures]:
    return _Figures


def tight(fig: Any, rect: tuple[float, float, float, float] | None = None) -> None:
    """``fig.tight_layout(rect=rect)``, done once. matplotlib leaves a placeholder layout engine behind, for which
    ``savefig`` draws the whole figure once more before drawing it into the file: a quarter of a figure's time,
    for the same pixels."""
    fig.tight_layout(rect=rect)
    fig.set_layout_engine(None)


def saved(fig: Any, path: Path, rect: tuple[float, float, float, float] | None = None) -> Path:
    """Lay the figure out (within ``rect``), write it at 100 dpi and free it: how every figure here ends."""
    tight(fig, rect)
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def plot_learning_curves(
    rows: list[dict[str, float]], path: Path, marks: dict[str, int] | None = None, title: str = "learning curves"
) -> None:
    """Train vs validation loss per epoch, and the first validation metric beside it when there is one;
    ``marks`` draws labelled vertical lines at epochs (counted from 1, as everywhere), e.g. where early stopping
    stopped."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    metric = next((k for k in CURVE_METRICS if any(f"val/{k}" in r for r in rows)), None)
    fig, axes = plt.subplots(1, 2 if metric else 1, figsize=(10 if metric else 5, 3.8), squeeze=False)
    for ax, key in zip(axes[0], ["loss", metric] if metric else ["loss"], strict=True):
        for split, style in (("train", "-o"), ("val", "-s")):
            values = [r.get(f"{split}/{key}", math.nan) for r in rows]
            if not all(math.isnan(v) for v in values):
                ax.plot(epochs, values, style, markersize=3, label=f"{split}/{key}")
        for (label, epoch), color in zip((marks or {}).items(), ("tab:green", "tab:red", "tab:gray"), strict=False):
            ax.axvline(epoch, color=color, linestyle="--", label=f"{label} ({epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    saved(fig, path)


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
    return saved(fig, path)


def image_grid(n: int, max_cols: int, cell: tuple[float, float]) -> tuple[Any, np.ndarray]:
    """A figure of ``n`` image cells, at most ``max_cols`` a row, each ``cell`` inches, axes off; returns the figure and
    its axes in reading order (spare cells stay blank)."""
    plt = _pyplot()
    cols = min(max_cols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cell[0] * cols, cell[1] * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    return fig, axes.ravel()


def show_image(ax: Any, image: np.ndarray) -> None:
    """A uint8 image ``[C, H, W]``: grey for one channel, colour for three."""
    grey = image.shape[0] == 1
    ax.imshow(image[0] if grey else image.transpose(1, 2, 0), cmap="gray" if grey else None, vmin=0, vmax=255)


def cell_title(ax: Any, text: str, **kwargs: Any) -> None:
    """The title of an image cell (axes off or without ticks), at a fixed height: matplotlib would otherwise place
    each title above the axis' tick labels, measuring every axis of the figure at each draw (0.4 s of a 32-image
    grid)."""
    ax.set_title(text, y=1.0, **kwargs)


def plot_predictions(
    images: np.ndarray, true: np.ndarray, pred: np.ndarray, class_names: list[str], path: Path
) -> Path:
    """A grid of test images ``[N, C, H, W]`` (uint8) titled ``true -> predicted``, mistakes in red.

    The images are tiled into one picture on one pair of axes, each title above its tile: an axes per image would
    take most of the figure's time (a quarter of a second for 32 images)."""
    plt = _pyplot()
    n, channels, h, w = images.shape
    cols = min(8, n)
    rows = -(-n // cols)
    gap_x, gap_y = max(1, round(0.12 * w)), max(2, round(0.45 * h))  # white between tiles; room for a title above
    mosaic = np.full((channels, rows * (h + gap_y), cols * (w + gap_x)), 255, dtype=np.uint8)
    fig, ax = plt.subplots(figsize=(1.6 * cols, 1.6 * cols * mosaic.shape[1] / mosaic.shape[2] + 0.4))
    for i, (image, t, p) in enumerate(zip(images, true, pred, strict=True)):
        top, left = (i // cols) * (h + gap_y) + gap_y, (i % cols) * (w + gap_x)
        mosaic[:, top : top + h, left : left + w] = image
        ax.text(left + w / 2 - 0.5, top - 0.8, f"{class_names[t]} -> {class_names[p]}", ha="center", va="bottom",
                fontsize=8, color="black" if t == p else "red")  # fmt: skip
    show_image(ax, mosaic)
    ax.axis("off")
    fig.suptitle("test images: true -> predicted")
    return saved(fig, path)


def plot_embeddings(embeddings: np.ndarray, labels: np.ndarray, class_names: list[str], path: Path) -> Path:
    """Embeddings ``[N, D]`` projected on their first two principal components, a colour per class.

    PCA, not t-SNE: a linear projection draws classes apart only where the embeddings hold them apart (t-SNE can
    draw clusters that are not there), needs no seed, and takes milliseconds on 10,000 points where scikit-learn's
    t-SNE takes seconds. Classes a 64-d embedding separates may still overlap in 2-D.
    """
    plt = _pyplot()
    centred = embeddings - embeddings.mean(0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    points = centred @ axes[:2].T
    explained = singular[:2] ** 2 / max(float((singular**2).sum()), 1e-12)
    k = len(class_names)
    colours = plt.get_cmap("tab10" if k <= 10 else "tab20" if k <= 20 else "turbo")
    fig, ax = plt.subplots(figsize=(7.5, 6))
    for c, name in enumerate(class_names):
        members = labels == c
        if members.any():
            colour = colours(c if k <= 20 else c / max(k - 1, 1))
            ax.scatter(points[members, 0], points[members, 1], s=10, alpha=0.7, color=colour, label=name)
    if k <= 40:
        ax.legend(title="class", loc="center left", bbox_to_anchor=(1, 0.5), markerscale=2, ncol=1 if k <= 20 else 2)
    ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.0%} of variance)")
    ax.set_title(f"test embeddings ({len(labels)}, {embeddings.shape[1]}-d), first two principal components")
    ax.grid(alpha=0.3)
    return saved(fig, path)


def plot_detections(
    images: np.ndarray,
    truth: list[np.ndarray],
    predictions: list[dict[str, np.ndarray]],
    class_names: list[str],
    path: Path,
    min_score: float = 0.5,
) -> Path:
    """A grid of test images ``[N, C, H, W]`` (uint8) with their true boxes (dashed white) and the predicted ones
    scoring at least ``min_score`` (a colour per class, labelled with the class and score).

    ``truth`` holds one ``[k, 5]`` array of ``(class, x1, y1, x2, y2)`` rows per image; ``predictions`` one dict of
    ``boxes`` ``[m, 4]``, ``scores`` and ``labels`` ``[m]`` per image, in pixels.
    """
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    colours = plt.get_cmap("tab10").colors
    fig, axes = image_grid(len(images), 4, (3.0, 3.0))
    for ax, image, true, pred in zip(axes, images, truth, predictions, strict=False):
        show_image(ax, image)
        for _, x1, y1, x2, y2 in true:
            # pixel (i, j) covers [j - 0.5, j + 0.5] in imshow's coordinates; boxes are in pixel edges
            ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="white", ls="--", lw=1))
        shown = pred["scores"] >= min_score
        for box, score, label in zip(pred["boxes"][shown], pred["scores"][shown], pred["labels"][shown], strict=True):
            x1, y1, x2, y2 = box
            colour = colours[int(label) % len(colours)]
            ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec=colour, lw=1.5))
            caption = f"{class_names[int(label)]} {score:.2f}"
            tag = {"fc": colour, "ec": "none", "pad": 0.5, "alpha": 0.8}
            ax.text(x1 - 0.5, y1 - 1, caption, color="black", fontsize=7, va="bottom", bbox=tag)
        cell_title(ax, f"{len(true)} true, {int(shown.sum())} found", fontsize=8)
    fig.suptitle(f"test images: true boxes dashed, predictions (score >= {min_score:g}) in colour")
    return saved(fig, path)


def plot_segmentation(
    images: np.ndarray, true: np.ndarray, pred: np.ndarray, class_names: list[str], path: Path
) -> Path:
    """One row per test image ``[C, H, W]`` (uint8): the image, the true mask over it, the predicted mask over it
    (classes in colour, background clear), with the image's IoU over its foreground classes."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    k = len(class_names)
    colours = plt.get_cmap("tab10")(np.arange(k) % 10)
    colours[0, 3] = 0.0  # class 0 (background) left transparent
    cmap = ListedColormap(colours)
    fig, axes = plt.subplots(len(images), 3, figsize=(7.5, 2.4 * len(images)), squeeze=False)
    for row, image, t, p in zip(axes, images, true, pred, strict=True):
        titles = ("image", "true mask", f"predicted (IoU {_foreground_iou(t, p, k):.2f})")
        for ax, mask, title in zip(row, (None, t, p), titles, strict=True):
            show_image(ax, image)
            if mask is not None:
                ax.imshow(mask, cmap=cmap, vmin=-0.5, vmax=k - 0.5, alpha=0.55, interpolation="nearest")
            cell_title(ax, title, fontsize=9)
            ax.axis("off")
    handles = [Patch(color=colours[c], label=class_names[c]) for c in range(1, k)]
    fig.legend(handles=handles, loc="lower center", ncol=min(k - 1, 6), fontsize=8, frameon=False)
    fig.suptitle("test images: true and predicted masks")
    return saved(fig, path, rect=(0, 0.03, 1, 1))


def _foreground_iou(true: np.ndarray, pred: np.ndarray, k: int) -> float:
    """One image's IoU averaged over the classes 1..k-1 that appear in its true or predicted mask."""
    scores = [((true == c) & (pred == c)).sum() / ((true == c) | (pred == c)).sum() for c in range(1, k)
              if (true == c).any() or (pred == c).any()]  # fmt: skip
    return float(np.mean(scores)) if scores else 1.0


def plot_word_embeddings(
    words: list[str], vectors: np.ndarray, leaning: np.ndarray, class_names: list[str], path: Path
) -> Path:
    """Learned word vectors ``[N, D]`` on their first two principal components, each word written at its point and
    coloured by the class the model gives it alone (a one-word text): words used alike end up close."""
    plt = _pyplot()
    centred = vectors - vectors.mean(0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    points = centred @ axes[:2].T if len(axes) >= 2 else np.c_[centred @ axes[:1].T, np.zeros(len(vectors))]
    explained = singular[:2] ** 2 / max(float((singular**2).sum()), 1e-12)
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(9, 7))
    for c, name in enumerate(class_names):
        members = leaning == c
        if members.any():
            ax.scatter(points[members, 0], points[members, 1], s=12, color=colours(c % 10), label=name)
    for word, (x, y), c in zip(words, points, leaning, strict=True):
        ax.annotate(word, (x, y), fontsize=8, color=colours(int(c) % 10), xytext=(2, 2), textcoords="offset points")
    ax.legend(title="alone, the model says", loc="best")
    ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({explained[-1]:.0%} of variance)")
    ax.set_title(f"word embeddings of the {len(words)} most frequent training words ({vectors.shape[1]}-d), PCA")
    ax.grid(alpha=0.3)
    return saved(fig, path)


def plot_comparison(rows: list[dict[str, Any]], metric: str, data_name: str, path: Path) -> Path:
    """Models side by side (``scripts/compare.py``): the test metric and the fit time (log scale) as bars."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    names = [r["model"] for r in rows]
    left.bar(names, [r[metric] for r in rows], color="tab:blue")
    low = min(r[metric] for r in rows)
    left.set_ylim(max(0.0, low - 0.05), 1.0 if metric.endswith("acc") else None)
    left.set_ylabel(metric)
    right.bar(names, [r["fit_s"] for r in rows], color="tab:orange")
    right.set_yscale("log")
    right.set_ylabel("fit seconds (log)")
    for ax in (left, right):
        ax.tick_params(axis="x", rotation=30)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{data_name}: {metric} and fit time")
    return saved(fig, path)


def plot_folds(scores: list[tuple[int, float | None, float | None]], metric: str, path: Path) -> Path:
    """Cross-validation: each fold's score on the samples it held out (bars, with their mean ± std) and the same
    model's score on the fixed test split (dots)."""
    plt = _pyplot()
    folds = [f + 1 for f, _, _ in scores]
    held = np.array([math.nan if v is None else v for _, v, _ in scores], dtype=float)
    test = np.array([math.nan if v is None else v for _, _, v in scores], dtype=float)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.7 * len(folds) + 2), 3.8))
    ax.bar(folds, held, color="tab:blue", alpha=0.7, label=f"held-out fold: cv/{metric}")
    mean, std = np.nanmean(held), np.nanstd(held, ddof=1) if np.isfinite(held).sum() > 1 else 0.0
    ax.axhline(mean, color="tab:blue", ls="--", label=f"mean {mean:.4f} ± {std:.4f}")
    ax.axhspan(mean - std, mean + std, color="tab:blue", alpha=0.12)
    if np.isfinite(test).any():
        ax.plot(folds, test, "o", color="tab:orange", label=f"fixed test split: test/{metric}")
    finite = np.r_[held[np.isfinite(held)], test[np.isfinite(test)]]
    if finite.size:
        span = max(float(finite.max() - finite.min()), 0.01)
        top = float(finite.max()) + span
        ax.set_ylim(float(finite.min()) - span, min(top, 1.01) if finite.max() <= 1 else top)  # a share stops at 1
    ax.set_xticks(folds)
    ax.set_xlabel("fold")
    ax.set_ylabel(metric)
    ax.set_title(f"{len(folds)}-fold cross-validation: each fold scored on the samples it held out", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return saved(fig, path)
