"""A hand-wired teaching network with known circuits: (B, 3, H, W) in [0, 1] -> (B, 7, H, W) unit maps.

``edges_and_curves()`` builds ``conv1 -> relu1 -> conv2 -> relu2`` with weights written by hand,
so every claim a circuits tool makes about it can be checked against the truth below (also
available as ``model.ground_truth``). Angles follow ``featviz.data.stimuli``: degrees
counter-clockwise from +x (right), y up; an edge "at θ" gets brighter along θ.

**conv1** (3 -> 8, 7x7, padding 3, no bias): unit ``c`` is an odd Gabor edge detector at angle
``45 c`` (0, 45, ..., 315): ``sin(2π u / 8) exp(-(u² + v²) / 8)`` with ``u`` the coordinate
along the angle, the same on R, G and B (each a third), scaled so Σ|w| = 2 (a full-contrast
edge at its angle gives about 1). A uniform image gives 0.

**conv2** (8 -> 7, 9x9, padding 4, bias -1 on every unit, so one edge alone barely fires it):
unit ``k`` at pixel (i, j) is ``-1 + sum(weight * relu1[channel, i + drow, j + dcol])`` over its
inputs below; every other weight is 0.

===  ========================  ============================================================
k    name                      inputs ``(conv1 channel, drow, dcol, weight)``
===  ========================  ============================================================
0    curve 0 (bulges right ⊃)  (0, 0, 0, 1), (1, -3, -1, 1), (7, 3, -1, 1), (4, 0, 0, -1)
1    curve 90 (∩)              (2, 0, 0, 1), (3, 1, -3, 1), (1, 1, 3, 1), (6, 0, 0, -1)
2    curve 180 (⊂)             (4, 0, 0, 1), (5, 3, 1, 1), (3, -3, 1, 1), (0, 0, 0, -1)
3    curve 270 (∪)             (6, 0, 0, 1), (7, -1, 3, 1), (5, -1, -3, 1), (2, 0, 0, -1)
4    corner └ (bright ↗)       (0, -3, 0, 1), (2, 0, 3, 1)
5    corner ┐ (bright ↙)       (4, 3, 0, 1), (6, 0, -3, 1)
6    straight edge 90          (2, 0, -3, 1), (2, 0, 0, 1), (2, 0, 3, 1)
===  ========================  ============================================================

A curve unit at angle φ reads the edge unit φ at its centre and the units φ ± 45 where an arc of
radius 4 px bulging toward φ carries them (the inner flank of a bright arc has its gradient
along the arc's outward normal), and is inhibited by the opposite edge φ + 180 at its centre.
"""
from __future__ import annotations

import math

import torch
from torch import nn

import featviz.nn as fnn
from featviz.data import Normalize

__all__ = ["EdgesAndCurves", "edges_and_curves", "EDGE_ANGLES", "CONV2_UNITS", "CONV2_BIAS"]

EDGE_ANGLES = tuple(45.0 * c for c in range(8))
"""Preferred angle (degrees) of each of conv1's 8 edge channels: channel c prefers 45 * c."""
ARC_RADIUS = 4.0
CONV2_BIAS = -1.0
"""The bias of every conv2 unit: a unit fires only when its planted inputs add up to more than 1."""


def _arc_inputs(angle: float) -> list[tuple[int, int, int, float]]:
    """Edge units along an arc of radius ARC_RADIUS bulging toward ``angle``, + inhibition."""
    c = int(angle // 45)
    inputs = [(c, 0, 0, 1.0)]
    for side in (1, -1):
        alpha = math.radians(angle + 45 * side)
        x = ARC_RADIUS * (math.cos(alpha) - math.cos(math.radians(angle)))
        y = ARC_RADIUS * (math.sin(alpha) - math.sin(math.radians(angle)))
        inputs.append(((c + side) % 8, -round(y), round(x), 1.0))  # (row, col) = (-y, x)
    inputs.append(((c + 4) % 8, 0, 0, -1.0))
    return inputs


CONV2_UNITS: tuple[dict, ...] = (
    *({"name": f"curve {a}", "kind": "curve", "angle": float(a), "inputs": _arc_inputs(a)}
      for a in (0, 90, 180, 270)),
    {"name": "corner └", "kind": "corner", "angle": 45.0, "inputs": [(0, -3, 0, 1.0), (2, 0, 3, 1.0)]},
    {"name": "corner ┐", "kind": "corner", "angle": 225.0, "inputs": [(4, 3, 0, 1.0), (6, 0, -3, 1.0)]},
    {"name": "straight edge 90", "kind": "line", "angle": 90.0,
     "inputs": [(2, 0, -3, 1.0), (2, 0, 0, 1.0), (2, 0, 3, 1.0)]},
)
"""The planted wiring of conv2, one dict per unit: ``name``, ``kind`` (curve, corner, line), ``angle`` and
``inputs`` [(conv1 channel, row offset, column offset, weight)] from the kernel centre."""


def _gabor(angle: float, size: int = 7, wavelength: float = 8.0, sigma: float = 2.0) -> torch.Tensor:
    """Odd Gabor kernel (size, size), positive where the image gets brighter along ``angle``."""
    c = (size - 1) / 2
    r = torch.arange(size, dtype=torch.float64)
    y, x = (c - r)[:, None], (r - c)[None, :]
    t = math.radians(angle)
    u, v = x * math.cos(t) + y * math.sin(t), -x * math.sin(t) + y * math.cos(t)
    g = torch.sin(2 * math.pi * u / wavelength) * torch.exp(-(u**2 + v**2) / (2 * sigma**2))
    return (2 * g / g.abs().sum()).float()


class EdgesAndCurves(nn.Module):
    """``conv1`` (8 edge detectors) -> ``relu1`` -> ``conv2`` (7 curve/corner/line units) -> ``relu2``.

    Example:
        >>> EdgesAndCurves()(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 7, 64, 64])
    """

    def __init__(self):
        super().__init__()
        self.conv1 = fnn.Conv2d(3, len(EDGE_ANGLES), 7, padding=3)
        self.relu1 = fnn.ReLU()
        self.conv2 = fnn.Conv2d(len(EDGE_ANGLES), len(CONV2_UNITS), 9, padding=4, bias=True)
        self.relu2 = fnn.ReLU()
        with torch.no_grad():
            for c, angle in enumerate(EDGE_ANGLES):
                self.conv1.weight[c] = _gabor(angle) / 3
            self.conv2.weight.zero_()
            self.conv2.bias.fill_(CONV2_BIAS)
            for k, unit in enumerate(CONV2_UNITS):
                for src, drow, dcol, w in unit["inputs"]:
                    self.conv2.weight[k, src, 4 + drow, 4 + dcol] = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 7, H, W)
        return self.relu2(self.conv2(self.relu1(self.conv1(x))))


def edges_and_curves() -> EdgesAndCurves:
    """The hand-wired toy network (module docstring has the wiring), in eval mode.

    ``model.ground_truth``: ``{"conv1": [{"name", "angle"}] * 8, "conv2": [{"name", "kind",
    "angle", "bias", "inputs": [(channel, drow, dcol, weight), ...]}] * 7}``. ``preprocess`` is the
    identity (inputs are images in [0, 1]), ``input_size`` 64, ``labels`` None,
    ``interesting_layers`` ``["relu1", "relu2"]``.

    Example:
        >>> model = edges_and_curves()
        >>> model.ground_truth["conv2"][1]["name"], model.ground_truth["conv1"][2]["angle"]
        ('curve 90', 90.0)
    """
    from featviz.models._meta import attach

    model = EdgesAndCurves()
    model.ground_truth = {
        "conv1": [{"name": f"edge {a:g}", "angle": a} for a in EDGE_ANGLES],
        "conv2": [{**unit, "bias": CONV2_BIAS, "inputs": list(unit["inputs"])} for unit in CONV2_UNITS],
    }
    return attach(model, Normalize(0.0, 1.0), 64, None, ["relu1", "relu2"])
