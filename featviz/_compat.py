"""Version-sensitive torch calls in one place: what differs between the oldest torch featviz supports
(2.2, see setup.cfg) and the newest, behind one small function each.

Example:
    >>> from featviz._compat import TORCH_VERSION
    >>> TORCH_VERSION >= (2, 2)
    True
"""
from __future__ import annotations

import pickle
import re

import torch

__all__ = ["TORCH_VERSION", "fused_adam_ok", "is_refused_pickle", "load_weights"]


def _version_tuple(text: str) -> tuple[int, int]:
    """``"2.14.1+cu130"`` -> ``(2, 14)``: compare versions as numbers, never as strings."""
    major, minor = re.match(r"(\d+)\.(\d+)", text).groups()
    return int(major), int(minor)


TORCH_VERSION: tuple[int, int] = _version_tuple(torch.__version__)

# What torch.load(weights_only=True) says when it refuses a pickle that names a Python global (a class or
# function it would have to import and call): "Unsupported global: GLOBAL x" (torch >= 2.4) or
# "Unsupported class x" (torch 2.2-2.3). Other unpickling errors mean a corrupt or foreign file.
_REFUSED = ("Unsupported global", "Unsupported class", "allowed global", "GLOBAL ")


def is_refused_pickle(error: BaseException) -> bool:
    """True when ``error`` (from :func:`load_weights`) is a refusal to run code, not a corrupt file.

    Example:
        >>> is_refused_pickle(pickle.UnpicklingError("Unsupported global: GLOBAL os.system"))
        True
        >>> is_refused_pickle(pickle.UnpicklingError("invalid load key, 'g'."))
        False
    """
    return isinstance(error, pickle.UnpicklingError) and any(s in str(error) for s in _REFUSED)


def load_weights(path, map_location: str | torch.device = "cpu"):
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, never code.

    Example:
        >>> import io
        >>> buffer = io.BytesIO(); torch.save({"w": torch.ones(2)}, buffer); _ = buffer.seek(0)
        >>> load_weights(buffer)["w"]
        tensor([1., 1.])
    """
    return torch.load(path, map_location=map_location, weights_only=True)


def fused_adam_ok(params) -> bool:
    """Can ``torch.optim.Adam(params, fused=True)`` step these parameters? Floating-point tensors on CUDA
    (torch >= 2.0) or on the CPU (torch >= 2.4; torch 2.2-2.3 raise "`fused=True` requires all the params
    to be floating point Tensors of supported devices: ['cuda', ...]").

    Example:
        >>> fused_adam_ok([torch.zeros(2, requires_grad=True)]) == (TORCH_VERSION >= (2, 4))
        True
        >>> fused_adam_ok([torch.zeros(2, dtype=torch.int64)])
        False
    """
    devices = ("cpu", "cuda") if TORCH_VERSION >= (2, 4) else ("cuda",)
    params = list(params)
    return bool(params) and all(p.is_floating_point() and p.device.type in devices for p in params)
