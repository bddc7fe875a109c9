"""Convolution arithmetic: the output size of a conv, pooling or transposed-conv layer, as torch computes it.

Sizes are per spatial dimension (square inputs and kernels, as on the slides). The cases and the figure follow
Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (2016). Pure arithmetic: no torch here,
and matplotlib is imported only by ``plot_conv_cases``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import ZooError


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int | str = 0, dilation: int = 1) -> int:
    """Output size of ``torch.nn.Conv2d``: floor((size + 2*padding - dilation*(kernel-1) - 1) / stride) + 1.

    ``padding`` may also be ``"valid"`` (no padding) or ``"same"`` (output size = input size; stride 1 only).
    """
    _check_at_least(size=(size, 1), kernel=(kernel, 1), stride=(stride, 1), dilation=(dilation, 1))
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if stride != 1:
                raise ZooError(
                    f"padding 'same' needs stride 1 (got stride {stride}), as in torch; "
                    "use an integer padding for strided convolutions"
                )
            return size
        else:
            raise ZooError(f"padding {padding!r} is unknown; use an integer >= 0, 'valid' or 'same'")
    _check_at_least(padding=(padding, 0))
    output = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if size + 2 * padding < dilation * (kernel - 1) + 1:
        raise _does_not_fit("kernel", size, kernel, padding, dilation, output, max_padding=None)
    return output


def pool_output_size(
    size: int, kernel: int, stride: int | None = None, padding: int = 0, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Output size of ``torch.nn.MaxPool2d``; also of ``torch.nn.AvgPool2d``, which has no dilation (leave it at 1).

    ``stride`` defaults to ``kernel``. With ``ceil_mode`` the division rounds up, so a last window may hang over the
    padded input, but as in torch it must start inside the input or its left padding. Torch also requires
    ``padding <= kernel // 2`` (of the kernel itself, whatever the dilation).
    """
    stride = kernel if stride is None else stride
    _check_at_least(
        size=(size, 1), kernel=(kernel, 1), stride=(stride, 1), padding=(padding, 0), dilation=(dilation, 1)
    )
    if padding > kernel // 2:
        raise ZooError(
            f"padding {padding} is more than half the {kernel}x{kernel} pooling window, which torch rejects; "
            f"use padding <= {kernel // 2} or a larger window"
        )
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    output = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (output - 1) * stride >= size + padding:
        output -= 1
    if output < 1:
        raise _does_not_fit("pooling window", size, kernel, padding, dilation, output, max_padding=kernel // 2)
    return output


def conv_transpose_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0, dilation: int = 1
) -> int:
    """Output size of ``torch.nn.ConvTranspose2d``.

    That is (size-1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1;
    torch requires ``output_padding`` smaller than ``stride`` or than ``dilation``.
    """
    _check_at_least(
        size=(size, 1),
        kernel=(kernel, 1),
        stride=(stride, 1),
        padding=(padding, 0),
        output_padding=(output_padding, 0),
        dilation=(dilation, 1),
    )
    if output_padding >= max(stride, dilation):
        raise ZooError(
            f"output_padding {output_padding} must be smaller than stride {stride} or dilation {dilation}, "
            f"as torch requires; use output_padding <= {max(stride, dilation) - 1}"
        )
    unpadded = (size - 1) * stride + dilation * (kernel - 1) + output_padding + 1
    output = unpadded - 2 * padding
    if output < 1:
        raise ZooError(
            f"padding {padding} leaves nothing of a {kernel}x{kernel} transposed convolution of a {size}-pixel input "
            f"(output size would be {output}); use padding <= {(unpadded - 1) // 2}"
        )
    return output


@dataclass(frozen=True)
class ConvCase:
    """One convolution of the slides: input size i, kernel k, stride s, padding p."""

    title: str
    size: int
    kernel: int
    stride: int
    padding: int

    @property
    def output(self) -> int:
        """Output size o of this convolution."""
        return conv_output_size(self.size, self.kernel, self.stride, self.padding)

    @property
    def label(self) -> str:
        """The case's numbers, as ``i=5, k=3, s=2, p=1 -> o=3``."""
        return f"i={self.size}, k={self.kernel}, s={self.stride}, p={self.padding} -> o={self.output}"


# The slide "Outros tipos de padding/strides" (Dumoulin & Visin, figures 2.1-2.3 and 2.5-2.7)
SLIDE_CASES: list[ConvCase] = [
    ConvCase("No padding, no strides", size=4, kernel=3, stride=1, padding=0),
    ConvCase("Arbitrary padding, no strides", size=5, kernel=4, stride=1, padding=2),
    ConvCase("Half padding, no strides", size=5, kernel=3, stride=1, padding=1),
    ConvCase("Full padding, no strides", size=5, kernel=3, stride=1, padding=2),
    ConvCase("No padding, strides", size=5, kernel=3, stride=2, padding=0),
    ConvCase("Padding, strides", size=5, kernel=3, stride=2, padding=1),
    ConvCase("Padding, strides (odd)", size=6, kernel=3, stride=2, padding=1),
]


def plot_conv_cases(path: str | Path, cases: Sequence[ConvCase] = SLIDE_CASES) -> Path:
    """Draw each case (padded input, first kernel window, output) in one figure; save it as a PNG at ``path``."""
    from matplotlib.collections import PatchCollection
    from matplotlib.figure import Figure  # a bare Figure renders with Agg and leaves pyplot's state alone
    from matplotlib.patches import Rectangle

    if not cases:
        raise ZooError("no convolution cases to plot; pass at least one ConvCase")
    cols = min(4, len(cases))
    rows = math.ceil(len(cases) / cols)
    fig = Figure(figsize=(4 * cols, 3.4 * rows), dpi=100, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, case in zip(axes, cases, strict=False):
        padded, out, pad = case.size + 2 * case.padding, case.output, case.padding
        left, top = padded + 1.5, (padded - out) / 2  # output grid to the right, centred vertically
        cells: list[tuple[float, float, str, str]] = []  # (x, y, face colour, line style), one per unit cell
        for row, col in itertools.product(range(padded), repeat=2):
            inside = pad <= row < pad + case.size and pad <= col < pad + case.size
            cells.append((col, row, "#6fa8dc", "-") if inside else (col, row, "white", "--"))
        for row, col in itertools.product(range(out), repeat=2):
            cells.append((left + col, top + row, "#38761d" if row == col == 0 else "#93c47d", "-"))
        grid = PatchCollection(
            [Rectangle((x, y), 1, 1) for x, y, _, _ in cells],
            facecolors=[face for _, _, face, _ in cells],
            linestyles=[style for _, _, _, style in cells],
            edgecolors="0.3",
        )
        ax.add_collection(grid, autolim=False)  # one collection: hundreds of add_patch calls take a second
        ax.add_patch(Rectangle((0, 0), case.kernel, case.kernel, facecolor="0.4", alpha=0.5, edgecolor="black", lw=2))
        ax.annotate("", (left - 0.2, padded / 2), (padded + 0.2, padded / 2), arrowprops={"arrowstyle": "->"})
        ax.set_xlim(-0.2, left + out + 0.2)
        ax.set_ylim(padded + 0.2, -0.2)  # row 0 on top
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"{case.title}\n{case.label}", fontsize=10)
    for ax in axes[len(cases) :]:
        ax.set_visible(False)
    fig.suptitle(
        "o = floor((i + 2p - k) / s) + 1\n"
        "blue: input, dashed: padding, grey: first kernel window, dark green: its output, green: output"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


def _check_at_least(**values: tuple[int, int]) -> None:
    for name, (value, minimum) in values.items():
        if value < minimum:
            raise ZooError(f"{name} {value} is invalid; use {name} >= {minimum}")


def _does_not_fit(
    what: str, size: int, kernel: int, padding: int, dilation: int, output: int, max_padding: int | None
) -> ZooError:
    span = dilation * (kernel - 1) + 1
    shape = f"{kernel}x{kernel} {what}" + (
        f" with dilation {dilation} (spanning {span} pixels)" if dilation > 1 else ""
    )
    fixes = [f"a smaller {what}" + (" or dilation" if dilation > 1 else "")]
    needed = math.ceil((span - size) / 2)
    if max_padding is None or needed <= max_padding:
        fixes.insert(0, f"padding >= {needed}")
    fixes.append("fewer pooling layers before it")
    return ZooError(
        f"a {shape} does not fit a {size}-pixel input with padding {padding} (output size would be {output}); "
        f"use {', '.join(fixes[:-1])}, or {fixes[-1]}"
    )
