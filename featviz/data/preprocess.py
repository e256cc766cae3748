"""Preprocessing callables: (B, 3, H, W) float images in [0, 1] -> the tensor a model's forward takes."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["Normalize"]


def _per_channel(value: float | Sequence[float], what: str) -> tuple[float, ...]:
    values = (float(value),) if isinstance(value, (int, float)) else tuple(float(v) for v in value)
    if len(values) not in (1, 3):
        raise ValueError(f"{what} must be one number or one per RGB channel (3 numbers), got {len(values)}")
    return values


class Normalize:
    """``(x - mean) / std`` per channel; a plain callable (not an ``nn.Module``), so attaching it to a
    model as ``model.preprocess`` adds no submodule, hook name or state-dict key.

    ``mean`` and ``std`` are one number or three (RGB). The constants are made on the input's
    device and dtype at each call.

    Example:
        >>> norm = Normalize(mean=0.5, std=0.5)
        >>> norm(torch.ones(1, 3, 2, 2)).unique()
        tensor([1.])
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]):
        self.mean = _per_channel(mean, "mean")
        self.std = _per_channel(std, "std")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")

    def __call__(self, x: Tensor) -> Tensor:  # (B, 3, H, W) -> (B, 3, H, W)
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(-1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(-1, 1, 1)
        return (x - mean) / std

    def inverse(self, x: Tensor) -> Tensor:
        """Undo the normalisation: ``x * std + mean`` (e.g. to show a normalised tensor as an image).

        Example:
            >>> norm = Normalize(0.5, 0.5)
            >>> x = torch.rand(1, 3, 4, 4)
            >>> bool(torch.allclose(norm.inverse(norm(x)), x))
            True
        """
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(-1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(-1, 1, 1)
        return x * std + mean

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"
