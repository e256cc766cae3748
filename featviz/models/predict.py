"""Classification: images (B, 3, H, W) in [0, 1] -> per image, the top-k (label, probability) pairs."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from featviz.data.photos import resize_and_crop

__all__ = ["predict"]


def predict(model: nn.Module, images: Tensor, k: int = 5, labels: Sequence[str] | None = None,
            preprocess: Callable[[Tensor], Tensor] | None = None) -> list[list[tuple[str, float]]]:
    """Top-``k`` classes per image with their softmax probabilities, most likely first.

    Images of any size are resized (shorter side) and centre-cropped to ``model.input_size`` when
    the model has one, normalised with ``preprocess`` (default ``model.preprocess``, else
    unchanged) and run without gradients on the model's device. Labels come from ``labels``,
    else ``model.labels``, else the class indices as strings. The model should be in eval mode.

    Example:
        >>> import featviz as fv
        >>> model = fv.models.efficientnet_lite0()
        >>> images, names = fv.data.sample_images()
        >>> predict(model, images[names.index("coffee")][None], k=1)[0][0][0]
        'espresso'
    """
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a float tensor (B, 3, H, W) in [0, 1], got {shape}; "
                         "add a batch dimension with images[None] for a single image")
    if not images.is_floating_point():
        raise ValueError(f"images must be float in [0, 1], got dtype {images.dtype}; divide uint8 by 255")
    size = getattr(model, "input_size", None)
    if size is not None and tuple(images.shape[-2:]) != (size, size):
        images = resize_and_crop(images, size)
    preprocess = preprocess or getattr(model, "preprocess", None) or (lambda x: x)
    param = next(model.parameters(), None)
    if param is not None:
        images = images.to(param.device)
    with torch.no_grad():
        logits = model(preprocess(images))
    if logits.dim() != 2:
        raise ValueError(f"predict needs a classifier with (B, classes) outputs; the model gave "
                         f"{tuple(logits.shape)}")
    n_classes = logits.shape[1]
    if not 1 <= k <= n_classes:
        raise ValueError(f"k must be between 1 and the number of classes ({n_classes}), got {k}")
    labels = labels if labels is not None else getattr(model, "labels", None)
    if labels is None:
        labels = [str(i) for i in range(n_classes)]
    elif len(labels) != n_classes:
        raise ValueError(f"got {len(labels)} labels for a model with {n_classes} outputs")
    probs, idx = logits.softmax(dim=1).topk(k, dim=1)
    return [[(labels[j], float(p)) for p, j in zip(row_p.tolist(), row_i.tolist())]
            for row_p, row_i in zip(probs, idx)]
