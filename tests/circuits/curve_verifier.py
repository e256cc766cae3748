"""An independent curve verifier: its own stimuli, its own receptive-field estimate, plain torch hooks.

It shares no code with ``featviz.circuits.curves`` (nor its stimuli in ``featviz.data``): strokes are
drawn here from distances to a circle or a segment, the unit's field centre is the centroid of the input
gradient, and responses are read with ``register_forward_hook`` *before* the layer's clamp (the input of a
ReLU6), so a saturated unit is not flattered or penalised by the ceiling. A unit is confirmed when, at the
field centre and moved ``shift`` px up, down, left and right, the best arc (``n_dir`` bulge directions x
three radii) beats the best straight line (all orientations, three offsets), ring and disc by ``margin``
(evoked: minus the response to black), and the preferred bulge direction stays within 45 degrees of the
centre's.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def _grid(size: int, centre: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    r = torch.arange(size, dtype=torch.float64)
    y = (centre[0] - r)[:, None].expand(size, size)  # up is positive
    x = (r - centre[1])[None, :].expand(size, size)
    return x, y


def _stroke(d: torch.Tensor, width: float) -> torch.Tensor:
    return (width / 2 + 0.5 - d.abs()).clamp(0, 1)


def arc(size, centre, direction, radius, width, half_angle=60.0):
    """An arc of a circle of ``radius``, its midpoint at ``centre``, bulging toward ``direction``."""
    x, y = _grid(size, centre)
    t = math.radians(direction)
    cx, cy = -radius * math.cos(t), -radius * math.sin(t)  # the circle's centre, behind the bulge
    dx, dy = x - cx, y - cy
    ang = torch.atan2(dy, dx) - t
    ang = torch.atan2(torch.sin(ang), torch.cos(ang)).abs()
    inside = (ang <= math.radians(half_angle)).double()
    return _stroke(torch.sqrt(dx ** 2 + dy ** 2) - radius, width) * inside


def line(size, centre, orientation, offset, length, width):
    x, y = _grid(size, centre)
    t = math.radians(orientation)
    nx, ny = math.cos(t), math.sin(t)  # the normal
    along = -x * ny + y * nx
    across = x * nx + y * ny - offset
    return _stroke(across, width) * (along.abs() <= length / 2).double()


def ring(size, centre, radius, width):
    x, y = _grid(size, centre)
    return _stroke(torch.sqrt(x ** 2 + y ** 2) - radius, width)


def disc(size, centre, radius):
    x, y = _grid(size, centre)
    return (radius + 0.5 - torch.sqrt(x ** 2 + y ** 2)).clamp(0, 1)


def field_centre(model: nn.Module, module: nn.Module, channel: int, size: int, preprocess
                 ) -> tuple[float, float]:
    """The centre of the pixels the map-centre unit of ``channel`` depends on at all: the bounding box of the
    non-zero input gradient over a grey image and a few noise images (for a CNN: its receptive field)."""
    g = torch.Generator().manual_seed(0)
    images = torch.cat([torch.full((1, 3, size, size), 0.5), torch.rand(6, 3, size, size, generator=g)])
    x = images.clone().requires_grad_(True)
    out = {}
    h = module.register_forward_hook(lambda m, i, o: out.__setitem__("a", i[0]))
    try:
        model(preprocess(x))
    finally:
        h.remove()
    a = out["a"]
    a[:, channel, a.shape[-2] // 2, a.shape[-1] // 2].sum().backward()
    support = x.grad.abs().sum((0, 1)) > 0  # (size, size)
    rows, cols = support.any(1).nonzero().flatten(), support.any(0).nonzero().flatten()
    return (float(rows.min() + rows.max()) / 2, float(cols.min() + cols.max()) / 2)


def verify(model: nn.Module, module_name: str, channel: int, size: int, *, shift: float, radii, width: float,
           margin: float = 1.1, n_dir: int = 16, preprocess=None) -> dict:
    """Confirm (or not) that ``module_name:channel`` is a curve detector with this module's own stimuli."""
    module = dict(model.named_modules())[module_name]
    prep = preprocess or getattr(model, "preprocess", None) or (lambda t: t)
    centre = field_centre(model, module, channel, size, prep)
    store = {}
    h = module.register_forward_hook(lambda m, i, o: store.__setitem__("a", i[0].detach()))

    def respond(images: list[torch.Tensor]) -> torch.Tensor:
        batch = torch.stack(images).float()[:, None].expand(-1, 3, -1, -1)
        out = []
        with torch.no_grad():
            for k in range(0, len(batch), 64):
                model(prep(batch[k:k + 64]))
                a = store["a"]
                out.append(a[:, channel, a.shape[-2] // 2, a.shape[-1] // 2])
        return torch.cat(out).double()

    try:
        blank = float(respond([torch.zeros(size, size)])[0])
        dirs = [360.0 * k / n_dir for k in range(n_dir)]
        rows = []
        for dr, dc in [(0, 0), (-shift, 0), (shift, 0), (0, -shift), (0, shift)]:
            c = (centre[0] + dr, centre[1] + dc)
            arcs = respond([arc(size, c, d, r, width) for d in dirs for r in radii]).reshape(n_dir, -1)
            arcs = arcs - blank
            length = max(radii) * 2 * math.pi / 3
            lines = respond([line(size, c, o, f, length, width) for o in range(0, 180, 15)
                             for f in (-shift, 0.0, shift)]) - blank
            rings = respond([ring(size, c, r, width) for r in radii]) - blank
            discs = respond([disc(size, c, r) for r in radii]) - blank
            per_dir = arcs.amax(1)
            rows.append({"arc": float(per_dir.max()), "line": float(lines.max()), "ring": float(rings.max()),
                         "disc": float(discs.max()), "direction": dirs[int(per_dir.argmax())]})
    finally:
        h.remove()
    floor = 1e-3 * max(abs(r["arc"]) for r in rows) + 1e-12
    ratios = [r["arc"] / max(r["line"], r["ring"], r["disc"], floor) for r in rows]
    drift = max(min(abs(r["direction"] - rows[0]["direction"]) % 360,
                    360 - abs(r["direction"] - rows[0]["direction"]) % 360) for r in rows)
    ok = all(r["arc"] > 0 for r in rows) and min(ratios) >= margin and drift <= 45
    return {"confirmed": bool(ok), "worst_ratio": min(ratios), "drift": drift, "centre": centre,
            "direction": rows[0]["direction"], "positions": rows}
