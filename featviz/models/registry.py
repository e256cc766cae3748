"""Model registry: name -> constructor, so the CLI and notebooks can ask for a model by name."""
from __future__ import annotations

import difflib
from collections.abc import Callable

from torch import nn

from featviz.errors import BadValue, UnknownName

__all__ = ["get", "list_models", "register"]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str, constructor: Callable[..., nn.Module]) -> None:
    """Make ``constructor`` available as ``get(name)``; a taken name raises ``ValueError``.

    Example:
        >>> register("my_net", lambda: nn.Linear(2, 2))
        >>> get("my_net")
        Linear(in_features=2, out_features=2, bias=True)
    """
    if name in _REGISTRY:
        raise BadValue(f"a model named {name!r} is already registered")
    _REGISTRY[name] = constructor


def list_models() -> list[str]:
    """Names of the registered models, sorted.

    Example:
        >>> list_models()
        ['edges_and_curves', 'efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2', 'inception_v1',
         'resnet18']
    """
    return sorted(_REGISTRY)


def get(name: str, **kwargs) -> nn.Module:
    """Build the model registered as ``name``, passing ``kwargs`` to its constructor.

    Unknown names raise ``KeyError`` listing the closest registered names.

    Example:
        >>> model = get("efficientnet_lite0", pretrained=False)
        >>> model.input_size
        224
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        raise UnknownName(f"no model named {name!r}; {hint}available: {', '.join(list_models())}")
    return _REGISTRY[name](**kwargs)
