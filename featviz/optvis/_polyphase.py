"""Strided stem convolutions with a cheaper input gradient: (model) -> a scope; forward values unchanged.

On a CPU, oneDNN's input gradient of a strided convolution with few input channels (the 7x7 stride-2
stem of GoogLeNet / ResNet, 3 -> 64 channels) costs ~5x its forward pass: 76 ms of a 560 ms googlenet
step at batch 8, 224 px. The same gradient is a stride-1 correlation of the output gradient with
the kernel split into ``stride**2`` phases (all phases in one convolution to ``C_in * stride**2``
channels), followed by a pixel shuffle: 35 ms for that layer. Inside :func:`polyphase_stems`, every
eligible ``nn.Conv2d`` (stride > 1, kernel >= 5x5, no dilation, one group, zero padding, at most 4
input channels, frozen weights) computes the same forward and gets that backward; only the input
gradient is computed. (3x3 stride-2 stems, EfficientNet's, gain nothing measurable: left alone.)

Example:
    >>> conv = nn.Conv2d(3, 8, 7, stride=2, padding=3).requires_grad_(False)
    >>> x = torch.rand(1, 3, 33, 33, requires_grad=True)
    >>> with polyphase_stems(conv) as names:
    ...     conv(x).square().sum().backward()
    >>> names, x.grad.shape
    ([''], torch.Size([1, 3, 33, 33]))
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["conv2d_input_grad", "polyphase_stems"]


def conv2d_input_grad(grad: Tensor, weight: Tensor, input_hw: tuple[int, int], stride: tuple[int, int],
                      padding: tuple[int, int]) -> Tensor:
    """d(loss)/d(input) of ``F.conv2d(input, weight, stride=, padding=)`` given ``grad`` (B, O, h, w).

    With ``k = s * a + r``: ``input_grad[s * m + r - p] = sum_a grad[m - a] * weight[s * a + r]``, a
    stride-1 correlation of ``grad`` with each phase ``r`` of the flipped kernel; the ``s_y * s_x``
    phases are the output channels of one convolution, interleaved back by a pixel shuffle.

    Example:
        >>> w, x = torch.randn(4, 3, 5, 5), torch.randn(2, 3, 17, 17, requires_grad=True)
        >>> g = torch.randn(2, 4, 9, 9)
        >>> torch.autograd.grad(F.conv2d(x, w, stride=2, padding=2), x, g)[0].allclose(
        ...     conv2d_input_grad(g, w, (17, 17), (2, 2), (2, 2)), atol=1e-4)
        True
    """
    o, c, kh, kw = weight.shape
    (sy, sx), (py, px), (h, w) = stride, padding, input_hw
    ay, ax = -(-kh // sy), -(-kw // sx)  # taps per phase
    wp = F.pad(weight, (0, ax * sx - kw, 0, ay * sy - kh))  # (O, C, ay * sy, ax * sx)
    # (O, C, ay, sy, ax, sx) -> (sy, sx, C, O, ay, ax): one stride-1 kernel per phase, flipped
    phases = wp.view(o, c, ay, sy, ax, sx).permute(3, 5, 1, 0, 2, 4).flip(-2, -1)
    z = F.conv2d(F.pad(grad, (ax - 1, ax - 1, ay - 1, ay - 1)), phases.reshape(sy * sx * c, o, ay, ax))
    b, _, mh, mw = z.shape  # (B, sy * sx * C, mh, mw)
    full = z.view(b, sy, sx, c, mh, mw).permute(0, 3, 4, 1, 5, 2).reshape(b, c, mh * sy, mw * sx)
    full = F.pad(full, (0, max(0, px + w - mw * sx), 0, max(0, py + h - mh * sy)))  # rows no window reaches
    return full[..., py : py + h, px : px + w]  # (B, C, H, W)


class _Stem(torch.autograd.Function):
    """Forward: the convolution. Backward: :func:`conv2d_input_grad` for the input only (weights frozen)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple, padding: tuple) -> Tensor:
        ctx.save_for_backward(weight)
        ctx.geometry = (tuple(x.shape[-2:]), stride, padding)
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (weight,) = ctx.saved_tensors
        return conv2d_input_grad(grad, weight, *ctx.geometry), None, None, None, None


def _eligible(m: nn.Module) -> bool:
    return (type(m) is nn.Conv2d and m.groups == 1 and m.dilation == (1, 1) and max(m.stride) > 1
            and min(m.kernel_size) >= 5 and m.padding_mode == "zeros" and isinstance(m.padding, tuple)
            and m.in_channels <= 4)


def _forward(module: nn.Conv2d, x: Tensor) -> Tensor:
    frozen = not module.weight.requires_grad and (module.bias is None or not module.bias.requires_grad)
    if (torch.is_grad_enabled() and frozen and isinstance(x, Tensor) and x.requires_grad
            and x.device.type == "cpu" and x.dim() == 4):
        return _Stem.apply(x, module.weight, module.bias, module.stride, module.padding)
    return nn.Conv2d.forward(module, x)


@contextlib.contextmanager
def polyphase_stems(model: nn.Module) -> Iterator[list[str]]:
    """Within the block, eligible strided convolutions of ``model`` (see the module docstring) compute their
    input gradient by phases; yields their names. Their ``forward`` is restored on exit, also when the
    block raises; hooks on them run as usual. Convolutions whose weights require grad, or whose input
    does not, keep torch's backward.
    """
    targets = [(name, m) for name, m in model.named_modules() if _eligible(m)]
    own = [(m, m.__dict__["forward"]) for _, m in targets if "forward" in m.__dict__]
    try:
        for _, m in targets:
            m.forward = functools.partial(_forward, m)
        yield [name for name, _ in targets]
    finally:
        for _, m in targets:
            m.__dict__.pop("forward", None)
        for m, fn in own:
            m.forward = fn
