"""Drop-in replacements for ``nn.Tanh``, ``nn.AvgPool2d``, ``nn.Conv2d`` and ``nn.Dropout`` that compute the same
function faster where torch's own kernel is slow for the small tensors of the courses' nets (LeNet-5 most of all).

Measured on a 2-core AVX-512 CPU, forward and backward, LeNet-5's tensors at batch 128:

- ``torch.tanh`` on 602k floats takes 0.8 ms, ``torch.sigmoid`` 0.13 ms: torch's AVX-512 tanh kernel is slow.
  ``Tanh`` computes tanh(x) = 2 sigmoid(2x) - 1 there (absolute error under 2e-7, against 3e-8 for torch.tanh;
  where the AVX2 kernels run, sigmoid is the slower one, so torch.tanh stays).
- ``F.avg_pool2d`` over 2x2 windows takes 0.57 ms forward; adding the four strided quarters of the input takes
  0.17 ms and gives the same floats (on the AVX2 kernels too). Its backward, 0.79-0.84 ms, is 0.27-0.32 ms as two
  row copies (each gradient value twice along a row, then each row twice), again the same floats.
- A convolution whose kernel covers its whole input (LeNet-5's C5: 5x5 on 5x5 maps) is a dense layer: as
  ``F.linear`` it takes 0.35 ms against the convolution's 0.96 ms. This one holds on every device.
- ``F.dropout`` on the CPU draws its mask with ``bernoulli_``: 0.61 ms for a 128x512 batch, twice the time of the
  dense layer before it (a fifth of the default MLP run's training). ``Dropout`` draws 16 random bits per value in
  bulk (``random_`` on 64-bit words) and keeps a value where its draw is at or above ``p`` (in steps of 1/65536),
  scaling the kept ones by 1/(1 - p): the same distribution, 0.19 ms forward and backward against 0.66 ms.

Each falls back to torch's own op where its condition is not met (dropout: off the CPU, where torch's kernel draws
its mask on the device, and ``inplace=True``), under ``torch.compile`` and ``torch.export``
(which fuse or export the standard ops), and for dtypes other than float32. The parameters and state dict are
the ``nn`` module's, so checkpoints load either way.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


@functools.cache
def _avx512() -> bool:
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def _eager_cpu_float(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.compiler.is_compiling()


class _SigmoidTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(x * 2).mul_(2).sub_(1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)  # grad * (1 - y^2), as torch.tanh's backward


class Tanh(nn.Tanh):
    """``nn.Tanh``; on AVX-512 CPUs computed as 2 sigmoid(2x) - 1, with tanh's own backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _eager_cpu_float(x) and _avx512():
            return _SigmoidTanh.apply(x)
        return torch.tanh(x)


class _AvgPool2x2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape
        n, c, h, w = x.shape
        q = x.view(n, c, h // 2, 2, w // 2, 2)
        return (q[:, :, :, 0, :, 0] + q[:, :, :, 0, :, 1] + q[:, :, :, 1, :, 0] + q[:, :, :, 1, :, 1]).mul_(0.25)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        n, c, h, w = ctx.shape
        # Each input pixel gets a quarter of its window's gradient: widen every row (each value twice), then copy
        # every widened row twice. Two copies whose inner loops run over whole rows, where avg_pool2d's backward
        # visits each window.
        rows = (grad * 0.25)[..., None].expand(n, c, h // 2, w // 2, 2).reshape(n, c, h // 2, 1, w)
        return rows.expand(n, c, h // 2, 2, w).reshape(n, c, h, w)


class AvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d``; 2x2 windows with stride 2 over even-sized, contiguous NCHW maps on the CPU add the four
    strided quarters of the input instead."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            _eager_cpu_float(x)
            and x.dim() == 4
            and x.is_contiguous()
            and x.shape[-2] % 2 == 0
            and x.shape[-1] % 2 == 0
            and self.kernel_size in (2, (2, 2))
            and self.stride in (2, (2, 2))
            and self.padding in (0, (0, 0))
            and self.divisor_override is None
        ):
            return _AvgPool2x2.apply(x)
        return super().forward(x)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d``; where the kernel covers the whole (unpadded) input, the dense layer it is: ``F.linear`` on
    the flattened input, giving 1x1 output maps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            not torch.compiler.is_compiling()
            and x.dim() == 4
            and tuple(x.shape[-2:]) == self.kernel_size
            and self.groups == 1
            and self.dilation == (1, 1)
            and self.padding in ("valid", (0, 0))
            and self.padding_mode == "zeros"
        ):
            return F.linear(x.flatten(1), self.weight.flatten(1), self.bias)[:, :, None, None]
        return super().forward(x)


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        n, cut = x.numel(), round(p * 65536)  # a value is dropped where its 16-bit draw falls in the lowest `cut`
        words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)  # 64 random bits each
        draws = words.view(torch.int16)[:n].view(x.shape)  # uniform on [-32768, 32767]
        mask = (draws >= cut - 32768).to(x.dtype).mul_(65536 / (65536 - cut))  # kept values scaled by 1/(1 - p)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (mask,) = ctx.saved_tensors
        return grad * mask, None


class Dropout(nn.Dropout):
    """``nn.Dropout``; in training on the CPU its mask drawn from bulk random bits instead of ``bernoulli_``
    (``p`` in steps of 1/65536: 0.3 drops with probability 19661/65536)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not self.inplace and _eager_cpu_float(x) and 0 < round(self.p * 65536) < 65536:
            return _Dropout.apply(x, self.p)
        return super().forward(x)
