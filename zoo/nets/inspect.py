"""What a convolutional net computes on a few images, as numbers for the figures of the course's CNN slides (Uma
convolução, a kernel per channel summed, Max Pool): the first convolution's learnt filters, the maps after each conv
and pool stage, and one output value of the first convolution worked out by hand, window times kernel summed plus
bias, beside the value the net computed there.

Plain torch, found from the net's modules alone (any ``nn.Conv2d``, whatever the model): one forward pass of the
images with hooks, nothing kept on the net afterwards.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Layers that work on image maps: a stage of the figure holds at least one of them.
SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d, nn.LPPool2d)
MAX_STAGES = 8  # rows of maps a figure stays readable (and cheap) with: a deep net shows its top-level stages
CHANNELS = 6  # maps shown per stage: the most active ones
MAX_FILTERS = 64  # first-layer filters drawn (a wide stem's first 64)


def has_convolutions(net: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in net.modules())


def stages(net: nn.Module, limit: int = MAX_STAGES) -> list[tuple[str, nn.Module]]:
    """The modules whose outputs the feature-map figure shows: the finest level of the net's module tree with at
    most ``limit`` modules holding a convolution or a pool. A small CNN shows each conv and pool layer; a ResNet
    its stem and stages; timm's backbones their top-level blocks."""
    level = [(type(net).__name__, net)]
    while True:
        deeper = []
        for name, module in level:
            children = list(module.named_children()) or [("", module)]
            prefix = "" if module is net else f"{name}."
            deeper += [(f"{prefix}{n}" if n else name, c) for n, c in children if _spatial(c)]
        if len(deeper) > limit or [m for _, m in deeper] == [m for _, m in level]:
            return level
        level = deeper


def _spatial(module: nn.Module) -> bool:
    return any(isinstance(m, SPATIAL) for m in module.modules())


@dataclass
class StageMaps:
    """One row of the feature-map figure: a stage's output for each image, its most active channels."""

    name: str
    kind: str  # the module's class name
    shape: tuple[int, ...]  # one image's output, [C, H, W]
    channels: list[int]  # the channels shown
    maps: np.ndarray  # [images, len(channels), H, W]


@dataclass
class ConvolutionStep:
    """One output value of a convolution, as the slide computes it: the input window under the kernel (per input
    channel the filter sees), times the kernel, summed over the window and the channels, plus the bias."""

    layer: str
    image: np.ndarray  # the convolution's input for that image, [C_in, H, W] (before padding)
    index: int  # which of the images
    channel: int  # the filter (output channel)
    position: tuple[int, int]  # (row, column) in the output map
    origin: tuple[int, int]  # the window's top-left pixel in the input; negative where it starts in the padding
    dilation: tuple[int, int]
    in_channels: list[int]  # the input channels the filter sees (all of them unless the convolution is grouped)
    window: np.ndarray  # [len(in_channels), kh, kw], zeros where the window lies in zero padding
    padded: np.ndarray  # bool, same shape: which window cells are padding
    kernel: np.ndarray  # [len(in_channels), kh, kw]
    bias: float
    total: float  # (window * kernel).sum() + bias, in float64
    value: float  # what the net computed at that position
    feature_map: np.ndarray  # the filter's whole output map for that image, [H_out, W_out]


def look_inside(net: nn.Module, x: torch.Tensor, limit: int = MAX_STAGES) -> dict[str, Any]:
    """``x`` (what the net receives: resized and normalised images, ``[N, C, H, W]``) through ``net`` once, in the
    mode it is in, without gradients; returns the figures' data as plain dicts and arrays:

    - ``filters``: the first convolution's weights ``[out, in, kh, kw]`` (as many as ``MAX_FILTERS``) and its name;
    - ``feature_maps``: the inputs and a :class:`StageMaps` per stage (see :func:`stages`) that outputs image maps;
    - ``convolution``: a :class:`ConvolutionStep` at the first convolution's largest output over the images.
    """
    shown = stages(net, limit)
    outputs: dict[str, torch.Tensor] = {}
    first: list[tuple[str, nn.Conv2d, torch.Tensor, torch.Tensor]] = []

    def keep(name: str):
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[-2] * out.shape[-1] > 1:
                outputs.setdefault(name, out.detach().float().cpu())

        return hook

    def first_conv(name: str):
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            if not first and isinstance(out, torch.Tensor):
                first.append((name, module, args[0].detach().float().cpu(), out.detach().float().cpu()))

        return hook

    handles = [module.register_forward_hook(keep(name)) for name, module in shown]
    handles += [m.register_forward_hook(first_conv(n)) for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            net.forward(x)  # forward, not __call__: a compiled net would recompile for the hooks
    finally:
        for handle in handles:
            handle.remove()
    if not first:
        return {}
    name, conv, conv_in, conv_out = first[0]
    maps = [_stage_maps(n, type(m).__name__, outputs[n]) for n, m in shown if n in outputs]
    weights = conv.weight.detach().float().cpu()[:MAX_FILTERS].numpy()
    return {
        "filters": {"layer": name, "weights": weights, "total": conv.out_channels},
        "feature_maps": {"inputs": x.detach().float().cpu().numpy(), "stages": [asdict(s) for s in maps]},
        "convolution": asdict(convolution_step(name, conv, conv_in, conv_out)),
    }


def _stage_maps(name: str, kind: str, out: torch.Tensor, k: int = CHANNELS) -> StageMaps:
    """The ``k`` channels with the largest mean absolute output over the images (so no dead map takes a place)."""
    strength = out.abs().mean(dim=(0, 2, 3))
    channels = sorted(strength.topk(min(k, len(strength))).indices.tolist())
    return StageMaps(name, kind, tuple(out.shape[1:]), channels, out[:, channels].numpy())


def convolution_step(name: str, conv: nn.Conv2d, x: torch.Tensor, out: torch.Tensor) -> ConvolutionStep:
    """The output value of ``conv`` at its largest activation over ``out`` (``conv(x)``), recomputed from the input
    window, the kernel and the bias, with the padding, stride, dilation and groups the layer has."""
    n, o, i, j = np.unravel_index(int(out.argmax()), tuple(out.shape))
    left, right, top, bottom = _padding(conv)
    image = x[n]
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    padded = F.pad(image[None], (left, right, top, bottom), mode=mode)[0]
    pad_mask = F.pad(torch.zeros_like(image[None, :1]), (left, right, top, bottom), value=1.0)[0, 0].bool()
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    per_group = conv.in_channels // conv.groups
    group = o // (conv.out_channels // conv.groups)
    seen = list(range(group * per_group, (group + 1) * per_group))
    rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
    cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
    window = padded[seen, rows, cols]
    kernel = conv.weight.detach().float().cpu()[o]
    bias = float(conv.bias[o].detach()) if conv.bias is not None else 0.0
    total = float((window.double() * kernel.double()).sum()) + bias
    return ConvolutionStep(
        layer=name,
        image=image.numpy(),
        index=int(n),
        channel=int(o),
        position=(int(i), int(j)),
        origin=(int(i) * sh - top, int(j) * sw - left),
        dilation=(dh, dw),
        in_channels=seen,
        window=window.numpy(),
        padded=pad_mask[rows, cols].expand(len(seen), -1, -1).numpy(),
        kernel=kernel.numpy(),
        bias=bias,
        total=total,
        value=float(out[n, o, i, j]),
        feature_map=out[n, o].numpy(),
    )


def _padding(conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) pixels of padding, as torch pads: ``same`` puts the odd one on the right/bottom."""
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            return 0, 0, 0, 0
        total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size, strict=True)]
        (th, tw) = total
        return tw // 2, tw - tw // 2, th // 2, th - th // 2
    ph, pw = conv.padding
    return pw, pw, ph, ph
