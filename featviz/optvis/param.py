"""Image parameterisations: (size, batch, seed) -> (params, image_fn), image_fn() -> (B, 3, H, W) in [0, 1].

An optimiser updates ``params``; ``image_fn`` turns them into images. Both parameterisations optimise
in a decorrelated colour space (lucid's ImageNet colour matrix) and squash with a sigmoid, as in
Olah, Mordvintsev & Schubert, "Feature Visualization" (Distill, 2017). Initial values come from a
local ``torch.Generator`` seeded with ``seed``: the global RNG is never touched.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from featviz.errors import BadValue

ImageFn = Callable[[], torch.Tensor]
Param = tuple[list[torch.Tensor], ImageFn]

# Square root of ImageNet's RGB colour covariance (lucid's matrix), rows = output R, G, B.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_CORRELATION = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()  # (3, 3), largest column norm 1
"""(3, 3) colour mixing matrix: decorrelated channels -> RGB (square root of ImageNet's colour covariance,
scaled to largest column norm 1), as in lucid."""


def _size_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if not (isinstance(h, int) and isinstance(w, int)) or h < 1 or w < 1:
        raise BadValue(f"size must be a positive int or (H, W) pair of positive ints, got {size!r}")
    return h, w


def _check_batch(batch: int) -> None:
    if not isinstance(batch, int) or batch < 1:
        raise BadValue(f"batch must be a positive int, got {batch!r}")


def _randn(shape: tuple[int, ...], sd: float, seed: int, device: torch.device | str | None) -> torch.Tensor:
    gen = torch.Generator().manual_seed(int(seed))  # CPU generator: same numbers on every device
    return (torch.randn(shape, generator=gen) * sd).to(device)


def to_rgb(t: torch.Tensor, decorrelate: bool = True, sigmoid: bool = True) -> torch.Tensor:
    """Map an unconstrained (B, 3, H, W) tensor to RGB in [0, 1]: colour matrix, then sigmoid.

    With ``sigmoid=False`` the values are clamped instead (gradients vanish outside [0, 1]).

    Example:
        >>> to_rgb(torch.zeros(1, 3, 4, 4)).unique()
        tensor([0.5000])
    """
    if decorrelate:  # a 1x1 convolution: the same sums as einsum("ij,bjhw->bihw"), ~2x faster on a CPU
        t = F.conv2d(t, COLOR_CORRELATION.to(t.device, t.dtype)[:, :, None, None])
    return torch.sigmoid(t) if sigmoid else t.clamp(0, 1)


def _with_alpha(rgb: torch.Tensor, raw: torch.Tensor, alpha: bool) -> torch.Tensor:
    """(B, 3, H, W) colours, plus sigmoid(raw[:, 3:]) as a fourth channel when ``alpha``."""
    return torch.cat([rgb, torch.sigmoid(raw[:, 3:4])], dim=1) if alpha else rgb


def random_background(shape: tuple[int, ...], generator: torch.Generator | None = None, sd: float = 0.2,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """Smooth random colour images of ``shape`` (B, 3, H, W) in [0, 1]: 1/f noise through the colour matrix.

    A fresh one behind a transparent rendering each step (lucid's recipe) teaches the optimiser that
    the background cannot be relied on, so only what the unit needs stays opaque.

    Example:
        >>> random_background((2, 3, 16, 16), torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3, 16, 16])
    """
    b, _, h, w = shape
    freqs = rfft2d_freqs(h, w)
    scale = 1.0 / torch.clamp(freqs, min=1.0 / max(h, w))
    spectrum = torch.randn((b, 3, *freqs.shape, 2), generator=generator) * sd
    pixels = torch.fft.irfft2(torch.view_as_complex(spectrum) * scale, s=(h, w), norm="ortho") / 4.0
    return to_rgb(pixels.to(device))


def pixel_image(
    size: int | tuple[int, int],
    batch: int = 1,
    *,
    seed: int = 0,
    sd: float = 0.01,
    decorrelate: bool = True,
    sigmoid: bool = True,
    device: torch.device | str | None = None,
    alpha: bool = False,
) -> Param:
    """One free parameter per pixel and colour channel (in decorrelated colour space).

    With ``alpha=True`` a fourth channel, an opacity in [0, 1] (sigmoid, starting at 0.5), is
    optimised too: ``image_fn()`` is then (B, 4, H, W) RGBA.

    Example:
        >>> params, image_fn = pixel_image(32, batch=2, seed=0)
        >>> image_fn().shape, pixel_image(8, alpha=True)[1]().shape
        (torch.Size([2, 3, 32, 32]), torch.Size([1, 4, 8, 8]))
    """
    h, w = _size_hw(size)
    _check_batch(batch)
    pixels = _randn((batch, 3 + alpha, h, w), sd, seed, device).requires_grad_(True)  # (B, 3|4, H, W)

    def image_fn() -> torch.Tensor:
        return _with_alpha(to_rgb(pixels[:, :3], decorrelate, sigmoid), pixels, alpha)

    return [pixels], image_fn


def rfft2d_freqs(h: int, w: int) -> torch.Tensor:
    """Spatial frequency (cycles per pixel) of each entry of an ``rfft2`` spectrum, shape (h, w//2+1).

    Example:
        >>> rfft2d_freqs(4, 4)[0, :3]
        tensor([0.0000, 0.2500, 0.5000])
    """
    fy = torch.fft.fftfreq(h)[:, None]  # (h, 1)
    fx = torch.fft.rfftfreq(w)[None, :]  # (1, w//2+1)
    return torch.sqrt(fx * fx + fy * fy)


def fft_image(
    size: int | tuple[int, int],
    batch: int = 1,
    *,
    seed: int = 0,
    sd: float = 0.01,
    decay_power: float = 1.0,
    decorrelate: bool = True,
    sigmoid: bool = True,
    device: torch.device | str | None = None,
    alpha: bool = False,
) -> Param:
    """Images parameterised by their Fourier spectrum, scaled by 1/f so every frequency gets equal energy.

    The spectrum (B, 3, H, W//2+1) starts as normal noise of std ``sd``; each frequency is scaled by
    ``1 / max(f, 1/max(H, W)) ** decay_power``, inverted with an orthonormal ``irfft2`` and divided
    by 4 (lucid's constant, keeps the sigmoid out of saturation). ``alpha=True`` adds a fourth,
    opacity channel (same spectrum parameterisation, sigmoid, no colour matrix): (B, 4, H, W) RGBA.

    Example:
        >>> params, image_fn = fft_image((32, 48), batch=2, seed=0)
        >>> params[0].shape, image_fn().shape
        (torch.Size([2, 3, 32, 25, 2]), torch.Size([2, 3, 32, 48]))
    """
    h, w = _size_hw(size)
    _check_batch(batch)
    freqs = rfft2d_freqs(h, w)
    # (H, W//2+1); the 1/4 is applied here once (exact: a power of two) instead of to every image
    scale = (1.0 / torch.clamp(freqs, min=1.0 / max(h, w)) ** decay_power / 4.0).to(device)
    spectrum = _randn((batch, 3 + alpha, *freqs.shape, 2), sd, seed, device).requires_grad_(True)

    def image_fn() -> torch.Tensor:
        coeffs = torch.view_as_complex(spectrum) * scale  # (B, 3|4, H, W//2+1) complex
        pixels = torch.fft.irfft2(coeffs, s=(h, w), norm="ortho")  # (B, 3|4, H, W)
        return _with_alpha(to_rgb(pixels[:, :3], decorrelate, sigmoid), pixels, alpha)

    return [spectrum], image_fn


__all__ = ["COLOR_CORRELATION", "fft_image", "pixel_image", "random_background", "rfft2d_freqs", "to_rgb"]
