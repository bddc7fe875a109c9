"""What a convolutional net sees, drawn from a run's own weights and test images (the course's slides Uma convolução,
a kernel per channel summed, Max Pool): the first layer's filters, the maps after each conv and pool stage, and one
convolution output worked out step by step.

Many small maps are tiled into one image per panel (gaps left blank) rather than drawn on an axes each: matplotlib
spends milliseconds per axes, and a figure of 32 filters or 3 images x 6 stages x 6 maps stays well under a second.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from zoo.plots import _pyplot, cell_title

ANNOTATE_UP_TO = 5  # kernels up to 5x5 get their numbers written in each cell


def _tile(tiles: np.ndarray, cols: int, gap: int = 1, top: int = 0) -> np.ndarray:
    """``[N, H, W]`` or ``[N, H, W, 3]`` tiles in a grid of ``cols`` columns, NaN between them (drawn blank);
    ``top`` more blank rows above each tile leave room for a label."""
    n, h, w = tiles.shape[:3]
    rows = -(-n // cols)
    pitch_h, pitch_w = h + gap + top, w + gap
    grid = np.full((rows * pitch_h - gap, cols * pitch_w - gap, *tiles.shape[3:]), np.nan, dtype=np.float32)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        grid[r * pitch_h + top : r * pitch_h + top + h, c * pitch_w : c * pitch_w + w] = tile
    return grid


def _unit(values: np.ndarray, axis: tuple[int, ...] | None = None) -> np.ndarray:
    """Scaled to [0, 1] (over ``axis``, else as a whole): what imshow needs for colour images."""
    low = np.nanmin(values, axis=axis, keepdims=axis is not None)
    high = np.nanmax(values, axis=axis, keepdims=axis is not None)
    return (values - low) / np.maximum(high - low, 1e-12)


def _ink(shown_as: Any, value: float) -> str:
    """Black or white, whichever reads on the colour ``value`` is drawn with."""
    red, green, blue, _ = shown_as.cmap(shown_as.norm(value))
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"


def _cmap(plt: Any, name: str) -> Any:
    return plt.get_cmap(name).with_extremes(bad="white")


def plot_filters(layer: str, weights: np.ndarray, path: Path, total: int | None = None) -> Path:
    """The first convolution's learnt filters ``[out, in, kh, kw]``, one tile per output channel numbered as in the
    other figures. Each filter's kernel for every input channel side by side, on one diverging scale for all (red
    adds the pixel under it, blue subtracts it): the kernels whose outputs the layer sums. Colour inputs also get
    each filter as colour (scaled on its own, as the classic pictures of AlexNet's first layer). ``total``: the
    layer's number of filters, where ``weights`` holds only the first ones."""
    plt = _pyplot()
    out, channels, kh, kw = weights.shape
    cols = min(out, 8 if channels > 1 else 12)
    gap, top = 1 + kw // 3, max(1, round(kh * 0.5))
    bound = float(np.abs(weights).max()) or 1.0
    side_by_side = np.stack([_tile(f, channels, gap=max(1, kw // 4)) for f in weights])
    panels = [(f"kernels of input channels {', '.join(map(str, range(channels)))}" if channels > 1 else "kernels",
               side_by_side, "RdBu_r")]  # fmt: skip
    if channels == 3:
        panels.insert(0, ("as colour (each filter scaled on its own)", _unit(weights.transpose(0, 2, 3, 1), (1, 2, 3)),
                          None))  # fmt: skip
    grids = [_tile(tiles, cols, gap=gap, top=top) for _, tiles, _ in panels]
    widths = [g.shape[1] for g in grids]
    scale = min(0.28, 14.0 / sum(widths))
    fig, axes = plt.subplots(1, len(panels), figsize=(1.5 + scale * sum(widths), 0.9 + scale * grids[0].shape[0]),
                             squeeze=False, gridspec_kw={"width_ratios": widths})  # fmt: skip
    for ax, (title, tiles, cmap), grid in zip(axes[0], panels, grids, strict=True):
        if cmap:
            image = ax.imshow(grid, cmap=_cmap(plt, cmap), vmin=-bound, vmax=bound, interpolation="nearest")
            fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="weight")
        else:
            ax.imshow(np.nan_to_num(grid, nan=1.0), interpolation="nearest")
        tile_w = tiles.shape[2]
        for k in range(out):
            r, c = divmod(k, cols)
            ax.text(c * (tile_w + gap) + (tile_w - 1) / 2, r * (kh + gap + top) + (top - 1) / 2, str(k), ha="center",
                    va="center", fontsize=7)  # fmt: skip
        cell_title(ax, title, fontsize=9)
        ax.axis("off")
    first = f" (the first {out} of {total})" if total and total > out else ""
    fig.suptitle(f"{layer}: learnt filters{first}, {channels}×{kh}×{kw} each", fontsize=10)
    height = 0.9 + scale * grids[0].shape[0]
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - 0.55 / height, bottom=0.02, wspace=0.05)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_feature_maps(inputs: np.ndarray, stages: list[dict[str, Any]], titles: list[str], path: Path) -> Path:
    """A column per test image: first what the net receives (resized and normalised), then a row per conv or pool
    stage with its most active maps, each map on one scale across the images so they compare. Maps that pooling
    shrank are drawn as larger pixels on the same space, so the rows show the resolution lost; the titles give each
    stage's shape, deeper as the channels grow. The whole grid is one image (one axes)."""
    plt = _pyplot()
    n = len(inputs)
    k = max((len(stage["channels"]) for stage in stages), default=1)
    cell_h = max([stage["maps"].shape[-2] for stage in stages] or [inputs.shape[-2]])
    cell_w = max([stage["maps"].shape[-1] for stage in stages] or [inputs.shape[-1]])
    gap, group_gap = max(1, cell_w // 6), cell_w
    group_w = k * cell_w + (k - 1) * gap
    width = n * group_w + (n - 1) * group_gap
    inch = min(10.0 / width, 1.2 / cell_h)  # inches per pixel of the grid
    label = math.ceil(0.24 / inch)  # room above each row for its title
    row_h = label + cell_h
    canvas = np.ones(((1 + len(stages)) * row_h, width, 3), dtype=np.float32)  # white where nothing is drawn
    fig = plt.figure(figsize=(width * inch, canvas.shape[0] * inch + 0.35))
    ax = fig.add_axes((0.0, 0.0, 1.0, canvas.shape[0] * inch / (canvas.shape[0] * inch + 0.35)))
    grey = inputs.shape[1] != 3
    for i, (image, title) in enumerate(zip(inputs, titles, strict=True)):
        x0 = i * (group_w + group_gap)
        shown = _resized(_unit(image[:1] if grey else image), cell_h, cell_w).transpose(1, 2, 0)
        canvas[label : label + cell_h, x0 : x0 + cell_w] = shown  # grey broadcasts to the three colours
        ax.text(x0 - 0.5, label - 1, f"{title}, input {list(inputs.shape[1:])}", fontsize=8, va="bottom")
    viridis = plt.get_cmap("viridis")
    for r, stage in enumerate(stages, start=1):
        maps = _resized(_unit(stage["maps"], axis=(0, 2, 3)), cell_h, cell_w)  # per channel over the images
        colours = viridis(maps)[..., :3]  # [images, channels, H, W, 3]
        top = r * row_h + label
        for i in range(n):
            for c in range(len(stage["channels"])):
                x0 = i * (group_w + group_gap) + c * (cell_w + gap)
                canvas[top : top + cell_h, x0 : x0 + cell_w] = colours[i, c]
        title = f"{stage['name']} ({stage['kind']}) {list(stage['shape'])}: channels {stage['channels']}"
        ax.text(-0.5, top - 1, title, fontsize=8, va="bottom")
    ax.imshow(canvas, interpolation="nearest")
    ax.axis("off")
    fig.suptitle("feature maps of test images after each conv and pool stage (the most active channels)", fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _resized(maps: np.ndarray, h: int, w: int) -> np.ndarray:
    """``[..., H, W]`` to ``[..., h, w]`` by the nearest pixel: a small map as blocks, no smoothing invented."""
    rows = np.arange(h) * maps.shape[-2] // h
    cols = np.arange(w) * maps.shape[-1] // w
    return maps[..., rows[:, None], cols[None, :]]


def plot_convolution(step: dict[str, Any], path: Path, max_channels: int = 3) -> Path:
    """One output value of the first convolution, as the slide Uma convolução computes it: for each input channel
    the filter sees, the input window (boxed on the image), the kernel, their element-wise products and its sum;
    then the channels' sums plus the bias, beside the net's own feature map with that value boxed. The two numbers
    agree: the figure is the net's arithmetic, not an illustration. ``step`` holds the fields of
    ``zoo.nets.inspect.ConvolutionStep``; ``max_channels`` rows at most (the sum counts every channel)."""
    layer, image, index, channel = step["layer"], step["image"], step["index"], step["channel"]
    position, origin, dilation, in_channels = step["position"], step["origin"], step["dilation"], step["in_channels"]
    window, padded, kernel, bias = step["window"], step["padded"], step["kernel"], step["bias"]
    total, value, feature_map = step["total"], step["value"], step["feature_map"]
    from matplotlib.patches import Rectangle

    plt = _pyplot()
    products = window * kernel
    shown = min(len(in_channels), max_channels)
    kh, kw = kernel.shape[1:]
    fig, axes = plt.subplots(shown, 6, figsize=(15, 0.9 + 2.5 * shown), squeeze=False,
                             gridspec_kw={"width_ratios": [1.2, 1, 1, 1, 0.55, 1.2]})  # fmt: skip
    (r0, c0), (dh, dw) = origin, dilation
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    grey = _cmap(plt, "gray")
    low, high = float(min(image.min(), 0.0)), float(image.max())  # padding's zeros on the same scale
    bound, most = float(np.abs(kernel).max()) or 1.0, float(np.abs(products).max()) or 1.0
    for row, c in enumerate(in_channels[:shown]):
        ax = axes[row, 0]
        ax.imshow(image[c], cmap=grey, vmin=low, vmax=high, interpolation="nearest")
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), span_w, span_h, fill=False, edgecolor="red", linewidth=2))
        ax.set_title(f"input channel {c} (test image {index + 1})", fontsize=9)
        ax.axis("off")
        cells = (  # the window on the image's grey scale; weights and products on diverging scales around 0
            (axes[row, 1], window[row], "window x", grey, (low, high), padded[row]),
            (axes[row, 2], kernel[row], f"× kernel w (filter {channel})", "RdBu_r", (-bound, bound), None),
            (axes[row, 3], products[row], "= x · w", "RdBu_r", (-most, most), None),
        )
        for ax, values, title, cmap, (vmin, vmax), pad in cells:
            shown_as = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            if kh <= ANNOTATE_UP_TO and kw <= ANNOTATE_UP_TO:
                size = 9 if max(kh, kw) <= 3 else 7 if max(kh, kw) <= 5 else 5.5
                for (i, j), v in np.ndenumerate(values):
                    text = "pad" if pad is not None and pad[i, j] else f"{v:.2f}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=size, color=_ink(shown_as, v))
            cell_title(ax, title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 4].axis("off")
        axes[row, 4].text(0.0, 0.5, f"Σ = {products[row].sum():.4f}", fontsize=11, va="center")
    for ax in axes[1:, 5]:
        ax.axis("off")
    ax = axes[0, 5]
    ax.imshow(feature_map, cmap="viridis", interpolation="nearest")
    ax.add_patch(Rectangle((position[1] - 0.5, position[0] - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set_title(f"the net's output map {channel}:\n{value:.4f} at {tuple(position)}", fontsize=9)
    ax.axis("off")
    sums = " + ".join(f"{products[k].sum():.4f}" for k in range(shown))
    rest = len(in_channels) - shown
    more = f" + {products[shown:].sum():.4f} ({rest} more channels)" if rest else ""
    fig.suptitle(
        f"{layer}, filter {channel}, output {tuple(position)}: {sums}{more} + bias {bias:.4f} = {total:.4f}; "
        f"the net computed {value:.4f}",
        fontsize=11,
    )
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - 0.75 / (0.9 + 2.5 * shown), bottom=0.03, wspace=0.12,
                        hspace=0.25)  # fmt: skip
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
