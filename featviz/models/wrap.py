"""Models from elsewhere: (any nn.Module, what its inputs are) -> the same model carrying what featviz reads.

featviz's tools read four attributes of a model: ``preprocess`` ((B, 3, H, W) in [0, 1] -> the tensor its
forward takes), ``input_size`` (pixels per side), ``labels`` (class names) and, optionally,
``interesting_layers``. Zoo models carry them; :func:`wrap` gives them to a torchvision, timm or own model.
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from featviz.core import Normalize, library_stats
from featviz.errors import BadType, BadValue

__all__ = ["wrap"]


def wrap(model: nn.Module, mean: float | Sequence[float] | None = None,
         std: float | Sequence[float] | None = None, input_size: int | None = None,
         labels: Sequence[str] | None = None, *, weights: object = None,
         interesting_layers: Sequence[str] | None = None) -> nn.Module:
    """Set ``model.preprocess`` (``Normalize(mean, std)``), ``input_size``, ``labels`` (and
    ``interesting_layers``) on ``model`` and return it (the same object; nothing else changes).

    What is not given is read where the model declares it: a torchvision weights enum passed as
    ``weights=`` (its ``transforms()`` mean, std and crop size, its ``meta["categories"]``), or timm's
    ``model.pretrained_cfg`` (mean, std, input size). Without mean and std anywhere the model gets its
    images unchanged (``preprocess = None``: featviz then does not warn).

    Example:
        >>> net = wrap(nn.Sequential(nn.Conv2d(3, 4, 3)), mean=0.5, std=0.25, input_size=32, labels=None)
        >>> net.preprocess, net.input_size
        (Normalize(mean=(0.5,), std=(0.25,)), 32)
        >>> import torchvision
        >>> tv = wrap(torchvision.models.resnet18(), weights=torchvision.models.ResNet18_Weights.DEFAULT)
        >>> tv.input_size, len(tv.labels), tv.preprocess.std
        (224, 1000, (0.229, 0.224, 0.225))
    """
    if not isinstance(model, nn.Module):
        raise BadType(f"wrap() needs an nn.Module, got {type(model).__name__}")
    if (mean is None) != (std is None):
        raise BadValue("give mean and std together (one number or one per RGB channel each)")
    declared = None
    if weights is not None:
        transforms = getattr(weights, "transforms", None)
        if not callable(transforms):
            raise BadType(f"weights= takes a torchvision weights enum (e.g. ResNet18_Weights.DEFAULT), got "
                          f"{type(weights).__name__}")
        holder = nn.Module()
        holder.transforms = transforms()
        declared = library_stats(holder)
        if labels is None:
            labels = (getattr(weights, "meta", None) or {}).get("categories")
    declared = declared or library_stats(model)
    if mean is None and declared is not None:
        mean, std = declared[0], declared[1]
    if input_size is None and declared is not None:
        input_size = declared[2]
    if input_size is not None and (isinstance(input_size, bool) or not isinstance(input_size, int)
                                   or input_size < 1):
        raise BadValue(f"input_size is the image side in pixels (a positive int), got {input_size!r}")
    model.preprocess = Normalize(mean, std) if mean is not None else None
    if input_size is not None:
        model.input_size = input_size
    if labels is not None:
        model.labels = list(labels)
    if interesting_layers is not None:
        names = dict(model.named_modules())
        missing = [n for n in interesting_layers if n not in names]
        if missing:
            raise BadValue(f"interesting_layers {missing} are not modules of {type(model).__name__}")
        model.interesting_layers = list(interesting_layers)
    return model
