"""One layer's activations on many images: (model, layer, images (N, 3, H, W)) -> (N, C, h, w), streamed.

Shared by ``factorize``, ``atlas`` and ``invert``: images go through the model's preprocessing in
batches, with parameters frozen and the model in eval mode, and the forward pass stops at ``layer``.

Example:
    >>> acts = layer_activations(fv.models.toy.edges_and_curves(), "relu1", torch.rand(3, 3, 16, 16))
    >>> acts.shape
    torch.Size([3, 8, 16, 16])
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from featviz.core import device_of, preprocess_fn
from featviz.data.preprocess import check_pixels
from featviz.errors import BadType, BadValue
from featviz.hooks import HookedModel, hooked
from featviz.optvis.render import frozen

__all__ = ["as_images", "iter_activations", "layer_activations"]


def as_images(images: object, what: str = "images") -> torch.Tensor:
    """``images`` as a float (N, 3, H, W) tensor in [0, 1]; an ``Images`` tuple gives its tensor.

    Example:
        >>> as_images(torch.rand(3, 8, 8)).shape
        torch.Size([1, 3, 8, 8])
    """
    if isinstance(images, tuple) and images and isinstance(images[0], torch.Tensor):  # fv.data.Images
        images = images[0]
    if not isinstance(images, torch.Tensor):
        raise BadType(f"{what} must be a (N, 3, H, W) float tensor in [0, 1] (e.g. "
                      f"fv.data.load_images(folder).images), got {type(images).__name__}")
    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise BadValue(f"{what} must be a (N, 3, H, W) float tensor in [0, 1], got {images.dtype} "
                       f"{tuple(images.shape)}")
    if len(images) == 0:
        raise BadValue(f"{what} is empty: give at least one image")
    check_pixels(images, what, unit=True)
    return images


def iter_activations(model: nn.Module | HookedModel, layer: str, images: torch.Tensor, *,
                     batch_size: int = 32, preprocess: Callable | None = None,
                     progress: bool = False) -> Iterator[torch.Tensor]:
    """Yield ``layer``'s activations (b, C, h, w) for consecutive batches of ``images``, on the CPU.

    Example:
        >>> model = fv.models.toy.edges_and_curves()
        >>> [a.shape[0] for a in iter_activations(model, "conv2", torch.rand(5, 3, 16, 16), batch_size=2)]
        [2, 2, 1]
    """
    hm = hooked(model)
    name, ch = hm.parse(layer)
    if ch is not None:
        raise BadValue(f"give a layer name, not a channel: {layer!r} -> {name!r}")
    images = as_images(images)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BadValue(f"batch_size must be a positive int, got {batch_size!r}")
    prep = preprocess_fn(hm, preprocess)
    device = device_of(hm.model)
    with torch.no_grad(), frozen(hm.model):
        for start in tqdm(range(0, len(images), batch_size), desc=f"activations {name}"[:60],
                          disable=not progress):
            x = images[start : start + batch_size].to(device)
            _, cache = hm.run_with_cache(prep(x), names=[name], stop_at_last=True)
            act = cache[name]
            if not isinstance(act, torch.Tensor) or act.dim() != 4:
                shape = tuple(act.shape) if isinstance(act, torch.Tensor) else type(act).__name__
                raise BadValue(f"{name}'s output is {shape}; this needs (B, C, H, W) feature maps: pick a "
                               "convolutional layer")
            yield act.float().cpu()


def layer_activations(model: nn.Module | HookedModel, layer: str, images: torch.Tensor, *,
                      batch_size: int = 32, preprocess: Callable | None = None,
                      progress: bool = False) -> torch.Tensor:
    """``layer``'s activations for all ``images`` at once, (N, C, h, w) on the CPU (``iter_activations``)."""
    return torch.cat(list(iter_activations(model, layer, images, batch_size=batch_size, preprocess=preprocess,
                                           progress=progress)))
