"""From-scratch functional ops: (B, C, L) / (B, C, H, W) tensors in, same-layout tensors out.

Every sliding-window op here is the same three steps the convolutions lesson teaches:

1. pad the input (``pad1d`` / ``pad2d``),
2. look at every kernel-sized window through ``torch.as_strided`` (a view: no copy),
3. reduce each window: ``einsum`` with the weights (conv), ``amax`` (max pool), ``sum`` (avg pool).

Output size along one axis, for length L, padding p (each side), kernel k, stride s, dilation d:

    L_out = floor((L + 2p - d(k-1) - 1) / s + 1)       (= floor((L + 2p - k)/s + 1) when d = 1)

No ``F.conv*`` and no ``unfold``: the only torch "magic" is as_strided, einsum and autograd.
Results (values and gradients) match ``torch.nn.functional`` to float32 precision.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from featviz.errors import BadValue
from featviz.nn.windows import _padding4, _pair, im2col, output_size, windows1d, windows2d

__all__ = ["pad1d", "pad2d", "conv1d", "conv2d", "maxpool2d", "avgpool2d", "adaptive_avgpool2d",
           "batch_norm", "linear", "relu", "relu6", "windows1d", "windows2d", "output_size"]


# ----------------------------------------------------------------------------------------------
# padding


def pad1d(x: Tensor, left: int, right: int, value: float = 0.0) -> Tensor:
    """Pad the last dimension with ``value``: (..., L) -> (..., left + L + right).

    Example:
        >>> pad1d(torch.tensor([[1.0, 2.0]]), 1, 2)
        tensor([[0., 1., 2., 0., 0.]])
    """
    if left < 0 or right < 0:
        raise BadValue(f"pad1d: padding must be >= 0, got left={left}, right={right}")
    L = x.shape[-1]
    out = x.new_full((*x.shape[:-1], left + L + right), value)
    out[..., left:left + L] = x  # differentiable: the gradient of out flows back into x
    return out


def pad2d(x: Tensor, left: int, right: int, top: int, bottom: int, value: float = 0.0) -> Tensor:
    """Pad the last two dimensions with ``value``: (..., H, W) -> (..., top + H + bottom, left + W + right).

    The argument order (left, right, top, bottom) is ``F.pad``'s.

    Example:
        >>> pad2d(torch.ones(1, 1, 2, 2), 1, 0, 0, 1).shape
        torch.Size([1, 1, 3, 3])
    """
    if min(left, right, top, bottom) < 0:
        raise BadValue(f"pad2d: padding must be >= 0, got left={left}, right={right}, top={top}, "
                         f"bottom={bottom}")
    H, W = x.shape[-2:]
    out = x.new_full((*x.shape[:-2], top + H + bottom, left + W + right), value)
    out[..., top:top + H, left:left + W] = x
    return out


# ----------------------------------------------------------------------------------------------
# convolutions


def _check_conv(name: str, x: Tensor, weight: Tensor, groups: int, dims: int) -> None:
    if x.dim() != dims + 2 or weight.dim() != dims + 2:
        raise BadValue(f"{name}: expected input (B, C, {'H, W' if dims == 2 else 'L'}) and weight "
                         f"(O, C/groups, {'kh, kw' if dims == 2 else 'k'}), got input {tuple(x.shape)} "
                         f"and weight {tuple(weight.shape)}")
    C, O = x.shape[1], weight.shape[0]
    if groups < 1 or C != weight.shape[1] * groups or O % groups:
        raise BadValue(f"{name}: input has {C} channels, weight {tuple(weight.shape)} with groups={groups} "
                         f"needs C = weight.shape[1] * groups = {weight.shape[1] * groups} and "
                         f"O = {O} divisible by groups")


def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0,
           dilation: int = 1, groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation, as in torch): (B, C, L) * (O, C/groups, k) -> (B, O, L_out).

    The plain lesson version: windows through as_strided, one einsum; autograd differentiates the view.

    Example:
        >>> conv1d(torch.rand(2, 4, 10), torch.rand(6, 4, 3), padding=1).shape
        torch.Size([2, 6, 10])
    """
    _check_conv("conv1d", x, weight, groups, dims=1)
    B, C, L = x.shape
    O, Cg, k = weight.shape
    G = groups
    output_size(L, k, stride, padding, padding, dilation, name="conv1d")  # a clear error if k doesn't fit
    x = pad1d(x, padding, padding)                                        # (B, C, L + 2p)
    win = windows1d(x, k, stride, dilation, name="conv1d")                # (B, C, L_out, k) view
    win = win.reshape(B, G, Cg, win.shape[2], k)                          # (B, G, C/G, L_out, k)
    w = weight.reshape(G, O // G, Cg, k)                                  # (G, O/G, C/G, k)
    out = torch.einsum("bgclk,gock->bgol", win, w).reshape(B, O, -1)      # (B, O, L_out)
    return out if bias is None else out + bias[:, None]


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int, int] = 1,
           padding: int | tuple[int, ...] = 0, dilation: int | tuple[int, int] = 1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as torch): (B, C, H, W) * (O, C/groups, kh, kw) -> (B, O, H', W').

    ``padding``: int, ``(ph, pw)``, or ``(left, right, top, bottom)``. ``groups=C`` with
    ``weight (C * m, 1, kh, kw)`` is a depthwise convolution.

    How it is fast: ``im2col`` copies the as_strided windows once into the memory order
    ``(C, kh, kw, B, H', W')``; then one grouped einsum ``"gocij,gcijbhw->gobhw"`` is a single
    batched matrix product over the G groups with no further copies. A 1x1, stride-1 conv needs no
    window copy at all. The batch goes through in chunks of at most ``COLS_BUDGET`` copied floats.

    Example:
        >>> conv2d(torch.rand(1, 3, 28, 28), torch.rand(5, 3, 3, 3), stride=2, padding=1).shape
        torch.Size([1, 5, 14, 14])
    """
    _check_conv("conv2d", x, weight, groups, dims=2)
    B, C, H, W = x.shape
    O, Cg, kh, kw = weight.shape
    G = groups
    left, right, top, bottom = _padding4(padding)
    (sh, sw), (dh, dw) = _pair(stride, "stride"), _pair(dilation)
    Ho = output_size(H, kh, sh, top, bottom, dh, name="conv2d (height)")  # clear errors if the kernel
    Wo = output_size(W, kw, sw, left, right, dw, name="conv2d (width)")   # does not fit
    if left or right or top or bottom:
        x = pad2d(x, left, right, top, bottom)                            # (B, C, Hp, Wp)
    w = weight.reshape(G, O // G, Cg, kh, kw)                             # (G, O/G, C/G, kh, kw)
    # a few images at a time, so that the copied windows stay small (cache-sized, no fresh pages)
    chunk = max(1, COLS_BUDGET // (C * kh * kw * Ho * Wo))
    outs = [_conv2d_windows(xb, w, (kh, kw), (sh, sw), (dh, dw)) for xb in x.split(chunk)]
    out = outs[0] if len(outs) == 1 else torch.cat(outs)                 # (B, O, H', W')
    return out if bias is None else out + bias[:, None, None]


COLS_BUDGET = 2**22  # floats of copied windows per chunk of images in conv2d (16 MB)


def _conv2d_windows(x: Tensor, w: Tensor, kernel: tuple, stride: tuple, dilation: tuple) -> Tensor:
    """conv2d's core on an already padded x: (B, C, Hp, Wp) * w (G, O/G, C/G, kh, kw) -> (B, O, H', W')."""
    B, C = x.shape[:2]
    G, Og, Cg, kh, kw = w.shape
    cols = im2col(x, kernel, stride, dilation, name="conv2d")             # (C, kh, kw, B, H', W')
    Ho, Wo = cols.shape[-2:]
    cols = cols.reshape(G, Cg, kh, kw, B, Ho, Wo)                         # (G, C/G, kh, kw, B, H', W')
    out = torch.einsum("gocij,gcijbhw->gobhw", w, cols)                   # (G, O/G, B, H', W')
    return out.reshape(G * Og, B, Ho, Wo).permute(1, 0, 2, 3).contiguous()


# ----------------------------------------------------------------------------------------------
# pooling


def _check_pool_padding(name: str, kernel: tuple, padding: tuple) -> None:
    for k, p in zip(kernel, padding):
        if p < 0 or 2 * p > k:
            raise BadValue(f"{name}: padding must be between 0 and half the kernel size (p <= k/2, as in "
                             f"torch), got padding {p} for kernel size {k}")


def _ceil_extra(L: int, k: int, s: int, p: int, d: int, ceil_mode: bool, name: str) -> int:
    """The extra right/bottom padding that ``ceil_mode``'s last window needs (0 without ceil_mode)."""
    out = output_size(L, k, s, p, p, d, name=name, ceil_mode=ceil_mode)
    return max(0, (out - 1) * s + d * (k - 1) + 1 - (L + 2 * p))


def _pool_windows(name: str, x: Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool,
                  value: float, reduce) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Pad x (with ``value``, plus ceil_mode's extra), reduce its windows (C, kh, kw, b, H', W')
    with ``reduce`` to (C, b, H', W'), a few images at a time; returns (B, C, H', W') and the pads."""
    if x.dim() != 4:
        raise BadValue(f"{name}: expected input (B, C, H, W), got shape {tuple(x.shape)}")
    k, s, p, d = (_pair(v, n) for v, n in ((kernel_size, "kernel_size"),
                                            (kernel_size if stride is None else stride, "stride"),
                                            (padding, "padding"), (dilation, "dilation")))
    _check_pool_padding(name, k, p)
    extra_h, extra_w = (_ceil_extra(x.shape[2 + i], k[i], s[i], p[i], d[i], ceil_mode, name)
                        for i in range(2))
    pads = (p[1], p[1] + extra_w, p[0], p[0] + extra_h)                   # (left, right, top, bottom)
    x = pad2d(x, *pads, value=value)                                      # (B, C, Hp, Wp)
    per_image = x.shape[1] * k[0] * k[1] * output_size(x.shape[2], k[0], s[0], d=d[0]) \
        * output_size(x.shape[3], k[1], s[1], d=d[1])
    outs = [reduce(im2col(xb, k, s, d, name=name)).permute(1, 0, 2, 3)    # (b, C, H', W') each
            for xb in x.split(max(1, COLS_BUDGET // per_image))]
    return (outs[0] if len(outs) == 1 else torch.cat(outs)), pads


def maxpool2d(x: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
              padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1,
              ceil_mode: bool = False) -> Tensor:
    """Max over each window (padding counts as -inf): (B, C, H, W) -> (B, C, H', W').

    ``stride`` defaults to ``kernel_size``. ``ceil_mode`` rounds the output size up (torch's rule:
    the last window must start inside the input or its left padding). Ties inside one window
    share the gradient equally (torch gives it all to one of them).

    Example:
        >>> maxpool2d(torch.rand(1, 2, 28, 28), 3, stride=2, padding=1).shape
        torch.Size([1, 2, 14, 14])
    """
    out, _ = _pool_windows("maxpool2d", x, kernel_size, stride, padding, dilation, ceil_mode, -math.inf,
                           reduce=lambda cols: cols.amax(dim=(1, 2)))
    return out.contiguous()


def avgpool2d(x: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
              padding: int | tuple[int, int] = 0, ceil_mode: bool = False,
              count_include_pad: bool = True) -> Tensor:
    """Mean over each window: (B, C, H, W) -> (B, C, H', W'). Same divisor as ``F.avg_pool2d``:

    the number of window positions inside the input, plus inside the zero padding when
    ``count_include_pad`` (never those past the padding that ``ceil_mode`` adds).

    Example:
        >>> avgpool2d(torch.ones(1, 1, 4, 4), 2)
        tensor([[[[1., 1.],
                  [1., 1.]]]])
    """
    sums, pads = _pool_windows("avgpool2d", x, kernel_size, stride, padding, 1, ceil_mode, 0.0,
                               reduce=lambda cols: cols.sum(dim=(1, 2)))   # (B, C, H', W')
    left, right, top, bottom = pads
    H, W = x.shape[2:]
    # which positions count in the divisor: a 0/1 mask of the padded plane, windowed the same way
    p_h, p_w = (top, left) if count_include_pad else (0, 0)
    mask = x.new_zeros(1, 1, top + H + bottom, left + W + right)
    mask[..., top - p_h:top + H + p_h, left - p_w:left + W + p_w] = 1.0
    k, s = _pair(kernel_size), _pair(kernel_size if stride is None else stride)
    counts = im2col(mask, k, s, (1, 1), name="avgpool2d").sum(dim=(1, 2))  # (1, 1, H', W')
    return (sums / counts).contiguous()


def adaptive_avgpool2d(x: Tensor, output_size: int | tuple[int | None, int | None]) -> Tensor:
    """Average into an ``output_size`` grid: (B, C, H, W) -> (B, C, oh, ow); ``None`` keeps that side.

    Bin i of n along a side of length L covers [floor(i*L/n), ceil((i+1)*L/n)), as in torch.

    Example:
        >>> adaptive_avgpool2d(torch.rand(2, 8, 7, 7), 1).shape
        torch.Size([2, 8, 1, 1])
    """
    if x.dim() != 4:
        raise BadValue(f"adaptive_avgpool2d: expected input (B, C, H, W), got shape {tuple(x.shape)}")
    sizes = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    for dim, n in zip((2, 3), sizes):
        L = x.shape[dim]
        n = L if n is None else n
        if L % n == 0:  # equal bins: a reshape and a mean
            x = x.unflatten(dim, (n, L // n)).mean(dim + 1)
        else:
            bins = [(i * L // n, -(-(i + 1) * L // n)) for i in range(n)]
            x = torch.cat([x.narrow(dim, a, b - a).mean(dim, keepdim=True) for a, b in bins], dim)
    return x


# ----------------------------------------------------------------------------------------------
# the rest of a CNN: batch norm, linear, activations


def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None,
               bias: Tensor | None, training: bool, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel of (B, C, H, W): batch statistics when ``training`` (and update the
    running ones in place, variance unbiased), else the running statistics; then scale and shift.

    Example:
        >>> x = torch.randn(4, 3, 5, 5)
        >>> y = batch_norm(x, None, None, None, None, training=True)
        >>> bool(y.mean((0, 2, 3)).abs().max() < 1e-5)
        True
    """
    if training:
        n = x.numel() // x.shape[1]
        if n <= 1:
            raise BadValue(f"batch_norm: need more than 1 value per channel when training, got input "
                             f"{tuple(x.shape)}")
        mean = x.mean(dim=(0, 2, 3))                                      # (C,)
        var = x.var(dim=(0, 2, 3), unbiased=False)                        # (C,)
        if running_mean is not None:
            with torch.no_grad():
                running_mean.lerp_(mean, momentum)
                running_var.lerp_(var * n / (n - 1), momentum)
    else:
        mean, var = running_mean, running_var
    y = (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + eps)
    if weight is not None:
        y = y * weight[:, None, None]
    if bias is not None:
        y = y + bias[:, None, None]
    return y


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``: (..., I) with weight (O, I) -> (..., O).

    Example:
        >>> linear(torch.ones(2, 3), torch.ones(4, 3)).shape
        torch.Size([2, 4])
    """
    out = torch.einsum("...i,oi->...o", x, weight)
    return out if bias is None else out + bias


def relu(x: Tensor) -> Tensor:
    """max(x, 0) elementwise (gradient 0 at x = 0, as torch).

    Example:
        >>> relu(torch.tensor([-1.0, 0.5]))
        tensor([0.0000, 0.5000])
    """
    return torch.where(x > 0, x, 0.0)


def relu6(x: Tensor) -> Tensor:
    """min(max(x, 0), 6) elementwise (gradient 0 outside (0, 6), as torch).

    Example:
        >>> relu6(torch.tensor([-1.0, 3.0, 7.0]))
        tensor([0., 3., 6.])
    """
    return torch.where(x > 0, torch.where(x < 6, x, 6.0), 0.0)
