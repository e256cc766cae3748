"""Synthetic stimuli for tuning curves: (angles, curvatures, radii, ...) -> (N, 3, size, size) in [0, 1].

Angle convention (shared by every stimulus here and by ``featviz.models.toy``): degrees,
counter-clockwise from the +x axis as the image is displayed, with x pointing right (columns)
and y pointing *up* (decreasing row). 0 = right, 90 = up, 180 = left. Pixel (row, col) has
coordinates x = col - c_col, y = c_row - row, where ``center = (c_row, c_col)`` is the stimulus
centre in pixels (floats allowed; every function takes ``center=``, default the image centre
((size - 1) / 2, (size - 1) / 2)).

- ``gratings``: the wave travels along the angle (its FFT peak points there); stripes run
  perpendicular to it. 0 = vertical stripes. Phase 0 has a crest at the centre.
- ``edges``: a step edge through the centre; the angle is the direction from dark to bright
  (the image gradient). The edge line runs at angle + 90.
- ``curves``: an arc whose midpoint sits at the centre and which bulges toward the angle (its
  outward normal at the midpoint); its ends bend back to the opposite side. 90 = a cap (∩).
- ``lines``: a straight segment, ``curves`` at curvature 0: its normal points along the angle, so
  90 = a horizontal line (the flat cap); ``offsets`` move it along that normal.
- ``corners``: two straight arms meeting at the centre; the corner points toward the angle
  (90 = ∧, arms below the vertex).
- ``circles``: rings (or discs) centred at the centre; ``dots``: small discs at given pixels.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

from featviz.errors import BadType, BadValue

__all__ = ["circles", "corners", "curves", "dots", "edges", "gratings", "lines"]

Center = tuple[float, float] | None


def _values(values: float | Iterable[float], what: str) -> list[float]:
    try:
        out = [float(values)] if isinstance(values, (int, float)) else [float(v) for v in values]
    except (TypeError, ValueError):
        raise BadType(f"{what} must be a number or a list of numbers, got {values!r}") from None
    if not out:
        raise BadValue(f"{what} is empty; give at least one value")
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise BadValue(f"{what} must be finite numbers, got {bad[0]} (an infinite or NaN value draws a blank "
                       f"or undefined image)")
    return out


def _center(size: int, center: Center) -> tuple[float, float]:
    """``center`` as (row, col) floats; ``None`` -> the image centre ((size - 1) / 2, (size - 1) / 2)."""
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not math.isfinite(size) \
            or int(size) != size or size < 2:
        raise BadValue(f"size must be an integer number of pixels >= 2, got {size}")
    if center is None:
        return (size - 1) / 2, (size - 1) / 2
    try:
        row, col = (float(v) for v in center)
    except (TypeError, ValueError):
        raise BadValue(f"center must be a (row, col) pair of pixel coordinates, got {center!r}") from None
    if not (math.isfinite(row) and math.isfinite(col)):
        raise BadValue(f"center must be finite (row, col) pixel coordinates, got {center!r}")
    return row, col


def _grid(size: int, device: torch.device | str | None, center: Center = None) -> tuple[Tensor, Tensor]:
    """x (right) and y (up) coordinates of every pixel, origin at ``center``; each (size, size)."""
    c_row, c_col = _center(size, center)
    r = torch.arange(size, dtype=torch.float32, device=device)
    y = (c_row - r)[:, None].expand(size, size)
    x = (r - c_col)[None, :].expand(size, size)
    return x, y


def _rgb(grey: Tensor) -> Tensor:  # (N, H, W) -> (N, 3, H, W)
    return grey.clamp(0, 1)[:, None].expand(-1, 3, -1, -1).contiguous()


def _stroke(distance: Tensor, width: float) -> Tensor:
    """Antialiased stroke of ``width`` px from the distance (px) to its centre line: 1 inside, 1-px ramp."""
    return (width / 2 + 0.5 - distance).clamp(0, 1)


def _unit(angle: float) -> tuple[float, float]:
    return math.cos(math.radians(angle)), math.sin(math.radians(angle))


def _segment(x: Tensor, y: Tensor, ux: float, uy: float, offset: float, half: float, width: float) -> Tensor:
    """Straight stroke with normal (ux, uy), centre line ``offset`` px along it, ``half`` px each way."""
    distance = (x * ux + y * uy - offset).abs()
    inside = (y * ux - x * uy).abs() <= half  # along the tangent
    return _stroke(distance, width) * inside


def gratings(angles: float | Iterable[float], size: int = 64, freq: float = 0.125,
             phases: float | Iterable[float] = 0.0, contrast: float = 1.0, center: Center = None,
             device: torch.device | str | None = None) -> Tensor:
    """Sinusoidal gratings ``0.5 + 0.5 * contrast * cos(2π freq (x cos θ + y sin θ) + φ)``.

    ``angles`` θ (degrees, module convention: the wave direction), ``freq`` in cycles per pixel
    (0.125: an 8-pixel period), ``phases`` φ in degrees, measured at ``center`` (row, col; default
    the image centre), so phase 0 puts a bright crest there. Returns (len(angles) * len(phases), 3,
    size, size), angle-major: image ``i`` has angle ``i // len(phases)`` and phase
    ``i % len(phases)``, so ``.view(n_angles, n_phases, 3, size, size)`` separates them.

    Example:
        >>> gratings(range(0, 180, 45), size=32, phases=[0, 90]).shape
        torch.Size([8, 3, 32, 32])
        >>> float(gratings([0], size=32, center=(5, 7))[0, 0, 5, 7])   # phase 0: a crest at the centre
        1.0
    """
    if not 0 < freq <= 0.5:
        raise BadValue(f"freq is in cycles per pixel and must be in (0, 0.5], got {freq}")
    x, y = _grid(size, device, center)
    theta = torch.tensor(_values(angles, "angles"), device=device).deg2rad()[:, None, None, None]
    phi = torch.tensor(_values(phases, "phases"), device=device).deg2rad()[None, :, None, None]
    wave = torch.cos(2 * math.pi * freq * (x * theta.cos() + y * theta.sin()) + phi)  # (A, P, H, W)
    return _rgb(0.5 + 0.5 * contrast * wave.flatten(0, 1))


def edges(angles: float | Iterable[float], size: int = 64, center: Center = None,
          device: torch.device | str | None = None) -> Tensor:
    """Step edges through ``center``: black (0) on one side, white (1) on the side the angle points to.

    Angles follow the module convention (the direction from dark to bright); ``center`` is (row, col),
    default the image centre. The one-pixel transition is antialiased (grey = signed distance to
    the edge line + 0.5). Returns (len(angles), 3, size, size).

    Example:
        >>> img = edges([0], size=8)[0, 0]      # angle 0: bright on the right
        >>> float(img[0, 0]), float(img[0, -1])
        (0.0, 1.0)
        >>> edges([0], size=8, center=(0, 2))[0, 0, 0, 1:4].tolist()   # the edge passes col 2
        [0.0, 0.5, 1.0]
    """
    x, y = _grid(size, device, center)
    theta = torch.tensor(_values(angles, "angles"), device=device).deg2rad()[:, None, None]
    distance = x * theta.cos() + y * theta.sin()  # signed, positive on the bright side
    return _rgb(distance + 0.5)


def curves(angles: float | Iterable[float], curvatures: float | Iterable[float] = 4.0, size: int = 64,
           length: float = 0.75, width: float = 2.0, center: Center = None,
           device: torch.device | str | None = None) -> Tensor:
    """White arcs of a circle (width ``width`` px, antialiased) on black, midpoint at ``center``.

    ``angles``: the direction the arc bulges toward (module convention). ``curvatures``: 1 / radius
    in units of 1 / size (radius = size / curvature; 0 = a straight line, as ``lines`` draws it,
    4 = a radius of a quarter image); for a radius of ``r`` px pass ``curvature = size / r``.
    ``length``: arc length as a fraction of ``size`` (capped at a full circle). ``center``: (row, col)
    of the arc's midpoint, default the image centre. Returns (len(angles) * len(curvatures), 3,
    size, size), angle-major.

    Example:
        >>> curves([90], curvatures=[0, 2, 4], size=32).shape    # three caps, flat to tight
        torch.Size([3, 3, 32, 32])
        >>> float(curves([90], curvatures=32 / 8, size=32, center=(20, 9))[0, 0, 20, 9])  # radius 8 px
        1.0
    """
    ks = _values(curvatures, "curvatures")
    if min(ks) < 0:
        raise BadValue(f"curvatures must be >= 0 (turn the angle by 180 to bend the other way), got {ks}")
    x, y = _grid(size, device, center)
    half = length * size / 2  # half the arc length, px
    out = []
    for a in _values(angles, "angles"):
        ux, uy = _unit(a)  # outward normal at the midpoint
        for k in ks:
            if k == 0:
                out.append(_segment(x, y, ux, uy, 0.0, half, width))
                continue
            radius = size / k
            qx, qy = x + radius * ux, y + radius * uy  # from the circle's centre (at -radius * u)
            norm = torch.sqrt(qx**2 + qy**2)
            cos = (qx * ux + qy * uy) / norm.clamp_min(1e-6)
            inside = torch.acos(cos.clamp(-1, 1)) <= min(half / radius, math.pi)
            out.append(_stroke((norm - radius).abs(), width) * inside)
    return _rgb(torch.stack(out))


def lines(angles: float | Iterable[float], offsets: float | Iterable[float] = 0.0, size: int = 64,
          length: float = 0.75, width: float = 2.0, center: Center = None,
          device: torch.device | str | None = None) -> Tensor:
    """Straight white segments (width ``width`` px, antialiased) on black: ``curves`` at curvature 0.

    ``angles``: the direction of the line's normal (module convention), so 90 is a horizontal line
    and 0 a vertical one. ``offsets``: px along that normal from ``center`` (row, col; default the
    image centre) to the segment's midpoint, positive toward the angle. ``length``: as a fraction of
    ``size``. Returns (len(angles) * len(offsets), 3, size, size), angle-major.

    Example:
        >>> img = lines([90], offsets=[0, 5], size=16, length=0.5, width=1, center=(8, 8))[:, 0]
        >>> img[0, 8, 4:13].tolist() == [1.0] * 9, float(img[1, 3, 8])   # 5 px up: row 3
        (True, 1.0)
    """
    x, y = _grid(size, device, center)
    half = length * size / 2
    out = [_segment(x, y, *_unit(a), o, half, width)
           for a in _values(angles, "angles") for o in _values(offsets, "offsets")]
    return _rgb(torch.stack(out))


def corners(angles: float | Iterable[float], size: int = 64, length: float = 0.375, width: float = 2.0,
            opening: float = 90.0, center: Center = None, device: torch.device | str | None = None) -> Tensor:
    """Two straight white arms (``length * size`` px each, width ``width`` px) meeting at ``center``.

    The corner points toward the angle (module convention): the bisector from the arms' ends to
    the vertex points along it, i.e. the arms leave the vertex at ``angle + 180 ± opening / 2``
    degrees. 90 = ∧ with the vertex at ``center`` (row, col; default the image centre). Arms have
    round ends (distance to the segment), so the vertex has no notch. Returns (len(angles), 3, size,
    size).

    Example:
        >>> img = corners([90], size=16, length=0.25, width=1, center=(6, 8))[0, 0]   # ∧, vertex (6, 8)
        >>> [round(float(img[r, c]), 3) for r, c in [(6, 8), (8, 6), (8, 10), (3, 8)]]  # arms go down
        [1.0, 1.0, 1.0, 0.0]
    """
    if not 0 < opening < 360:
        raise BadValue(f"opening is the angle between the arms in degrees, in (0, 360); got {opening}")
    x, y = _grid(size, device, center)
    arm = length * size
    out = []
    for a in _values(angles, "angles"):
        strokes = []
        for side in (-1, 1):
            dx, dy = _unit(a + 180 + side * opening / 2)
            t = (x * dx + y * dy).clamp(0, arm)  # projection onto the arm, within its length
            strokes.append(_stroke(torch.sqrt((x - t * dx) ** 2 + (y - t * dy) ** 2), width))
        out.append(torch.maximum(*strokes))
    return _rgb(torch.stack(out))


def circles(radii: float | Iterable[float], size: int = 64, width: float = 2.0, filled: bool = False,
            center: Center = None, device: torch.device | str | None = None) -> Tensor:
    """White rings (width ``width`` px) or, with ``filled=True``, discs, antialiased, on black.

    Centred at ``center`` (row, col; default the image centre; see the module docstring); ``radii`` in
    px (a ring's centre line, a disc's edge). Returns (len(radii), 3, size, size).

    Example:
        >>> ring = circles([4], size=16, width=1, center=(8, 8))[0, 0]
        >>> float(ring[8, 12]), float(ring[8, 8]), float(ring[4, 8])
        (1.0, 0.0, 1.0)
        >>> round(float(circles([4], size=16, filled=True)[0, 0].sum()), 1)    # ≈ π 4² = 50.3
        50.7
    """
    rs = _values(radii, "radii")
    if min(rs) < 0:
        raise BadValue(f"radii must be >= 0 px, got {rs}")
    x, y = _grid(size, device, center)
    dist = torch.sqrt(x**2 + y**2)
    out = [(r + 0.5 - dist).clamp(0, 1) if filled else _stroke((dist - r).abs(), width) for r in rs]
    return _rgb(torch.stack(out))


def dots(positions: Iterable[tuple[float, float]] | None = None, size: int = 64, radius: float = 2.0,
         center: Center = None, device: torch.device | str | None = None) -> Tensor:
    """One white disc (antialiased edge) on black per image, centred at a ``(row, col)`` pixel position.

    Positions are array indices (row down, col right, floats allowed), e.g. to map a receptive field
    pixel by pixel. ``positions=None`` draws one dot at ``center`` (default the image centre, as in
    the module docstring); give one or the other. Returns (len(positions), 3, size, size).

    Example:
        >>> img = dots([(3, 5)], size=16, radius=1)[0, 0]
        >>> float(img[3, 5]), float(img[3, 9])
        (1.0, 0.0)
        >>> float(dots(size=16, radius=1, center=(2, 3))[0, 0, 2, 3])
        1.0
    """
    if positions is not None and center is not None:
        raise BadValue("give positions (one dot per (row, col)) or center (one dot), not both")
    pts = [_center(size, center)] if positions is None else [(float(r), float(c)) for r, c in positions]
    if not pts:
        raise BadValue("positions is empty; give at least one (row, col) pair")
    _center(size, None)  # checks size
    grid = torch.arange(size, dtype=torch.float32, device=device)
    rows, cols = grid[:, None], grid[None, :]
    out = [(radius + 0.5 - torch.sqrt((rows - r) ** 2 + (cols - c) ** 2)).clamp(0, 1) for r, c in pts]
    return _rgb(torch.stack(out))
