"""featviz: see inside convolutional networks — readable layers, hooks, feature visualization, circuits.

``import featviz`` is cheap: the subpackages (and torch, torchvision, matplotlib behind them) are
imported on first use of ``fv.models``, ``fv.render``, ... (PEP 562 module ``__getattr__``).

Example:
    >>> import featviz as fv
    >>> fv.__version__
    '0.1.0'
    >>> model = fv.models.efficientnet_lite0(pretrained=True)
    >>> x = torch.rand(1, 3, 224, 224)                          # (B, 3, H, W) in [0, 1]
    >>> logits, cache = fv.hooked(model).run_with_cache(model.preprocess(x), names=["blocks.2"])
    >>> logits.shape, cache["blocks.2"].shape
    (torch.Size([1, 1000]), torch.Size([1, 24, 56, 56]))
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"  # the one version string: setup.cfg reads it (version = attr: featviz.__version__)

_SUBPACKAGES = ("circuits", "data", "errors", "microscope", "models", "nn", "optvis", "viz")
_NAMES = {  # public name -> module that defines it
    "ActivationCache": "featviz.hooks",
    "HookedModel": "featviz.hooks",
    "hooked": "featviz.hooks",
    "objectives": "featviz.optvis",
    "render": "featviz.optvis",
    "render_layer": "featviz.optvis",
    "factorize": "featviz.optvis",
    "atlas": "featviz.optvis",
    "invert": "featviz.optvis",
    "caricature": "featviz.optvis",
    "RenderSettings": "featviz.optvis",
    "explain": "featviz.explain",
    "Explanation": "featviz.explain",
}

__all__ = ["ActivationCache", "HookedModel", "data", "hooked", "models", "nn", "__version__"]
__all__ += ["objectives", "optvis", "render", "render_layer"]
__all__ += ["circuits", "viz", "errors", "microscope"]
__all__ += ["atlas", "caricature", "factorize", "invert"]
__all__ += ["Explanation", "explain"]
__all__ += ["RenderSettings"]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time these load lazily
    from featviz import circuits, data, errors, microscope, models, nn, optvis, viz
    from featviz.explain import Explanation, explain
    from featviz.hooks import ActivationCache, HookedModel, hooked
    from featviz.optvis import (
        RenderSettings,
        atlas,
        caricature,
        factorize,
        invert,
        objectives,
        render,
        render_layer,
    )


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        value = importlib.import_module(f"featviz.{name}")
    elif name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    else:
        raise AttributeError(f"module 'featviz' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``fv.explain`` stays the function: importing the submodule ``featviz.explain`` (``from featviz.explain
    import Explanation``) would otherwise set the package attribute to the module."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "explain" and isinstance(value, types.ModuleType):
            value = value.explain
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
