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

from featviz.errors import BadValue

Transform = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]


def _choice(values: Sequence[float], n: int, generator: torch.Generator | None) -> torch.Tensor:
    idx = torch.randint(len(values), (n,), generator=generator)
    return torch.tensor([float(v) for v in values])[idx]


def _nonempty(name: str, values: Sequence[float]) -> list[float]:
    values = list(values)
    if not values:
        raise BadValue(f"{name} needs at least one value to choose from, got an empty sequence")
    return values


def pad(width: int, value: float = 0.5, mode: str = "constant") -> Transform:
    """Pad ``width`` pixels on every side (constant ``value``, or ``mode="reflect"``/``"replicate"``).

    Example:
        >>> pad(2)(torch.zeros(1, 3, 4, 4), None).shape
        torch.Size([1, 3, 8, 8])
    """
    if width < 0:
        raise BadValue(f"pad width must be >= 0, got {width}")

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
        raise BadValue(f"jitter d must be >= 0, got {d}")

    def transform(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        if d >= min(h, w):
            raise BadValue(f"jitter({d}) needs images larger than {d} px, got {h}x{w}")
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

    Computed as one resampling (``random_pad_scale_rotate``): the same random draws, in the same
    order, as ``compose([pad(12, 0.5), jitter(8), random_scale(...), random_rotate(...), jitter(4)])``,
    and the same output size, but one bilinear ``grid_sample`` instead of a pad, two crops, a resize
    and a rotation (3-4x less work; the chain also blurs twice, once when scaling and once when
    rotating, where the fused map interpolates once).

    Example:
        >>> standard_transforms()(torch.rand(1, 3, 128, 128), torch.Generator().manual_seed(0)).shape[:2]
        torch.Size([1, 3])
    """
    scales, angles = [1 + (i - 5) / 50 for i in range(11)], list(range(-10, 11)) + 5 * [0]
    return random_pad_scale_rotate(12, 8, scales, angles, 4, fill=0.5)


def random_pad_scale_rotate(width: int, d1: int, scales: Sequence[float], angles: Sequence[float], d2: int,
                            fill: float = 0.5) -> Transform:
    """``compose([pad(width, fill), jitter(d1), random_scale(scales), random_rotate(angles, fill),
    jitter(d2)])`` as one affine map per image, sampled once (bilinear, ``fill`` outside the image).

    Draws the generator exactly as the composed chain does (shift, scale, one angle per image, shift),
    so a seed gives the same geometry, and returns the same size. Without rotation and scaling it is
    the chain's exact crop of the padded image.

    Example:
        >>> x, g = torch.rand(2, 3, 32, 32), torch.Generator().manual_seed(0)
        >>> random_pad_scale_rotate(4, 2, [1.0], [0], 2)(x, g).shape     # 32 + 8 - 2 - 2
        torch.Size([2, 3, 36, 36])
    """
    if min(width, d1, d2) < 0:
        raise BadValue(f"pad width and jitter sizes must be >= 0, got {width}, {d1}, {d2}")
    scales, angles = _nonempty("random_scale", scales), _nonempty("random_rotate", angles)

    def transform(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b, _, h, w = x.shape
        hc, wc = h + 2 * width - d1, w + 2 * width - d1  # after pad and the first jitter
        if d1 >= min(h, w) + 2 * width:
            raise BadValue(f"jitter({d1}) needs images larger than {d1} px, got {h + 2 * width}x"
                             f"{w + 2 * width}")
        dy, dx = torch.randint(d1 + 1, (2,), generator=generator).tolist()
        s = float(_choice(scales, 1, generator))
        hs, ws = max(1, round(hc * s)), max(1, round(wc * s))  # after scaling
        rad = (_choice(angles, b, generator) * (math.pi / 180.0)).double()  # (B,)
        if d2 >= min(hs, ws):
            raise BadValue(f"jitter({d2}) needs images larger than {d2} px, got {hs}x{ws}")
        ey, ex = torch.randint(d2 + 1, (2,), generator=generator).tolist()
        ho, wo = hs - d2, ws - d2
        # Pixel coordinates (x, y; pixel i spans [i, i+1]) of the output, mapped back step by step to the
        # input: undo the second crop, rotate about the scaled image's centre, undo the scaling, undo the
        # first crop and the pad. Then from and to grid_sample's normalised coordinates.
        cos, sin = torch.cos(rad), torch.sin(rad)
        rot = torch.zeros(b, 3, 3, dtype=torch.float64)
        rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = cos, -sin, sin, cos, 1.0

        def affine(sx: float, sy: float, tx: float, ty: float) -> torch.Tensor:  # (3, 3)
            return torch.tensor([[sx, 0.0, tx], [0.0, sy, ty], [0.0, 0.0, 1.0]], dtype=torch.float64)

        from_out = affine(wo / 2, ho / 2, wo / 2 + ex - ws / 2, ho / 2 + ey - hs / 2)  # normalised -> centred
        to_in = affine(2 / w, 2 / h, -1.0, -1.0) @ affine(wc / ws, hc / hs, dx - width + wc / 2,
                                                           dy - width + hc / 2)
        theta = (to_in @ rot @ from_out)[:, :2]  # (B, 2, 3): output -> input, normalised
        grid = F.affine_grid(theta.to(x.device, x.dtype), [b, x.shape[1], ho, wo], align_corners=False)
        out = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out + fill  # (B, C, ho, wo)

    return transform


def identity() -> Transform:
    """No transformation (for tests and for seeing what the unregularised optimum looks like).

    Example:
        >>> identity()(torch.ones(1, 3, 2, 2), None).sum()
        tensor(12.)
    """
    return lambda x, generator=None: x


__all__ = ["compose", "identity", "jitter", "pad", "random_pad_scale_rotate", "random_rotate", "random_scale",
           "standard_transforms"]
