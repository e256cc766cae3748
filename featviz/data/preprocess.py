"""Preprocessing: (B, 3, H, W) images (float in [0, 1] or uint8) -> the tensor a model's forward takes.

The rules themselves live in :mod:`featviz.core` (the lowest layer, so every package can use them):
:func:`~featviz.core.as_images` (shape and dtype), :func:`~featviz.core.as_float_images` (dtype only,
the uint8 rule) and :func:`~featviz.core.check_pixels`; this module re-exports them under their old
home, as the same objects.

Example:
    >>> as_float_images(torch.tensor([0, 51, 255], dtype=torch.uint8))
    tensor([0.0000, 0.2000, 1.0000])
"""
from __future__ import annotations

import torch  # noqa: F401  (the doctests above use it)

from featviz.core import Normalize, as_float_images, as_images, check_pixels

__all__ = ["Normalize", "as_float_images", "as_images", "check_pixels"]
