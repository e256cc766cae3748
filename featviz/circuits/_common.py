"""Image validation for circuits: (images) -> a float (B, C, H, W) tensor, or a clear error.

Nothing here is public. (Transitional: replaced by ``featviz.core.as_images`` once it lands.)
"""
from __future__ import annotations

import torch

from featviz.data.preprocess import as_float_images
from featviz.errors import BadType, BadValue

__all__ = ["check_images"]


def check_images(images: torch.Tensor, what: str = "inputs") -> torch.Tensor:
    """``images`` if it is a float (B, C, H, W) tensor, else a TypeError/ValueError saying what is wanted."""
    if not isinstance(images, torch.Tensor):
        raise BadType(f"{what} must be a (B, C, H, W) float tensor, got {type(images).__name__}")
    if images.dim() != 4:
        raise BadValue(f"{what} must have shape (B, C, H, W), got {tuple(images.shape)}")
    return as_float_images(images, what).float()  # the one uint8 rule: uint8 / 255
