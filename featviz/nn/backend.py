"""Backend switch: which implementation ("torch" or "strided") featviz layers compute with.

Every featviz layer has a ``backend`` attribute. ``None`` (the default) follows the global
default, which is ``"torch"`` (``torch.nn.functional``) and can be changed for a block of
code with :func:`use_backend`. ``"strided"`` computes with the from-scratch
``featviz.nn.functional`` (``as_strided`` + ``einsum``).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from featviz.errors import BadValue

BACKENDS = ("torch", "strided")
"""The backends of ``featviz.nn`` layers: ``"torch"`` (PyTorch's kernels) and ``"strided"`` (the readable
``as_strided`` + einsum implementation); see ``use_backend``."""
_default = "torch"


def check_backend(name: str | None, allow_none: bool = True) -> str | None:
    """Return ``name`` if it is a known backend (or ``None`` when allowed), else raise ValueError.

    Example:
        >>> check_backend("strided")
        'strided'
    """
    if name is None and allow_none:
        return None
    if name not in BACKENDS:
        raise BadValue(f"unknown backend {name!r}; valid backends are {', '.join(map(repr, BACKENDS))}")
    return name


def get_backend() -> str:
    """The global default backend that layers with ``backend=None`` compute with.

    Example:
        >>> get_backend()
        'torch'
    """
    return _default


def resolve_backend(backend: str | None) -> str:
    """The backend a layer should use now: its own ``backend``, or the global default when ``None``."""
    return _default if backend is None else backend


@contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Make ``name`` the default backend inside the ``with`` block; the previous one comes back after,
    also when the block raises. Layers with their own ``backend`` set keep it.

    Example:
        >>> import torch, featviz as fv
        >>> conv = fv.nn.Conv2d(3, 5, 3, padding=1)
        >>> with fv.nn.use_backend("strided"):
        ...     y = conv(torch.rand(1, 3, 8, 8))    # computed with as_strided + einsum
        >>> y.shape
        torch.Size([1, 5, 8, 8])
    """
    global _default
    check_backend(name, allow_none=False)
    previous = _default
    _default = name
    try:
        yield name
    finally:
        _default = previous
