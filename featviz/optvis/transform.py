"""Random image transformations: (config) -> (images (B, 3, H, W), generator) -> transformed images.

Every transform is differentiable (the optimiser's gradient flows back through it), works on a whole
batch, and draws its randomness from the ``torch.Generator`` it is given (``None``: torch's global
RNG), so a seeded render is reproducible. Sizes may change (``pad`` grows, ``jitter`` crops,
``random_scale`` resizes); the model sees whatever comes out.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Transform = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]


def _choice(values: Sequence[float], n: int, generator: torch.Generator | None) -> torch.Tensor:
    idx = torch.randint(len(values), (n,), generator=generator)
    return torch.tensor([float(v) for v in values])[idx]


def _nonempty(name: str, values: Sequence[float]) -> list[float]:
    values = list(values)
    if not values:
        raise ValueError(f"{name} needs at least one value to choose from, got an empty sequence")
    return values


def pad(width: int, value: float = 0.5, mode: str = "constant") -> Transform:
    """Pad ``width`` pixels on every side (constant ``value``, or ``mode="reflect"``/``"replicate"``).

    Example:
        >>> pad(2)(torch.zeros(1, 3, 4, 4), None).shape
        torch.Size([1, 3, 8, 8])
    """
    if width < 0:
        raise ValueError(f"pad width must be >= 0, got {width}")

    def transform(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if mode == "constant":
            return F.pad(x, [width] * 4, mode="constant", value=value)
        return F.pad(x, [width] * 4, mode=mode)

    return transform


def jitter(d: int) -> Transform:
    """Random crop that is ``d`` pixels smaller in each dimension (a shift by 0..d px, one per step).

    Example:
        >>> jitter(4)(torch.zeros(2, 3, 16, 16), torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3, 12, 12])
    """
    if d < 0:
        raise ValueError(f"jitter d must be >= 0, got {d}")

    def transform(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        if d >= min(h, w):
            raise ValueError(f"jitter({d}) needs images larger than {d} px, got {h}x{w}")
        dy, dx = torch.randint(d + 1, (2,), generator=generator).tolist()
        return x[..., dy : dy + h - d, dx : dx + w - d]

    return transform


def random_scale(scales: Sequence[float]) -> Transform:
    """Resize by a factor drawn from ``scales`` (bilinear; one factor per step for the whole batch).

    Example:
        >>> random_scale([2.0])(torch.zeros(1, 3, 8, 8), None).shape
        torch.Size([1, 3, 16, 16])
    """
    scales = _nonempty("random_scale", scales)

    def transform(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        s = float(_choice(scales, 1, generator))
        h, w = x.shape[-2:]
        size = (max(1, round(h * s)), max(1, round(w * s)))
        if size == (h, w):
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    return transform


def random_rotate(angles: Sequence[float], fill: float = 0.5) -> Transform:
    """Rotate each image by its own angle (degrees) drawn from ``angles``; corners are filled with ``fill``.

    Example:
        >>> random_rotate([90])(torch.zeros(2, 3, 8, 8), None).shape
        torch.Size([2, 3, 8, 8])
    """
    angles = _nonempty("random_rotate", angles)

    def transform(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b, _, h, w = x.shape
        rad = _choice(angles, b, generator) * (math.pi / 180.0)  # (B,)
        cos, sin = torch.cos(rad), torch.sin(rad)
        # Output -> input sampling map in normalised coordinates, corrected for the aspect ratio.
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * (h / w)
        theta[:, 1, 0], theta[:, 1, 1] = sin * (w / h), cos
        grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
        out = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out + fill

    return transform


def compose(transforms: Sequence[Transform]) -> Transform:
    """Apply ``transforms`` left to right, sharing one generator.

    Example:
        >>> compose([pad(2), jitter(4)])(torch.zeros(1, 3, 8, 8), None).shape
        torch.Size([1, 3, 8, 8])
    """
    transforms = list(transforms)

    def transform(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for t in transforms:
            x = t(x, generator)
        return x

    return transform


def standard_transforms() -> Transform:
    """lucid's recipe: pad 12 (grey), jitter 8, scale 0.9..1.1, rotate -10..10 deg (extra 0s), jitter 4.

    Example:
        >>> standard_transforms()(torch.rand(1, 3, 128, 128), torch.Generator().manual_seed(0)).shape[:2]
        torch.Size([1, 3])
    """
    return compose(
        [
            pad(12, value=0.5),
            jitter(8),
            random_scale([1 + (i - 5) / 50 for i in range(11)]),
            random_rotate(list(range(-10, 11)) + 5 * [0]),
            jitter(4),
        ]
    )


def identity() -> Transform:
    """No transformation (for tests and for seeing what the unregularised optimum looks like).

    Example:
        >>> identity()(torch.ones(1, 3, 2, 2), None).sum()
        tensor(12.)
    """
    return lambda x, generator=None: x


__all__ = ["compose", "identity", "jitter", "pad", "random_rotate", "random_scale", "standard_transforms"]
