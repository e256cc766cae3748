"""Preprocessing: (B, 3, H, W) images (float in [0, 1] or uint8) -> the tensor a model's forward takes."""
from __future__ import annotations

import torch
from torch import Tensor

from featviz.core import Normalize
from featviz.errors import BadType, BadValue

__all__ = ["Normalize", "as_float_images", "check_pixels"]


def as_float_images(images: Tensor, what: str = "images", *, unit: bool = False) -> Tensor:
    """The one uint8 rule of featviz: uint8 pixels (0..255) become float32 in [0, 1] (divided by 255);
    float tensors pass unchanged (their dtype kept); bool becomes 0.0 / 1.0. Other integer dtypes are
    ambiguous (0..255? 0..65535? labels?) and raise :class:`~featviz.errors.BadType` with the fix.
    NaN or infinite values are a :class:`~featviz.errors.BadValue` (they would give NaN results).
    ``unit=True`` (functions whose images must be in [0, 1], e.g. ``predict``) also refuses float
    values outside [0, 1] (images in 0..255 divided by nothing), naming the fix.

    Used by every function that takes images (``predict``, ``attribute``, ``dataset_examples``, ...).
    Shapes are not checked here.

    Example:
        >>> as_float_images(torch.tensor([0, 51, 255], dtype=torch.uint8))
        tensor([0.0000, 0.2000, 1.0000])
        >>> as_float_images(torch.tensor([0.5])).dtype
        torch.float32
    """
    if not isinstance(images, Tensor):
        raise BadType(f"{what} must be a torch.Tensor (B, 3, H, W) in [0, 1], got {type(images).__name__}; "
                      "convert with torch.as_tensor(...)")
    if images.dtype == torch.uint8:
        return images.float() / 255
    if images.dtype == torch.bool:
        return images.float()
    if images.is_floating_point():
        check_pixels(images, what, unit=unit)
        return images
    raise BadType(f"{what} have dtype {images.dtype}, which featviz cannot read as pixels; give float values "
                  "in [0, 1] or uint8 in 0..255 (e.g. images.to(torch.uint8) or images.float() / 255)")


def check_pixels(images: Tensor, what: str = "images", *, unit: bool = False) -> None:
    """Raise :class:`~featviz.errors.BadValue` for NaN / infinite values and, with ``unit=True``, for float
    values outside [0, 1] (a tolerance of 1e-3 allows rounding).

    Example:
        >>> check_pixels(torch.full((1, 3, 2, 2), 200.0), unit=True)
        Traceback (most recent call last):
        featviz.errors.BadValue: images hold values up to 200 but must be in [0, 1]: ... divide by 255 ...
    """
    finite = torch.isfinite(images)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        kind = "NaN" if bool(torch.isnan(images).any()) else "infinite"
        raise BadValue(f"{what} hold {bad} {kind} value(s) (of {images.numel()}); every pixel must be a "
                       f"number (check how the images were made; torch.nan_to_num(x) replaces them)")
    if unit and images.numel():
        lo, hi = float(images.min()), float(images.max())
        if hi > 1 + 1e-3:
            hint = "images in 0..255: divide by 255 (x / 255), or pass uint8" if hi <= 255.5 else \
                "rescale them to [0, 1]"
            raise BadValue(f"{what} hold values up to {hi:g} but must be in [0, 1]: {hint}")
        if lo < -1e-3:
            raise BadValue(f"{what} hold values down to {lo:g} but must be in [0, 1] (normalised images? "
                           f"pass the raw [0, 1] images; the model's preprocess normalises them)")
