"""MaCo parameterisation: (size, batch, seed) -> (params, image_fn); only the Fourier *phase* is optimised.

Fel et al., "Unlocking Feature Visualization for Deeper Networks with MAgnitude Constrained
Optimization" (NeurIPS 2023): the magnitude of the image's spectrum is fixed to that of natural images
and only the phase is free, so renders keep natural-image statistics (no high-frequency noise) without
other regularisers. The pixels are the inverse real FFT of ``magnitude * exp(i phase)``, standardised
per image, mapped through lucid's colour matrix and a sigmoid. ``image_fn`` also accumulates
``|d loss / d image|`` over the steps: ``image_fn.alpha()`` is MaCo's transparency (attribution) map,
which ``fv.render`` returns as ``Rendering.alpha``.

Example:
    >>> params, image_fn = maco_image(32, batch=2, seed=0)
    >>> image_fn().shape, params[0].shape
    (torch.Size([2, 3, 32, 32]), torch.Size([2, 3, 32, 17]))
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from featviz.errors import BadValue
from featviz.optvis.param import COLOR_CORRELATION, Param, _check_batch, _size_hw, to_rgb

__all__ = ["maco_image", "natural_spectrum"]


@lru_cache(maxsize=8)
def _photo_spectrum(h: int, w: int) -> torch.Tensor:
    from featviz.data import sample_images

    photos = sample_images(max(h, w)).images[..., :h, :w]  # (N, 3, h, w) in [0, 1]
    decorrelated = torch.einsum("ij,njhw->nihw", torch.linalg.inv(COLOR_CORRELATION), photos - 0.5)
    return torch.fft.rfft2(decorrelated, norm="ortho").abs().mean(0)  # (3, h, w//2+1)


def natural_spectrum(h: int, w: int) -> torch.Tensor:
    """(3, h, w//2+1) mean Fourier magnitude of the bundled photos, in lucid's decorrelated colour space.

    Ten photos from scikit-image (no download), resized to the render size; the result is cached.

    Example:
        >>> s = natural_spectrum(32, 32)
        >>> s.shape, bool(s[:, 1, 1].mean() > s[:, 8, 8].mean())   # low frequencies carry more energy
        (torch.Size([3, 32, 17]), True)
    """
    return _photo_spectrum(int(h), int(w)).clone()


class _MacoImage:
    """``image_fn`` of :func:`maco_image`: phase -> images, and the running |gradient| per pixel."""

    def __init__(self, phase: torch.Tensor, magnitude: torch.Tensor, hw: tuple[int, int]) -> None:
        self.phase, self.magnitude, self.hw = phase, magnitude, hw
        self.grad_sum = torch.zeros(phase.shape[0], 1, *hw, device=phase.device)  # (B, 1, H, W)

    def _accumulate(self, grad: torch.Tensor) -> None:
        self.grad_sum += grad.detach().abs().mean(1, keepdim=True)

    def __call__(self) -> torch.Tensor:
        spectrum = torch.polar(self.magnitude, self.phase)  # (B, 3, H, W//2+1) complex
        x = torch.fft.irfft2(spectrum, s=self.hw, norm="ortho")  # (B, 3, H, W)
        mean = x.mean((1, 2, 3), keepdim=True)
        std = x.std((1, 2, 3), keepdim=True)
        image = to_rgb((x - mean) / (std + 1e-4))
        if image.requires_grad:
            image.register_hook(self._accumulate)
        return image

    def alpha(self) -> torch.Tensor:
        """(B, 1, H, W) in [0, 1]: accumulated |gradient|, divided by each image's 99th percentile."""
        g = self.grad_sum.detach()
        top = torch.quantile(g.flatten(1), 0.99, dim=1).clamp(min=1e-12)
        return (g / top[:, None, None, None]).clamp(0, 1)


def maco_image(
    size: int | tuple[int, int],
    batch: int = 1,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    magnitude: torch.Tensor | None = None,
) -> Param:
    """MaCo images: a fixed natural magnitude spectrum, a free phase (uniform in [-pi, pi) at the start).

    Args:
        magnitude: (3, H, W//2+1) magnitude in lucid's decorrelated colour space; default
            :func:`natural_spectrum` of the bundled photos.

    The phase is an angle, so it wants larger steps than ``fft_image``'s coefficients: use
    ``fv.render(..., param=maco_image, lr=0.25)`` or so.

    Example:
        >>> r = fv.render(fv.models.toy.edges_and_curves(), "relu2:0", size=32, steps=4, lr=0.25,
        ...               param=maco_image, progress=False)
        >>> r.alpha.shape      # MaCo's attribution map: where the gradient was
        torch.Size([1, 1, 32, 32])
    """
    h, w = _size_hw(size)
    _check_batch(batch)
    mag = natural_spectrum(h, w) if magnitude is None else torch.as_tensor(magnitude, dtype=torch.float32)
    if tuple(mag.shape) != (3, h, w // 2 + 1):
        raise BadValue(f"magnitude must be (3, {h}, {w // 2 + 1}) for a {h}x{w} image, "
                         f"got {tuple(mag.shape)}")
    gen = torch.Generator().manual_seed(int(seed))
    phase = ((torch.rand((batch, 3, h, w // 2 + 1), generator=gen) * 2 - 1) * math.pi).to(device)
    phase.requires_grad_(True)
    image_fn = _MacoImage(phase, mag.to(device), (h, w))
    return [phase], image_fn
