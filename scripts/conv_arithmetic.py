"""Convolution arithmetic from the command line.

``python scripts/conv_arithmetic.py`` draws the slide's seven cases to ``conv_arithmetic.png`` and prints them;
``python scripts/conv_arithmetic.py --size 28 --kernel 5 [--stride S --padding P --dilation D] [--pool]`` prints the
output size of one conv (or max/avg pooling) layer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zoo.errors import ZooError, report_user_errors
from zoo.nets.conv_arith import SLIDE_CASES, conv_output_size, plot_conv_cases, pool_output_size


def _padding(text: str) -> int | str:
    """An integer padding, or a word such as 'same' (checked by the arithmetic)."""
    return int(text) if text.lstrip("-").isdigit() else text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; --size and --kernel go together."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("conv_arithmetic.png"), help="where to write the figure")
    parser.add_argument("--size", type=int, help="input size i (pixels per side)")
    parser.add_argument("--kernel", type=int, help="kernel (or pooling window) size k")
    parser.add_argument("--stride", type=int, help="stride s (default 1, or the kernel size with --pool)")
    parser.add_argument("--padding", type=_padding, default=0, help="padding p: an integer, or 'same' / 'valid'")
    parser.add_argument("--dilation", type=int, default=1, help="dilation d (default 1)")
    parser.add_argument("--pool", action="store_true", help="a max/avg pooling layer instead of a convolution")
    args = parser.parse_args(argv)
    if (args.size is None) != (args.kernel is None):
        parser.error("--size and --kernel go together")
    return args


def run(args: argparse.Namespace) -> None:
    """Print one layer's output size, or draw and list the slide's cases."""
    if args.size is not None:
        if args.pool:
            if isinstance(args.padding, str):
                raise ZooError(
                    f"--pool takes an integer --padding (got {args.padding!r}); 'same' and 'valid' are for convolutions"
                )
            size = pool_output_size(args.size, args.kernel, args.stride, args.padding, args.dilation)
        else:
            stride = 1 if args.stride is None else args.stride
            size = conv_output_size(args.size, args.kernel, stride, args.padding, args.dilation)
        print(f"output size: {size}")
        return
    path = plot_conv_cases(args.out)
    print(f"{'case':<32}{'i':>4}{'k':>4}{'s':>4}{'p':>4}{'o':>4}")
    for case in SLIDE_CASES:
        print(f"{case.title:<32}{case.size:>4}{case.kernel:>4}{case.stride:>4}{case.padding:>4}{case.output:>4}")
    print(f"figure: {path}")


if __name__ == "__main__":
    report_user_errors(run, parse_args())
