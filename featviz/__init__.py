"""featviz: see inside convolutional networks — readable layers, hooks, feature visualization, circuits.

Example:
    >>> import featviz as fv
    >>> model = fv.models.efficientnet_lite0(pretrained=True)   # doctest: +SKIP
    >>> logits, cache = fv.hooked(model).run_with_cache(x)     # doctest: +SKIP
"""
from featviz import circuits, data, models, nn, optvis, viz
from featviz.hooks import ActivationCache, HookedModel, hooked
from featviz.optvis import objectives, render, render_layer

__version__ = "0.1.0"

__all__ = ["ActivationCache", "HookedModel", "data", "hooked", "models", "nn", "__version__"]
__all__ += ["objectives", "optvis", "render", "render_layer"]
__all__ += ["circuits", "viz"]
