"""featviz.nn: readable CNN layers (torch state-dict compatible) with a switchable from-scratch backend.

Example:
    >>> import torch, featviz as fv
    >>> conv = fv.nn.Conv2d(3, 5, kernel_size=3, stride=2, padding=1)
    >>> with fv.nn.use_backend("strided"):
    ...     conv(torch.rand(1, 3, 28, 28)).shape
    torch.Size([1, 5, 14, 14])
"""
from torch.nn import Sequential

from featviz.nn import functional
from featviz.nn.backend import BACKENDS, get_backend, use_backend
from featviz.nn.convert import from_torch
from featviz.nn.layers import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    ReLU6,
)

__all__ = ["functional", "BACKENDS", "get_backend", "use_backend", "from_torch", "Conv2d", "MaxPool2d",
           "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d", "Linear", "ReLU", "ReLU6", "Flatten",
           "Sequential"]
