"""torch model -> same model built from featviz layers (same config, same weights, same outputs).

``from_torch`` walks the module tree and swaps every ``nn.Conv2d``, ``nn.MaxPool2d``,
``nn.AvgPool2d``, ``nn.AdaptiveAvgPool2d``, ``nn.BatchNorm2d``, ``nn.Linear``, ``nn.ReLU``,
``nn.ReLU6`` and ``nn.Flatten`` for its featviz twin. Only those exact classes are swapped:
subclasses may override ``forward`` and stay as they are, and so do the few configurations
featviz layers do not model (``padding_mode != "zeros"``, ``return_indices=True``,
``divisor_override``). ``ReLU(inplace=True)`` becomes a plain featviz ``ReLU``: same values.
"""
from __future__ import annotations

import copy as copy_module

from torch import nn

from featviz.nn import layers
from featviz.nn.backend import check_backend

__all__ = ["from_torch"]


def _conv(m: nn.Conv2d) -> layers.Conv2d | None:
    if m.padding_mode != "zeros":
        return None
    padding = m.padding
    if padding == "valid":
        padding = 0
    elif padding == "same":  # torch's rule: total d*(k-1), the odd one extra goes after
        (kh, kw), (dh, dw) = m.kernel_size, m.dilation
        th, tw = dh * (kh - 1), dw * (kw - 1)
        padding = (tw // 2, tw - tw // 2, th // 2, th - th // 2)
    new = layers.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, padding, m.dilation,
                        m.groups, bias=m.bias is not None)
    new.weight, new.bias = m.weight, m.bias
    return new


def _maxpool(m: nn.MaxPool2d) -> layers.MaxPool2d | None:
    if m.return_indices:
        return None
    return layers.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)


def _avgpool(m: nn.AvgPool2d) -> layers.AvgPool2d | None:
    if m.divisor_override is not None:
        return None
    return layers.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad)


def _batchnorm(m: nn.BatchNorm2d) -> layers.BatchNorm2d:
    new = layers.BatchNorm2d(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
    new.weight, new.bias = m.weight, m.bias
    if m.track_running_stats:
        new.running_mean, new.running_var = m.running_mean, m.running_var
        new.num_batches_tracked = m.num_batches_tracked
    return new


def _linear(m: nn.Linear) -> layers.Linear:
    new = layers.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    new.weight, new.bias = m.weight, m.bias
    return new


_CONVERTERS = {
    nn.Conv2d: _conv,
    nn.MaxPool2d: _maxpool,
    nn.AvgPool2d: _avgpool,
    nn.AdaptiveAvgPool2d: lambda m: layers.AdaptiveAvgPool2d(m.output_size),
    nn.BatchNorm2d: _batchnorm,
    nn.Linear: _linear,
    nn.ReLU: lambda m: layers.ReLU(),
    nn.ReLU6: lambda m: layers.ReLU6(),
    nn.Flatten: lambda m: layers.Flatten(m.start_dim, m.end_dim),
}


def _convert(m: nn.Module, backend: str | None) -> nn.Module | None:
    """The featviz twin of ``m`` (holding m's own parameter objects), or None if m is not swapped."""
    converter = _CONVERTERS.get(type(m))
    new = converter(m) if converter is not None else None
    if new is not None:
        new.backend = backend
        new.train(m.training)
    return new


def _swap_children(module: nn.Module, backend: str | None) -> None:
    for name, child in module.named_children():
        new = _convert(child, backend)
        if new is None:
            _swap_children(child, backend)
        else:
            setattr(module, name, new)


def from_torch(module: nn.Module, copy: bool = True, backend: str | None = None) -> nn.Module:
    """A copy of ``module`` whose torch layers are featviz layers with the same config and weights.

    ``copy=True`` copies the weights; ``copy=False`` shares the parameter and buffer tensors with
    ``module`` (training one trains the other). The original module is never modified.
    ``backend`` is set on every new layer (``None``: follow ``featviz.nn.use_backend``).
    Training/eval mode, requires_grad flags, devices and dtypes are kept.

    Example:
        >>> import torch, torchvision
        >>> tv = torchvision.models.resnet18().eval()
        >>> fv_model = from_torch(tv)
        >>> x = torch.rand(1, 3, 64, 64)
        >>> torch.allclose(fv_model(x), tv(x), atol=1e-5)
        True
    """
    check_backend(backend)
    memo = {}
    if not copy:  # deepcopy everything except the tensors, which stay shared
        memo = {id(t): t for t in (*module.parameters(), *module.buffers())}
    clone = copy_module.deepcopy(module, memo)
    new = _convert(clone, backend)
    if new is not None:
        return new
    _swap_children(clone, backend)
    return clone
