"""Classification: images (B, 3, H, W) in [0, 1] -> per image, the top-k (label, probability) pairs."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from featviz.core import check_materialized, device_of, dtype_of, evaluating, input_size_of, preprocess_fn
from featviz.data.photos import resize_and_crop
from featviz.data.preprocess import as_float_images
from featviz.errors import BadType, BadValue, NonFinite

__all__ = ["predict"]


def predict(model: nn.Module, images: Tensor, k: int = 5, labels: Sequence[str] | None = None,
            preprocess: Callable[[Tensor], Tensor] | None = None) -> list[list[tuple[str, float]]]:
    """Top-``k`` classes per image with their softmax probabilities, most likely first.

    Args:
        model: a classifier whose output is (B, n_classes) logits; it should be in eval mode.
        images: (B, 3, H, W), float in [0, 1] or uint8 in 0..255 (divided by 255, the rule of
            :func:`~featviz.data.preprocess.as_float_images`). Images of any size are resized (shorter
            side) and centre-cropped to ``model.input_size`` when the model has one.
        k: how many classes to list per image.
        labels: class names, indexed by class; default ``model.labels``, else the class indices as
            strings.
        preprocess: maps [0, 1] images to the model's input; default ``model.preprocess``, else
            unchanged; ``False``: unchanged (``featviz.core.preprocess_fn``).

    Returns:
        One list per image of ``k`` (label, probability) pairs, most likely first. The model runs
        without gradients on its own device and dtype.

    Example:
        >>> import featviz as fv
        >>> model = fv.models.efficientnet_lite0()
        >>> images, names = fv.data.sample_images()
        >>> predict(model, images[names.index("coffee")][None], k=1)[0][0][0]
        'espresso'
    """
    images = as_float_images(images, unit=True)
    if images.dim() != 4 or images.shape[1] != 3:
        hint = ("add a batch dimension with images[None] for a single image" if images.dim() == 3 else
                "RGB images have 3 channels: repeat grey ones with x.expand(-1, 3, -1, -1)")
        raise BadValue(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}; {hint}")
    if images.shape[0] == 0:
        raise BadValue("images is an empty batch (B = 0); give at least one image")
    if isinstance(k, bool) or not isinstance(k, int):
        raise BadType(f"k must be an int, got {type(k).__name__}")
    size = input_size_of(model)
    if size is not None and tuple(images.shape[-2:]) != (size, size):
        images = resize_and_crop(images, size)
    check_materialized(model)
    preprocess = preprocess_fn(model, preprocess)
    images = images.to(device_of(model), dtype_of(model))  # float64 images into a float32 model
    with torch.no_grad(), evaluating(model):  # eval mode; a train-mode model's BatchNorm stats kept
        logits = model(preprocess(images))
    if logits.dim() != 2:
        raise BadValue(f"predict needs a classifier with (B, classes) outputs; the model gave "
                         f"{tuple(logits.shape)}")
    if not bool(torch.isfinite(logits).all()):
        bad = int((~torch.isfinite(logits)).any(1).sum())
        raise NonFinite(f"the model's outputs are NaN or infinite on finite images ({bad} of {len(logits)}): "
                        "check its weights and forward; values that are not numbers cannot be ranked")
    n_classes = logits.shape[1]
    if not 1 <= k <= n_classes:
        raise BadValue(f"k must be between 1 and the number of classes ({n_classes}), got {k}")
    labels = labels if labels is not None else getattr(model, "labels", None)
    if labels is None:
        labels = [str(i) for i in range(n_classes)]
    elif len(labels) != n_classes:
        raise BadValue(f"got {len(labels)} labels for a model with {n_classes} outputs; give one label "
                       "per output, or labels=None for the class indices")
    probs, idx = logits.softmax(dim=1).topk(k, dim=1)
    return [[(labels[j], float(p)) for p, j in zip(row_p.tolist(), row_i.tolist())]
            for row_p, row_i in zip(probs, idx)]
