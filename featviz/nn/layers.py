"""Readable layers: (B, C, H, W) -> (B, C', H', W') modules whose state dicts match torch's.

Each layer computes with a backend (see ``featviz.nn.backend``): ``"torch"`` calls
``torch.nn.functional``; ``"strided"`` calls the from-scratch ``featviz.nn.functional``.
Parameter and buffer names are torch's, so ``load_state_dict`` works both ways between a
featviz layer and the torch layer of the same name.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from featviz.errors import BadValue
from featviz.nn import functional as sf
from featviz.nn.backend import check_backend, resolve_backend
from featviz.nn.windows import _padding4, _pair

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d", "Linear",
           "ReLU", "ReLU6", "Flatten"]


class _Layer(nn.Module):
    """Base of the featviz layers: holds ``backend`` (None = follow ``featviz.nn.get_backend()``)."""

    def __init__(self, backend: str | None = None):
        super().__init__()
        self.backend = check_backend(backend)

    @property
    def strided(self) -> bool:
        """True when this call computes with the from-scratch backend."""
        return resolve_backend(self.backend) == "strided"

    def _repr(self, **fields) -> str:
        if self.backend is not None:
            fields["backend"] = repr(self.backend)
        return ", ".join(f"{key}={value}" for key, value in fields.items())


def _uniform_(tensor: Tensor, bound: float) -> Tensor:
    """Fill ``tensor`` with U(-bound, bound) in place (Kaiming-uniform as in the lesson)."""
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


class Conv2d(_Layer):
    """2-D convolution, weight ``(out, in/groups, kh, kw)``, bias off by default (as in the lesson).

    ``padding`` is an int, a pair ``(ph, pw)`` or an explicit ``(left, right, top, bottom)``
    4-tuple for asymmetric padding, e.g. TensorFlow's "SAME" padding at stride 2 (pad 0 before,
    1 after: ``(0, 1, 0, 1)``). Weight and bias start as U(-b, b), b = 1/sqrt(in/groups * kh * kw).

    Example:
        >>> conv = Conv2d(3, 5, kernel_size=3, stride=2, padding=1)
        >>> conv(torch.rand(1, 3, 28, 28)).shape
        torch.Size([1, 5, 14, 14])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, ...] = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = False,
                 backend: str | None = None):
        super().__init__(backend)
        if in_channels % groups or out_channels % groups:
            raise BadValue(f"in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                             f"divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        left, right, top, bottom = _padding4(padding)
        # symmetric padding is stored as torch stores it, (ph, pw); asymmetric as (left, right, top, bottom)
        self.padding = (top, left) if (left, top) == (right, bottom) else (left, right, top, bottom)
        kh, kw = self.kernel_size
        # (O, C/groups, kh, kw)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform init: U(-b, b) with b = 1/sqrt(fan_in), fan_in = in/groups * kh * kw."""
        fan_in = self.weight[0].numel()
        bound = 1 / math.sqrt(fan_in)
        _uniform_(self.weight, bound)
        if self.bias is not None:
            _uniform_(self.bias, bound)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, O, H', W')
        args = dict(stride=self.stride, dilation=self.dilation, groups=self.groups)
        if self.strided:
            return sf.conv2d(x, self.weight, self.bias, padding=self.padding, **args)
        if len(self.padding) == 4:  # asymmetric: pad explicitly, then convolve without padding
            return F.conv2d(F.pad(x, self.padding), self.weight, self.bias, **args)
        return F.conv2d(x, self.weight, self.bias, padding=self.padding, **args)

    def extra_repr(self) -> str:
        fields = dict(in_channels=self.in_channels, out_channels=self.out_channels,
                      kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)
        if self.dilation != (1, 1):
            fields["dilation"] = self.dilation
        if self.groups != 1:
            fields["groups"] = self.groups
        fields["bias"] = self.bias is not None
        return self._repr(**fields)


class MaxPool2d(_Layer):
    """Max over each ``kernel_size`` window; stride defaults to the kernel, padding (with -inf) to 1.

    Example:
        >>> MaxPool2d(3, stride=2)(torch.rand(1, 4, 28, 28)).shape   # padding=1: lesson default
        torch.Size([1, 4, 14, 14])
    """

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 1, dilation: int | tuple[int, int] = 1,
                 ceil_mode: bool = False, backend: str | None = None):
        super().__init__(backend)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, H', W')
        fn = sf.maxpool2d if self.strided else F.max_pool2d
        return fn(x, self.kernel_size, self.stride, self.padding, dilation=self.dilation,
                  ceil_mode=self.ceil_mode)

    def extra_repr(self) -> str:
        fields = dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)
        if _pair(self.dilation) != (1, 1):
            fields["dilation"] = self.dilation
        if self.ceil_mode:
            fields["ceil_mode"] = True
        return self._repr(**fields)


class AvgPool2d(_Layer):
    """Mean over each window; padding counts as zeros in the mean (``count_include_pad``) as in torch.

    Example:
        >>> AvgPool2d(2)(torch.rand(1, 4, 28, 28)).shape
        torch.Size([1, 4, 14, 14])
    """

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, backend: str | None = None):
        super().__init__(backend)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode, self.count_include_pad = padding, ceil_mode, count_include_pad

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, H', W')
        fn = sf.avgpool2d if self.strided else F.avg_pool2d
        return fn(x, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                  count_include_pad=self.count_include_pad)

    def extra_repr(self) -> str:
        fields = dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)
        if self.ceil_mode:
            fields["ceil_mode"] = True
        if not self.count_include_pad:
            fields["count_include_pad"] = False
        return self._repr(**fields)


class AdaptiveAvgPool2d(_Layer):
    """Average into a fixed ``output_size`` grid whatever the input size (``None`` keeps that side).

    Example:
        >>> AdaptiveAvgPool2d(1)(torch.rand(2, 8, 7, 7)).shape
        torch.Size([2, 8, 1, 1])
    """

    def __init__(self, output_size: int | tuple[int | None, int | None], backend: str | None = None):
        super().__init__(backend)
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, *output_size)
        fn = sf.adaptive_avgpool2d if self.strided else F.adaptive_avg_pool2d
        return fn(x, self.output_size)

    def extra_repr(self) -> str:
        return self._repr(output_size=self.output_size)


class BatchNorm2d(_Layer):
    """Per-channel batch normalisation; same arguments, state-dict keys and update rule as torch's.

    Training mode normalises with the batch statistics and updates ``running_mean`` /
    ``running_var`` (unbiased) with ``momentum`` (``None``: cumulative average); eval mode uses
    the running statistics.

    Example:
        >>> bn = BatchNorm2d(8).eval()
        >>> bn(torch.rand(2, 8, 4, 4)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, backend: str | None = None):
        super().__init__(backend)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, H, W)
        if x.dim() != 4 or x.shape[1] != self.num_features:
            raise BadValue(f"BatchNorm2d({self.num_features}) expects input (B, {self.num_features}, "
                             f"H, W), got shape {tuple(x.shape)}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or not self.track_running_stats
        fn = sf.batch_norm if self.strided else F.batch_norm
        return fn(x, self.running_mean, self.running_var, self.weight, self.bias,
                  use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return self._repr(num_features=self.num_features, eps=self.eps, momentum=self.momentum,
                          affine=self.affine, track_running_stats=self.track_running_stats)


class Linear(_Layer):
    """``x @ weight.T + bias`` with weight ``(out, in)``, both U(-b, b), b = 1/sqrt(in).

    Example:
        >>> Linear(8, 3)(torch.rand(2, 8)).shape
        torch.Size([2, 3])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, backend: str | None = None):
        super().__init__(backend)
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(_uniform_(torch.empty(out_features, in_features), bound))  # (O, I)
        self.bias = nn.Parameter(_uniform_(torch.empty(out_features), bound)) if bias else None

    def forward(self, x: Tensor) -> Tensor:  # (..., I) -> (..., O)
        fn = sf.linear if self.strided else F.linear
        return fn(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return self._repr(in_features=self.in_features, out_features=self.out_features,
                          bias=self.bias is not None)


class ReLU(_Layer):
    """max(x, 0), elementwise. (No ``inplace``: featviz layers never overwrite their input.)

    Example:
        >>> ReLU()(torch.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    def forward(self, x: Tensor) -> Tensor:
        return sf.relu(x) if self.strided else F.relu(x)

    def extra_repr(self) -> str:
        return self._repr()


class ReLU6(_Layer):
    """min(max(x, 0), 6), elementwise (MobileNet / EfficientNet-Lite activation).

    Example:
        >>> ReLU6()(torch.tensor([-1.0, 2.0, 9.0]))
        tensor([0., 2., 6.])
    """

    def forward(self, x: Tensor) -> Tensor:
        return sf.relu6(x) if self.strided else F.relu6(x)

    def extra_repr(self) -> str:
        return self._repr()


class Flatten(_Layer):
    """Flatten dims ``start_dim..end_dim`` into one: (B, C, H, W) -> (B, C*H*W) by default.

    Example:
        >>> Flatten()(torch.rand(2, 3, 4, 4)).shape
        torch.Size([2, 48])
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__(None)
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
