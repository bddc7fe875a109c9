"""Figures that draw a multirun's jobs together, so that a comparison the courses make (SGD vs mini-batch vs full
batch, with vs without dropout, narrow vs wide, L1 vs L2) is one picture instead of a folder of separate runs.

Each figure gets the jobs as data (:class:`SweepJob`, read by ``zoo.outputs.SweepFolder``) and names a job by what
varied: its overrides, kept to the keys whose values differ between the jobs drawn.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.plots import CURVE_METRICS, _pyplot, tight

MAX_PATH_POINTS = 500  # an optimiser path drawn with more points is only slower to draw and read, not clearer
SMALL_WEIGHT = 1e-3  # |w| below this counts as zero, as test/sparsity counts it


@dataclass
class SweepJob:
    """One finished job of a multirun, as the figures need it: its overrides, its history and final metrics."""

    job: int
    overrides: str
    history: list[dict[str, float]]
    metrics: dict[str, float] = field(default_factory=dict)
    run_dir: Path = Path()
    config: dict[str, Any] = field(default_factory=dict)

    def last(self, key: str) -> float:
        """``key`` in the history's last row that holds it (NaN if none): the value after the final epoch."""
        return next((row[key] for row in reversed(self.history) if not math.isnan(row.get(key, math.nan))), math.nan)


def split_overrides(text: str) -> dict[str, str]:
    """``"a=1 model.net.hidden=[8, 8] +b='x y'"`` -> ``{"a": "1", "model.net.hidden": "[8, 8]", "b": "'x y'"}``:
    split at spaces outside brackets and quotes (a list or quoted value may hold spaces), ``+``/``~`` dropped."""
    parts, depth, quote, word = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char.isspace() and depth == 0:
            parts.append(word)
            word = ""
            continue
        word += char
    parts.append(word)
    pairs = (part.split("=", 1) for part in parts if "=" in part)
    return {key.lstrip("+~"): value for key, value in pairs}


def varying_keys(overrides: list[str]) -> list[str]:
    """The override keys whose values differ between the jobs (a key one job lacks differs), in their order."""
    splits = [split_overrides(text) for text in overrides]
    keys = list(dict.fromkeys(key for split in splits for key in split))
    return [key for key in keys if len({split.get(key) for split in splits}) > 1]


def job_labels(overrides: list[str]) -> list[str]:
    """A legend entry per job: the keys that vary, shortened to their last part where that stays unambiguous
    (``model.net.hidden=[8]`` -> ``hidden=[8]``); ``job N`` where nothing varies."""
    keys = varying_keys(overrides)
    tails = [key.rsplit(".", 1)[-1] for key in keys]
    short = {key: tail if tails.count(tail) == 1 else key for key, tail in zip(keys, tails, strict=True)}
    labels = []
    for i, text in enumerate(overrides):
        split = split_overrides(text)
        labels.append(", ".join(f"{short[k]}={split.get(k, '(default)')}" for k in keys) or f"job {i}")
    return labels


def numeric_value(value: str | None) -> float | None:
    """A setting as a number: ``0.01``, ``128`` or a one-element list ``[128]`` (a single hidden layer's width)."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1].strip()
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def numeric_setting(overrides: list[str]) -> tuple[str, list[float]] | None:
    """``(key, each job's value)`` when exactly one setting varies and every job gives it as a number, else None:
    what a model-complexity graph puts on its x axis."""
    keys = varying_keys(overrides)
    if len(keys) != 1:
        return None
    values = [numeric_value(split_overrides(text).get(keys[0])) for text in overrides]
    return None if any(v is None for v in values) else (keys[0], [float(v) for v in values])  # type: ignore[arg-type]


def curve_metric(jobs: list[SweepJob]) -> str | None:
    """The first validation metric any job logged (``acc``, ``rmse``, ...), drawn beside the loss."""
    return next((k for k in CURVE_METRICS if any(f"val/{k}" in row for job in jobs for row in job.history)), None)


def curves(jobs: list[SweepJob], key: str) -> list[tuple[list[float], list[float]]]:
    """Each job's ``(epochs, values)`` of ``key`` (``train/loss``, ``val/acc``...), from its own history."""
    out = []
    for job in jobs:
        rows = [row for row in job.history if not math.isnan(row.get(key, math.nan))]
        out.append(([row["epoch"] for row in rows], [row[key] for row in rows]))
    return out


def _footnote(fig: Any, note: str) -> None:
    if note:
        fig.text(0.01, 0.01, note, fontsize=8, color="tab:red", ha="left", va="bottom", wrap=True)


def _finish(fig: Any, path: Path, note: str) -> None:
    plt = _pyplot()
    with warnings.catch_warnings():  # a long legend (a search's many trials) cannot fit: the figure is drawn anyway
        warnings.simplefilter("ignore", UserWarning)
        tight(fig, rect=(0, 0.05 if note else 0, 1, 1))
    _footnote(fig, note)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_overlay(jobs: list[SweepJob], labels: list[str], path: Path, title: str = "", note: str = "") -> Path:
    """Train (dashed) and validation (solid) loss per epoch of every job on shared axes, a colour per job, and the
    first validation metric beside it: where the curves part is what the varied setting changed."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    metric = curve_metric(jobs)
    keys = [("loss", ("train/loss", "val/loss"))] + ([(metric, (f"val/{metric}",))] if metric else [])
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.4), squeeze=False)
    colours = plt.get_cmap("tab10" if len(jobs) <= 10 else "turbo")
    for ax, (name, series) in zip(axes[0], keys, strict=True):
        for key in series:
            style = "--" if key.startswith("train/") else "-"
            for i, (epochs, values) in enumerate(curves(jobs, key)):
                colour = colours(i if len(jobs) <= 10 else i / max(len(jobs) - 1, 1))
                ax.plot(epochs, values, style, color=colour, label=labels[i] if key == series[-1] else None)
        positive = all(v > 0 for key in series for _, values in curves(jobs, key) for v in values)
        if name == "loss" and positive:
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name if name == "loss" else f"val/{name}")
        ax.set_title("train (dashed) and val (solid) loss" if name == "loss" else f"val/{name}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or f"{len(jobs)} jobs on shared axes")
    _finish(fig, path, note)
    return path


def plot_complexity(
    jobs: list[SweepJob], key: str, values: list[float], path: Path, title: str = "", note: str = ""
) -> Path:
    """The model-complexity graph: final train and validation loss (and the test metric, when the runs report one)
    against the one setting that varied; the best validation loss is marked. Underfitting is high on both
    curves, overfitting is where validation climbs away from training."""
    plt = _pyplot()
    order = np.argsort(values)
    x = np.asarray(values)[order]
    train = np.array([jobs[i].last("train/loss") for i in order])
    val = np.array([jobs[i].last("val/loss") for i in order])
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    ax.plot(x, train, "-o", color="tab:blue", label="final train loss")
    ax.plot(x, val, "-s", color="tab:orange", label="final val loss")
    if np.isfinite(val).any():
        best = int(np.nanargmin(val))
        ax.plot(
            x[best], val[best], "*", color="tab:red", markersize=16, label=f"best val: {x[best]:g} ({val[best]:.4f})"
        )
    if x.min() > 0 and x.max() / x.min() >= 20:
        ax.set_xscale("log")
    ax.set_xticks(x, [f"{v:g}" for v in x])
    ax.minorticks_off()
    ax.set_xlabel(key)
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    metric = next((f"test/{k}" for k in CURVE_METRICS if any(f"test/{k}" in job.metrics for job in jobs)), None)
    if metric:
        right = ax.twinx()
        test = [jobs[i].metrics.get(metric, math.nan) for i in order]
        (line,) = right.plot(x, test, ":^", color="tab:green", label=metric)
        right.set_ylabel(metric)
        handles, names = handles + [line], names + [metric]
    ax.legend(handles, names, fontsize=8, loc="best")
    ax.set_title(title or f"model complexity: loss against {key}")
    _finish(fig, path, note)
    return path


def plot_weights(weights: list[np.ndarray], labels: list[str], path: Path, title: str = "", note: str = "") -> Path:
    """A histogram of each job's net weights (matrices and kernels, not biases) on shared bins, counts on a log
    scale, with each job's share of ``|w| < 1e-3``: L1 piles weights at zero, L2 shrinks them all."""
    plt = _pyplot()
    reach = max((float(np.abs(w).max()) for w in weights if w.size), default=1.0) or 1.0
    bins = np.linspace(-reach, reach, 122)  # 121 bins, the middle one centred on 0: where L1 piles the weights
    fig, ax = plt.subplots(figsize=(8, 4.6))
    colours = plt.get_cmap("tab10")
    for i, (w, label) in enumerate(zip(weights, labels, strict=True)):
        share = float((np.abs(w) < SMALL_WEIGHT).mean()) if w.size else math.nan
        ax.hist(w, bins=bins, histtype="step", linewidth=1.6, color=colours(i % 10),
                label=f"{label}: {share:.1%} of {w.size:,} with |w| < {SMALL_WEIGHT:g}")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("weight")
    ax.set_ylabel("count (log)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "net weights (matrices and kernels) of each job")
    _finish(fig, path, note)
    return path


def subsample(points: np.ndarray, limit: int = MAX_PATH_POINTS) -> np.ndarray:
    """At most ``limit`` rows of ``points``, evenly spaced, the first and last always kept."""
    if len(points) <= limit:
        return points
    return points[np.unique(np.linspace(0, len(points) - 1, limit).round().astype(int))]


def plot_gd_paths(
    surface: dict[str, np.ndarray], paths: list[np.ndarray], labels: list[str], path: Path, title: str = "",
    note: str = "",
) -> Path:  # fmt: skip
    """Every job's optimiser path (``[steps, 2]``, on the surface's two axes) on one contour plot of the training
    loss, the closed-form minimum starred: full batch walks straight down, SGD zigzags, mini-batch sits between."""
    plt = _pyplot()
    x, y, loss = (np.asarray(surface[k], dtype=float) for k in ("x", "y", "loss"))
    axis_names = [str(name) for name in np.asarray(surface["labels"]).tolist()]
    fig, ax = plt.subplots(figsize=(7.5, 6))
    low, high = float(np.nanmin(loss)), float(np.nanmax(loss))
    levels = np.geomspace(max(low, 1e-6), high, 25) if high > max(low, 1e-6) else 10
    contour = ax.contour(x, y, loss, levels=levels, cmap="viridis", linewidths=0.8)
    fig.colorbar(contour, ax=ax, label="training loss (MSE)")
    colours = plt.get_cmap("tab10")
    for i, (points, label) in enumerate(zip(paths, labels, strict=True)):
        drawn = subsample(points)
        colour = colours(i % 10)
        ax.plot(drawn[:, 0], drawn[:, 1], "-", color=colour, linewidth=1.2, alpha=0.85,
                label=f"{label} ({len(points) - 1:,} steps)")  # fmt: skip
        ax.plot(*drawn[0], "o", color=colour, markersize=6)
        ax.plot(*drawn[-1], "X", color=colour, markersize=8, markeredgecolor="black")
    minimum = np.asarray(surface["minimum"], dtype=float)
    ax.plot(minimum[0], minimum[1], "*", color="tab:red", markersize=18, markeredgecolor="black",
            label=f"closed-form minimum ({minimum[0]:.3f}, {minimum[1]:.3f})")  # fmt: skip
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or "gradient-descent paths (o start, X end)")
    _finish(fig, path, note)
    return path
