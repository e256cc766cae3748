"""Deprecated module path: the microscope moved to its own package, ``featviz.microscope`` (``featviz.viz``
keeps the figures). ``from featviz.viz.microscope import build_microscope`` still works and warns
``DeprecationWarning``; import from ``featviz.microscope`` instead (``layer_shapes``: ``featviz.hooks``).
"""
from __future__ import annotations

import importlib
import warnings

_MOVED = {name: "featviz.microscope" for name in ("MicroscopeSettings", "build_microscope", "check_layers",
                                                   "default_layers", "save_png", "slug", "EARLY_STRIDE",
                                                   "CACHE")}
_MOVED["layer_shapes"] = "featviz.hooks"


def __getattr__(name: str) -> object:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"featviz.viz.microscope.{name} moved to {_MOVED[name]}.{name}; import it from there",
                  DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(_MOVED[name]), name)
