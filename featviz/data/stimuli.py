"""Synthetic stimuli for tuning curves: (angles, curvatures, positions) -> (N, 3, size, size) in [0, 1].

Angle convention (shared by every stimulus here and by ``featviz.models.toy``): degrees,
counter-clockwise from the +x axis as the image is displayed, with x pointing right (columns)
and y pointing *up* (decreasing row). 0 = right, 90 = up, 180 = left. Pixel (row, col) has
coordinates x = col - c, y = c - row with c = (size - 1) / 2, the image centre.

- ``gratings``: the wave travels along the angle (its FFT peak points there); stripes run
  perpendicular to it. 0 = vertical stripes.
- ``edges``: a step edge through the centre; the angle is the direction from dark to bright
  (the image gradient). The edge line runs at angle + 90.
- ``curves``: an arc whose midpoint sits at the centre and which bulges toward the angle (its
  outward normal at the midpoint); its ends bend back to the opposite side. 90 = a cap (∩).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = ["gratings", "edges", "curves", "dots"]


def _values(values: float | Iterable[float], what: str) -> list[float]:
    out = [float(values)] if isinstance(values, (int, float)) else [float(v) for v in values]
    if not out:
        raise ValueError(f"{what} is empty; give at least one value")
    return out


def _grid(size: int, device: torch.device | str | None) -> tuple[Tensor, Tensor]:
    """x (right) and y (up) coordinates of every pixel, origin at the image centre; each (size, size)."""
    if int(size) != size or size < 2:
        raise ValueError(f"size must be an integer number of pixels >= 2, got {size}")
    c = (size - 1) / 2
    r = torch.arange(size, dtype=torch.float32, device=device)
    y = (c - r)[:, None].expand(size, size)
    x = (r - c)[None, :].expand(size, size)
    return x, y


def _rgb(grey: Tensor) -> Tensor:  # (N, H, W) -> (N, 3, H, W)
    return grey.clamp(0, 1)[:, None].expand(-1, 3, -1, -1).contiguous()


def gratings(angles: float | Iterable[float], size: int = 64, freq: float = 0.125,
             phases: float | Iterable[float] = 0.0, contrast: float = 1.0,
             device: torch.device | str | None = None) -> Tensor:
    """Sinusoidal gratings ``0.5 + 0.5 * contrast * cos(2π freq (x cos θ + y sin θ) + φ)``.

    ``angles`` θ (degrees, module convention: the wave direction), ``freq`` in cycles per pixel
    (0.125: an 8-pixel period), ``phases`` φ in degrees. Returns (len(angles) * len(phases), 3,
    size, size), angle-major: image ``i`` has angle ``i // len(phases)`` and phase
    ``i % len(phases)``, so ``.view(n_angles, n_phases, 3, size, size)`` separates them.

    Example:
        >>> gratings(range(0, 180, 45), size=32, phases=[0, 90]).shape
        torch.Size([8, 3, 32, 32])
    """
    if not 0 < freq <= 0.5:
        raise ValueError(f"freq is in cycles per pixel and must be in (0, 0.5], got {freq}")
    x, y = _grid(size, device)
    theta = torch.tensor(_values(angles, "angles"), device=device).deg2rad()[:, None, None, None]
    phi = torch.tensor(_values(phases, "phases"), device=device).deg2rad()[None, :, None, None]
    wave = torch.cos(2 * math.pi * freq * (x * theta.cos() + y * theta.sin()) + phi)  # (A, P, H, W)
    return _rgb(0.5 + 0.5 * contrast * wave.flatten(0, 1))


def edges(angles: float | Iterable[float], size: int = 64,
          device: torch.device | str | None = None) -> Tensor:
    """Step edges through the centre: black (0) on one side, white (1) on the side the angle points to.

    The one-pixel transition is antialiased (grey = signed distance to the edge line + 0.5).
    Returns (len(angles), 3, size, size).

    Example:
        >>> img = edges([0], size=8)[0, 0]      # angle 0: bright on the right
        >>> float(img[0, 0]), float(img[0, -1])
        (0.0, 1.0)
    """
    x, y = _grid(size, device)
    theta = torch.tensor(_values(angles, "angles"), device=device).deg2rad()[:, None, None]
    distance = x * theta.cos() + y * theta.sin()  # signed, positive on the bright side
    return _rgb(distance + 0.5)


def curves(angles: float | Iterable[float], curvatures: float | Iterable[float] = 4.0, size: int = 64,
           length: float = 0.75, width: float = 2.0, device: torch.device | str | None = None) -> Tensor:
    """White arcs of a circle (width ``width`` px, antialiased) on black, midpoint at the centre.

    ``angles``: the direction the arc bulges toward (module convention). ``curvatures``: 1 / radius
    in units of 1 / size (radius = size / curvature; 0 = a straight line, 4 = a radius of a
    quarter image). ``length``: arc length as a fraction of ``size`` (capped at a full circle).
    Returns (len(angles) * len(curvatures), 3, size, size), angle-major.

    Example:
        >>> curves([90], curvatures=[0, 2, 4], size=32).shape    # three caps, flat to tight
        torch.Size([3, 3, 32, 32])
    """
    ks = _values(curvatures, "curvatures")
    if min(ks) < 0:
        raise ValueError(f"curvatures must be >= 0 (turn the angle by 180 to bend the other way), got {ks}")
    x, y = _grid(size, device)
    half = length * size / 2  # half the arc length, px
    out = []
    for a in _values(angles, "angles"):
        ux, uy = math.cos(math.radians(a)), math.sin(math.radians(a))  # outward normal at the midpoint
        for k in ks:
            if k == 0:
                distance = (x * ux + y * uy).abs()
                inside = (y * ux - x * uy).abs() <= half  # along the tangent
            else:
                radius = size / k
                qx, qy = x + radius * ux, y + radius * uy  # from the circle's centre (at -radius * u)
                norm = torch.sqrt(qx**2 + qy**2)
                distance = (norm - radius).abs()
                cos = (qx * ux + qy * uy) / norm.clamp_min(1e-6)
                inside = torch.acos(cos.clamp(-1, 1)) <= min(half / radius, math.pi)
            out.append((width / 2 + 0.5 - distance).clamp(0, 1) * inside)
    return _rgb(torch.stack(out))


def dots(positions: Iterable[tuple[float, float]], size: int = 64, radius: float = 2.0,
         device: torch.device | str | None = None) -> Tensor:
    """One white disc (antialiased edge) on black per image, centred at a ``(row, col)`` pixel position.

    Positions are array indices (row down, col right), e.g. to map a receptive field pixel by pixel.
    Returns (len(positions), 3, size, size).

    Example:
        >>> img = dots([(3, 5)], size=16, radius=1)[0, 0]
        >>> float(img[3, 5]), float(img[3, 9])
        (1.0, 0.0)
    """
    pts = [(float(r), float(c)) for r, c in positions]
    if not pts:
        raise ValueError("positions is empty; give at least one (row, col) pair")
    grid = torch.arange(size, dtype=torch.float32, device=device)
    rows, cols = grid[:, None], grid[None, :]
    out = [(radius + 0.5 - torch.sqrt((rows - r) ** 2 + (cols - c) ** 2)).clamp(0, 1) for r, c in pts]
    return _rgb(torch.stack(out))
