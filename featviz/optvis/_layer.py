"""One layer's activations on many images: (model, layer, images (N, 3, H, W)) -> (N, C, h, w), streamed.

Shared by ``factorize``, ``atlas`` and ``invert``: images go through the model's preprocessing in
batches (``HookedModel.stream``: eval mode, no gradients), and the forward pass stops at ``layer``.
``as_images`` is ``featviz.core.as_images`` (kept here under its old name).

Example:
    >>> acts = layer_activations(fv.models.toy.edges_and_curves(), "relu1", torch.rand(3, 3, 16, 16))
    >>> acts.shape
    torch.Size([3, 8, 16, 16])
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from featviz.core import as_images
from featviz.errors import BadValue
from featviz.hooks import HookedModel, hooked

__all__ = ["as_images", "iter_activations", "layer_activations"]


def iter_activations(model: nn.Module | HookedModel, layer: str, images: torch.Tensor, *,
                     batch_size: int = 32, preprocess: Callable | None = None,
                     progress: bool = True) -> Iterator[torch.Tensor]:
    """Yield ``layer``'s activations (b, C, h, w) for consecutive batches of ``images``, on the CPU.

    Example:
        >>> model = fv.models.toy.edges_and_curves()
        >>> [a.shape[0] for a in iter_activations(model, "conv2", torch.rand(5, 3, 16, 16), batch_size=2)]
        [2, 2, 1]
    """
    hm = hooked(model)
    name = hm.layer(layer)
    images = as_images(images)
    for _, cache in hm.stream(images, [name], batch_size=batch_size, preprocess=preprocess, progress=progress,
                              desc=f"activations {name}"[:60]):
        act = cache[name]
        if not isinstance(act, torch.Tensor) or act.dim() != 4:
            shape = tuple(act.shape) if isinstance(act, torch.Tensor) else type(act).__name__
            raise BadValue(f"{name}'s output is {shape}; this needs (B, C, H, W) feature maps: pick a "
                           "convolutional layer")
        yield act.float().cpu()


def layer_activations(model: nn.Module | HookedModel, layer: str, images: torch.Tensor, *,
                      batch_size: int = 32, preprocess: Callable | None = None,
                      progress: bool = True) -> torch.Tensor:
    """``layer``'s activations for all ``images`` at once, (N, C, h, w) on the CPU (``iter_activations``)."""
    return torch.cat(list(iter_activations(model, layer, images, batch_size=batch_size, preprocess=preprocess,
                                           progress=progress)))
