"""Sliding windows through ``torch.as_strided``: (B, C, L) -> (B, C, L_out, k) and 2-D alike, plus sizes.

``windows1d`` / ``windows2d`` are views (no copy): element ``[b, c, h, w, i, j]`` of the 2-D one
is ``x[b, c, h*sh + i*dh, w*sw + j*dw]``. ``im2col`` copies those windows once into the memory
order the convolution's matrix product wants, with a fast hand-written backward.
"""
from __future__ import annotations

import torch
from torch import Tensor

from featviz.errors import BadValue

__all__ = ["output_size", "windows1d", "windows2d", "im2col"]


def _pair(value: int | tuple[int, ...], name: str = "dilation") -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 5) -> (3, 5)``; anything else is a clear error."""
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    raise BadValue(f"{name} must be an int or a pair of ints, got {value!r}")


def _padding4(padding: int | tuple[int, ...]) -> tuple[int, int, int, int]:
    """Padding as ``(left, right, top, bottom)``: from an int, a pair ``(ph, pw)`` or a 4-tuple."""
    if isinstance(padding, (tuple, list)) and len(padding) == 4 and all(isinstance(p, int) for p in padding):
        return tuple(int(p) for p in padding)
    if isinstance(padding, (tuple, list)) and len(padding) != 2:
        raise BadValue(f"padding must be an int, a pair (ph, pw) or a 4-tuple (left, right, top, bottom), "
                         f"got {padding!r}")
    ph, pw = _pair(padding, "padding")
    return (pw, pw, ph, ph)


def output_size(L: int, k: int, s: int = 1, p_before: int = 0, p_after: int = 0, d: int = 1,
                name: str = "window", ceil_mode: bool = False) -> int:
    """Number of windows along one axis: floor((L + p_before + p_after - d(k-1) - 1)/s + 1).

    With ``ceil_mode`` the division rounds up, but (as in torch) the last window must start
    inside the input or its leading padding. Raises ValueError quoting the numbers when no window fits.

    Example:
        >>> output_size(28, k=3, s=2, p_before=1, p_after=1)   # the lesson's worked example
        14
    """
    if k < 1 or s < 1 or d < 1:
        raise BadValue(f"{name}: kernel size, stride and dilation must be >= 1, got k={k}, s={s}, d={d}")
    span = L + p_before + p_after - d * (k - 1) - 1
    if span < 0:
        raise BadValue(
            f"{name}: the kernel does not fit: L_out = floor((L + 2p - d(k-1) - 1)/s + 1) needs "
            f"L + 2p >= d(k-1) + 1, but L={L}, 2p={p_before + p_after}, d={d}, k={k} gives "
            f"{L + p_before + p_after} < {d * (k - 1) + 1}")
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= L + p_before:
        out -= 1
    return out


def windows1d(x: Tensor, k: int, s: int = 1, d: int = 1, name: str = "windows1d") -> Tensor:
    """All length-k windows of the last axis, as a view: (B, C, L) -> (B, C, L_out, k).

    Example:
        >>> windows1d(torch.arange(5.0)[None, None], k=3)[0, 0]
        tensor([[0., 1., 2.],
                [1., 2., 3.],
                [2., 3., 4.]])
    """
    B, C, L = x.shape
    sB, sC, sL = x.stride()
    L_out = output_size(L, k, s, d=d, name=name)
    return x.as_strided((B, C, L_out, k), (sB, sC, sL * s, sL * d), x.storage_offset())


def windows2d(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1),
              dilation: tuple[int, int] = (1, 1), name: str = "windows2d") -> Tensor:
    """All kernel-sized windows, as a view: (B, C, H, W) -> (B, C, H', W', kh, kw).

    Example:
        >>> windows2d(torch.rand(1, 3, 28, 28), (3, 3), (2, 2)).shape
        torch.Size([1, 3, 13, 13, 3, 3])
    """
    B, C, H, W = x.shape
    (kh, kw), (sh, sw), (dh, dw) = _pair(kernel, "kernel_size"), _pair(stride, "stride"), _pair(dilation)
    Ho = output_size(H, kh, sh, d=dh, name=f"{name} (height)")
    Wo = output_size(W, kw, sw, d=dw, name=f"{name} (width)")
    sB, sC, sH, sW = x.stride()
    # moving one output row = sh input rows; moving one kernel row = dh input rows
    strides = (sB, sC, sH * sh, sW * sw, sH * dh, sW * dw)
    return x.as_strided((B, C, Ho, Wo, kh, kw), strides, x.storage_offset())


class _Im2col(torch.autograd.Function):
    """windows2d(x) copied into memory order (C, kh, kw, B, H', W'); backward adds each kernel
    offset's gradient back onto the input slice it was read from (k*k strided adds)."""

    @staticmethod
    def forward(ctx, x: Tensor, kernel: tuple, stride: tuple, dilation: tuple, name: str) -> Tensor:
        ctx.geometry = (x.shape, kernel, stride, dilation)
        win = windows2d(x, kernel, stride, dilation, name=name)          # (B, C, H', W', kh, kw) view
        return win.permute(1, 4, 5, 0, 2, 3).contiguous()                 # (C, kh, kw, B, H', W')

    @staticmethod
    def backward(ctx, grad: Tensor):                                      # grad (C, kh, kw, B, H', W')
        (B, C, H, W), (kh, kw), (sh, sw), (dh, dw) = ctx.geometry
        Ho, Wo = grad.shape[-2:]
        grad_x = grad.new_zeros(C, B, H, W)
        for i in range(kh):
            for j in range(kw):
                # kernel offset (i, j) read x[:, :, i*dh + h*sh, j*dw + w*sw] for every output (h, w)
                rows = slice(i * dh, i * dh + (Ho - 1) * sh + 1, sh)
                cols = slice(j * dw, j * dw + (Wo - 1) * sw + 1, sw)
                grad_x[:, :, rows, cols] += grad[:, i, j]
        return grad_x.permute(1, 0, 2, 3), None, None, None, None


def im2col(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1),
           dilation: tuple[int, int] = (1, 1), name: str = "im2col") -> Tensor:
    """Every window of x copied once, in memory order (C, kh, kw, B, H', W'). Differentiable.

    Autograd could differentiate ``windows2d(...).contiguous()`` by itself, but its generic
    backward for overlapping views is about 10x slower than adding each offset's gradient back.
    A 1x1 kernel at stride 1 reads every pixel once, so that case is just a transpose.

    Example:
        >>> im2col(torch.rand(2, 3, 8, 8), (3, 3)).shape
        torch.Size([3, 3, 3, 2, 6, 6])
    """
    kernel, stride, dilation = _pair(kernel, "kernel_size"), _pair(stride, "stride"), _pair(dilation)
    if kernel == (1, 1) and stride == (1, 1):
        return x.permute(1, 0, 2, 3).contiguous()[:, None, None]          # (C, 1, 1, B, H, W)
    return _Im2col.apply(x, kernel, stride, dilation, name)
