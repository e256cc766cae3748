"""Deprecated module path: the multi-model microscope site moved to ``featviz.microscope``
(``build_microscopes``, ``pair_layers``). The old imports still work and warn ``DeprecationWarning``.
"""
from __future__ import annotations

import importlib
import warnings

_MOVED = ("build_microscopes", "pair_layers")


def __getattr__(name: str) -> object:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"featviz.viz.universality_site.{name} moved to featviz.microscope.{name}; import it from "
                  "there", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module("featviz.microscope"), name)
