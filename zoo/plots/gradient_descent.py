"""The first lesson's pictures, drawn from a linear fit's own numbers: the loss surface L(w, b) with the path the
optimiser took, and the fitted line over the data at a few moments of training (still, and as an animation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.plots import _pyplot, saved

FRAMES = 40  # the animation's frames, spread over the steps (denser at the start, where the line moves most)
MAX_DRAWN = 2000  # path points drawn; a longer path (SGD on many samples) is thinned, its first and last kept


def thinned(n: int, keep: int) -> np.ndarray:
    """At most ``keep`` indices of ``range(n)``, evenly spread, the first and last included."""
    return np.unique(np.linspace(0, n - 1, min(n, keep)).round().astype(int)) if n else np.arange(0)


def plot_loss_surface(surface: dict[str, Any], facts: dict[str, Any], path: Path) -> Path:
    """Contours of the training loss over the grid, the optimiser's path (a dot per step), its start and end, and the
    minimum (least squares for MSE)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    levels = np.quantile(surface["loss"], np.linspace(0, 1, 22) ** 2)  # denser near the bottom of the bowl
    shown = ax.contourf(surface["x"], surface["y"], surface["loss"], levels=np.unique(levels), cmap="viridis_r")
    ax.contour(surface["x"], surface["y"], surface["loss"], levels=np.unique(levels), colors="white", linewidths=0.3)
    fig.colorbar(shown, ax=ax, label="training loss")
    points = surface["path"][thinned(len(surface["path"]), MAX_DRAWN)]
    ax.plot(points[:, 0], points[:, 1], "-", color="tab:red", lw=1, alpha=0.8)
    ax.plot(points[:, 0], points[:, 1], ".", color="tab:red", ms=3, label=f"optimiser path ({facts['steps']} steps)")
    ax.plot(*points[0], "o", color="white", mec="black", ms=8, label="start")
    ax.plot(*points[-1], "s", color="tab:red", mec="black", ms=7, label=f"end ({facts['gap']:.2%} from the minimum)")
    where = "least squares" if surface["closed_form"] else "lowest point of the grid"
    ax.plot(*surface["minimum"], "*", color="gold", mec="black", ms=16, label=f"minimum ({where})")
    x_label, y_label = surface["labels"]
    ax.set_xlabel(f"{x_label} (standardised units)")
    ax.set_ylabel(f"{y_label} (standardised units)")
    ax.set_title(f"loss surface L({x_label}, {y_label}) and the optimiser's path", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return saved(fig, path)


def plot_fitted_lines(
    x: np.ndarray, y: np.ndarray, lines: list[tuple[str, float, float]], names: tuple[str, str], path: Path
) -> Path:
    """The training data and the line ``y = w x + b`` at each of ``lines`` (label, w, b), in the data's units."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.scatter(x, y, s=10, color="tab:gray", alpha=0.6, label="training data")
    span = np.array([x.min(), x.max()])
    for (label, w, b), colour in zip(lines, ("tab:orange", "tab:blue", "tab:red"), strict=False):
        ax.plot(span, w * span + b, color=colour, lw=2, label=f"{label}: {names[1]} = {w:.3g} × {names[0]} + {b:.3g}")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title("the fitted line during training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return saved(fig, path)


def animate_fit(
    x: np.ndarray, y: np.ndarray, frames: list[tuple[int, int, float, list[float], float]], names: tuple[str, str],
    path: Path,
) -> Path:  # fmt: skip
    """A GIF of the line moving: ``frames`` holds ``(step, epoch, loss, [w], b)`` per recorded step; ``FRAMES`` of
    them are drawn, spaced geometrically so that the first steps, where the line moves most, all show."""
    plt = _pyplot()
    from PIL import Image

    n = len(frames)
    picked = np.unique(np.r_[0, np.geomspace(1, max(n - 1, 1), FRAMES - 1).round().astype(int)].clip(0, n - 1))
    fig, ax = plt.subplots(figsize=(5.2, 3.8), dpi=70)
    ax.scatter(x, y, s=8, color="tab:gray", alpha=0.6)
    span = np.array([x.min(), x.max()])
    low, high = float(y.min()), float(y.max())
    ax.set_ylim(low - 0.3 * (high - low), high + 0.3 * (high - low))
    ax.set_xlim(*span)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    title = ax.set_title(" ", fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    background = fig.canvas.copy_from_bbox(fig.bbox)  # the data and axes, drawn once; each frame adds the line
    (line,) = ax.plot(span, span * 0, color="tab:red", lw=2)
    images = []
    for i in picked:
        step, epoch, loss, weights, bias = frames[i]
        line.set_ydata(weights[0] * span + bias)
        title.set_text(f"step {step} (epoch {epoch}): {names[1]} = {weights[0]:.3g} × {names[0]} + {bias:.3g}, "
                       f"loss {loss:.3g}")  # fmt: skip
        fig.canvas.restore_region(background)
        ax.draw_artist(line)
        fig.draw_artist(title)
        images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]).convert("P", palette=1))
    plt.close(fig)
    images[0].save(path, save_all=True, append_images=images[1:], duration=[125] * (len(images) - 1) + [1500],
                   loop=0)  # fmt: skip
    return path
