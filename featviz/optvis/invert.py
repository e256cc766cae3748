"""Feature inversion and caricatures: (model, layer, images (N, 3, H, W)) -> Rendering of N optimised images.

``invert`` finds an image whose activations at ``layer`` point the same way as a photo's (cosine
similarity of the flattened (C, h, w) maps); ``caricature`` pushes further along them (dot product):
what the layer "sees" in the photo, exaggerated. Both run ``fv.render`` with its parameterisation and
transforms. The photo goes through the *same* random transform as the image at every step (they are
stacked along the channels before the transform and split after), so the two activation maps stay
aligned position by position; the photo's activations are recomputed without gradient each step.

Example:
    >>> model, photo = fv.models.toy.edges_and_curves(), torch.rand(1, 3, 24, 24)
    >>> r = fv.invert(model, "relu1", photo, steps=4, progress=False)
    >>> r.images.shape, r.labels
    (torch.Size([1, 3, 24, 24]), ['invert(relu1)'])
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from featviz.core import as_images, device_of, preprocess_fn
from featviz.errors import BadType, BadValue
from featviz.hooks import HookedModel, hooked
from featviz.optvis.objectives import Objective
from featviz.optvis.render import _as_transform, render
from featviz.optvis.rendering import Rendering
from featviz.optvis.transform import Transform

__all__ = ["caricature", "invert"]


class _Paired:
    """A transform that gives the target images the same random geometry as the optimised ones.

    ``x`` (B, 3, H, W) and the targets (B, 3, H, W) are stacked to (B, 6, H, W), transformed together,
    and split; the transformed targets wait in ``pending`` for the objective of the same step.
    """

    def __init__(self, transform: Transform, targets: torch.Tensor) -> None:
        self.transform, self.targets = transform, targets
        self.pending: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        both = self.transform(torch.cat([x, self.targets.to(x)], dim=1), generator)
        self.pending = both[:, 3:].detach()
        return both[:, :3]

    def take(self) -> torch.Tensor:
        """The targets as the model should see them now (transformed this step, or as they are)."""
        t, self.pending = self.pending, None
        return self.targets if t is None else t


def _compare(hm: HookedModel, layer: str, paired: _Paired, prep: Callable, kind: str,
             cossim_pow: float) -> Objective:
    """Objective comparing ``layer``'s activations with the (equally transformed) targets' activations."""

    def fn(acts):
        a = acts[layer]  # (B, C, h, w), in the graph
        target = paired.take().to(a.device)
        with torch.no_grad():
            _, cache = hm.run_with_cache(prep(target), names=[layer], stop_at_last=True)
        t = cache[layer].to(a.dtype).flatten(1)  # (B, C*h*w)
        a = a.flatten(1)
        if a.shape != t.shape:
            raise BadValue(f"{layer} gave {tuple(a.shape)} for the image but {tuple(t.shape)} for the target")
        cos = F.cosine_similarity(a, t, dim=1, eps=1e-8)  # (B,)
        if kind == "invert":
            return cos
        along = (a * t).sum(1) / t.norm(dim=1).clamp(min=1e-8)  # length of a along the target direction
        return along * cos.clamp(min=0.1) ** cossim_pow if cossim_pow else along

    return Objective(fn, f"{kind}({layer})", [layer])


def _run(kind: str, model: nn.Module | HookedModel, layer: str, images: torch.Tensor | None,
         cossim_pow: float, transforms: Transform | Sequence[Transform] | None, preprocess: Callable | None,
         kwargs: dict) -> Rendering:
    if "image" in kwargs:  # the old name of the images argument
        warnings.warn(f"{kind}(..., image=) is deprecated: the argument is called images now",
                      DeprecationWarning, stacklevel=3)
        if images is not None:
            raise BadType(f"{kind} got both images= and the deprecated image=; give images only")
        images = kwargs.pop("image")
    if images is None:
        raise BadType(f"{kind} needs images: a (3, H, W) or (N, 3, H, W) tensor in [0, 1]")
    hm = hooked(model)
    name = hm.layer(layer)
    targets = as_images(images).detach().to(device_of(hm.model))  # (N, 3, H, W)
    for key in ("batch", "size"):
        if key in kwargs:
            raise BadValue(f"{kind} takes its batch and size from the images ({tuple(targets.shape)}); "
                           f"drop {key}=")
    paired = _Paired(_as_transform(transforms), targets)
    prep = preprocess_fn(hm, preprocess)
    obj = _compare(hm, name, paired, prep, kind, cossim_pow)
    r = render(hm, obj, size=tuple(targets.shape[-2:]), batch=len(targets), transforms=paired,
               preprocess=preprocess, **kwargs)
    r.labels = [obj.name] * len(targets)
    return r


def invert(model: nn.Module | HookedModel, layer: str, images: torch.Tensor | None = None, *,
           transforms: Transform | Sequence[Transform] | None = None,
           preprocess: Callable | None = None, **kwargs: Any) -> Rendering:
    """An image whose ``layer`` activations match those of ``images``: maximise their cosine similarity.

    Args:
        model: any ``nn.Module`` (or ``fv.hooked`` model).
        layer: the layer whose activations are matched, ``"layer"``: an early layer gives back the
            photo's edges and colours, a late one only what the network kept.
        images: (3, H, W) or (N, 3, H, W) in [0, 1] (``featviz.core.as_images``: uint8 is read as
            0..255); N images are inverted in one batched run, at their size H x W. (The old keyword
            ``image=`` still works, with a ``DeprecationWarning``.)
        transforms: as in ``fv.render`` (default ``standard_transforms()``); applied identically to the
            image and the target each step, so they must work on any number of channels (featviz's do).
        preprocess: maps [0, 1] images to the model's input; default ``model.preprocess``, else identity.
        kwargs: other ``fv.render`` arguments (``settings``, ``steps``, ``lr``, ``param``, ``seed``,
            ``progress``, ...).

    Returns:
        A ``Rendering``: ``images`` the inversions; ``activations`` the final cosine similarity (1 = the
        same activations up to scale).

    Example:
        >>> model, photo = fv.models.toy.edges_and_curves(), torch.rand(2, 3, 24, 24)
        >>> r = fv.invert(model, "relu2", photo, steps=8, progress=False)
        >>> r.images.shape, bool((r.activations <= 1).all())
        (torch.Size([2, 3, 24, 24]), True)
    """
    return _run("invert", model, layer, images, 0.0, transforms, preprocess, kwargs)


def caricature(model: nn.Module | HookedModel, layer: str, images: torch.Tensor | None = None, *,
               cossim_pow: float = 0.0,
               transforms: Transform | Sequence[Transform] | None = None,
               preprocess: Callable | None = None, **kwargs) -> Rendering:
    """Exaggerate what ``layer`` sees in ``images``: maximise the dot product with their activations.

    The value is the length of the image's activations along the target's (the dot product divided by
    the target's norm), times ``max(cos, 0.1) ** cossim_pow`` when ``cossim_pow > 0`` (keeps the
    caricature closer to the photo's pattern). Arguments as in :func:`invert`.

    Example:
        >>> model, photo = fv.models.toy.edges_and_curves(), torch.rand(1, 3, 24, 24)
        >>> r = fv.caricature(model, "relu1", photo, steps=8, progress=False)
        >>> r.labels, r.activations.shape
        (['caricature(relu1)'], torch.Size([1]))
    """
    return _run("caricature", model, layer, images, cossim_pow, transforms, preprocess, kwargs)
