"""Curve detectors that survive controls: (model, layer) -> channels tuned to one arc direction, nothing else.

A channel is called a curve detector only when synthetic stimuli placed at its receptive-field centre,
*and moved a few pixels*, all say so (the tests Cammarata et al. use in Distill's "Curve Detectors"):

1. **Arcs beat lines.** At every stimulus position, its best arc (``n_directions`` bulge directions x
   several radii) drives it at least ``min_curve_vs_line`` times as hard as its best straight line
   (all orientations, several offsets from the centre).
2. **Arcs beat rings and discs.** At every position the best arc beats the best ring (outline) and the
   best filled disc centred there by ``min_curve_vs_blob`` — so small-loop and blob units do not
   qualify.
3. **Tuned to one direction.** At the centre, the response over bulge directions (at the preferred
   radius) has a single peak and a direction selectivity ``|Σ r e^{iθ}| / Σ r >= min_selectivity``.
4. **The direction stays put.** The preferred direction moves by at most ``max_drift`` degrees when the
   stimuli move by ``shift`` px up, down, left or right.
5. **It responds at all**: its best arc response is at least ``min_response`` of the strongest in the layer.

The thresholds are a ``CurveCriteria``; its defaults (arcs 1.15x lines and 1.08x rings/discs, selectivity
0.15, drift 45 deg, response 0.1) are calibrated in docs/finder_calibration.md: they miss none of 36
hand-wired curve units (down to arcs 1.09x rings), name none of 19 decoys, and 1 of 8398 channels of
randomized networks.

Responses are *evoked*: the unit's response to a stimulus minus its response to the blank (black)
background. "No response" means at most ``1e-6`` of the layer's largest response to the battery
(``CurveScan.tiny``), so a quiet network (a randomized control) is judged on its own scale. Where the layer
clamps (ReLU6, Hardtanh), the scan also keeps the pre-activations: a channel whose best stimulus reaches the
ceiling is ``saturated`` (its ratios are capped there) and its ratios before the clamp are reported beside
(``stats``: ``pre_curve_vs_line``, ``pre_curve_vs_blob``). Angles follow ``featviz.data.stimuli`` (degrees
counter-clockwise from +x, image y up; an arc's angle is the direction it bulges toward).

Example:
    >>> scan = curve_scan(fv.models.toy.edges_and_curves(), "relu2", size=32, radii=[4, 6], shift=2)
    >>> scan.detectors()    # the toy's curve units answer only arcs 2 px outside their centre: none survives
    []
    >>> round(scan.stats(1)["arc"], 2)      # its "curve 90" unit: no arc at the centre evokes a response
    0.0
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from featviz.circuits._criteria import Criteria, scan_sentence
from featviz.circuits.receptive_field import ReceptiveField, receptive_field
from featviz.circuits.tuning import (
    TuningCurve,
    clamp_ceiling,
    direction_selectivity,
    layer_responses,
    responses_and_inputs,
    shift_list,
)
from featviz.core import as_images, input_size_of
from featviz.errors import BadValue
from featviz.hooks import hooked

__all__ = ["CurveCriteria", "CurveDetector", "CurveScan", "curve_scan", "find_curve_detectors"]

_TINY = 1e-6  # "no response": at most this fraction of the layer's largest response to the battery
_HARD_FLOOR = 1e-30  # denominators of a silent layer
_FLOOR = 0.01  # denominators of the ratios are at least 1 % of the layer's strongest arc response


@dataclass(frozen=True)
class CurveCriteria(Criteria):
    """The thresholds of ``find_curve_detectors`` / ``CurveScan.detectors`` (module docstring, tests 1-5).

    The defaults are calibrated (docs/finder_calibration.md, ``docs/generate/finder_calibration.py``): the
    strictest values that miss no planted curve unit (down to arcs 1.09x rings and 1.16x lines), name no
    decoy and no channel of randomized networks.

    Example:
        >>> CurveCriteria().min_curve_vs_line, CurveCriteria(min_selectivity=0.3).min_selectivity
        (1.15, 0.3)
    """

    min_curve_vs_line: float = 1.15
    min_curve_vs_blob: float = 1.08
    min_selectivity: float = 0.15
    max_drift: float = 45.0
    min_response: float = 0.1


@dataclass
class CurveDetector:
    """One channel that passed every test of ``find_curve_detectors``.

    Attributes:
        channel: the channel index; ``node`` is ``"layer:channel"``.
        direction: preferred bulge direction in degrees (circular mean at the centre).
        radius: preferred arc radius in px.
        curve_vs_line: the smallest ratio, over stimulus positions, of its best arc to its best line.
        curve_vs_blob: the same against the best ring or disc.
        saturated: its best response to some stimulus reaches the layer's clamp (ReLU6's 6): the ratios above
            are capped there; ``pre_curve_vs_line`` / ``pre_curve_vs_blob`` are the ratios before the clamp.
        margin: the smallest, over positions, of (best arc - best line, ring or disc), in units of the
            layer's strongest arc response: how much more an arc drives it than anything else.
        selectivity: direction selectivity at the centre (0 = untuned, 1 = one direction only).
        drift: the largest move of the preferred direction over the shifted positions, degrees.
        response: its best evoked arc response at the centre.
        curve: the direction tuning curve at the preferred radius (with the shifted curves).
    """

    channel: int
    node: str
    direction: float
    radius: float
    curve_vs_line: float
    curve_vs_blob: float
    margin: float
    selectivity: float
    drift: float
    response: float
    curve: TuningCurve = field(repr=False)
    saturated: bool = False
    pre_curve_vs_line: float = float("nan")
    pre_curve_vs_blob: float = float("nan")


@dataclass
class CurveScan:
    """Every channel's evoked responses to the synthetic curve battery, (P positions, ..., C channels).

    ``arcs`` (P, D, R, C) over ``directions`` x ``radii``; ``lines`` (P, O, K, C) over ``orientations`` x
    ``offsets``; ``rings`` and ``discs`` (P, R, C). Position 0 is the receptive-field centre, the others
    are ``shifts`` from it. ``detectors(...)`` applies the rule of the module docstring. Where the layer
    clamps, ``ceiling`` is the clamp (6 for ReLU6), ``pre`` holds the same four families before it
    (``{"arc": (P, D, R, C), ...}``, evoked) and ``blank`` the raw response to the blank image (C,).
    """

    layer: str
    rf: ReceptiveField
    size: int
    width: float
    directions: torch.Tensor
    radii: list[float]
    orientations: torch.Tensor
    offsets: list[float]
    shifts: list[tuple[float, float]]
    arcs: torch.Tensor = field(repr=False)
    lines: torch.Tensor = field(repr=False)
    rings: torch.Tensor = field(repr=False)
    discs: torch.Tensor = field(repr=False)
    ceiling: float | None = None
    blank: torch.Tensor | None = field(default=None, repr=False)  # (C,) raw response to the blank image
    pre: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def n_channels(self) -> int:
        return int(self.arcs.shape[-1])

    @property
    def tiny(self) -> float:
        """What counts as no response: ``1e-6`` of the layer's largest |evoked| response to any stimulus."""
        top = max(float(t.abs().max()) if t.numel() else 0.0 for t in (self.arcs, self.lines, self.rings,
                                                                       self.discs))
        return _TINY * top

    @property
    def scale(self) -> float:
        """The layer's response scale to the battery: the mean over channels of each one's largest |evoked|
        response (reported beside a comparison with another network, e.g. a randomized control)."""
        best = torch.stack([t.abs().reshape(-1, self.n_channels).amax(0)
                            for t in (self.arcs, self.lines, self.rings, self.discs)]).amax(0)
        return float(best.mean())

    @property
    def saturated(self) -> torch.Tensor:
        """(C,) bool: the channel's best response to some stimulus reaches the clamp ``ceiling`` (all False
        without a clamp)."""
        if self.ceiling is None or self.blank is None:
            return torch.zeros(self.n_channels, dtype=torch.bool)
        fams = (self.arcs, self.lines, self.rings, self.discs)
        raw = torch.stack([t.reshape(-1, self.n_channels).amax(0) for t in fams]).amax(0) + self.blank
        return raw >= self.ceiling * (1 - 1e-5)

    def _ratios(self, best: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per channel, worst-position arc/line and arc/(ring or disc) ratios, (C,) each."""
        floor = max(_FLOOR * float(best["arc"][0].max()), self.tiny, _HARD_FLOOR)
        blob = torch.maximum(best["ring"], best["disc"])
        return ((best["arc"] / best["line"].clamp_min(floor)).amin(0),
                (best["arc"] / blob.clamp_min(floor)).amin(0))

    def pre_ratios(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The worst-position arc/line and arc/blob ratios before the clamp, (C,) each; None without one."""
        if self.pre is None:
            return None
        p = self.pre
        best = {"arc": p["arc"].amax((1, 2)), "line": p["line"].amax((1, 2)), "ring": p["ring"].amax(1),
                "disc": p["disc"].amax(1)}
        return self._ratios(best)

    def best(self) -> dict[str, torch.Tensor]:
        """Per position and channel, the best response of each stimulus family: each (P, C)."""
        return {"arc": self.arcs.amax((1, 2)), "line": self.lines.amax((1, 2)),
                "ring": self.rings.amax(1), "disc": self.discs.amax(1)}

    def direction_curve(self, channel: int) -> TuningCurve:
        """The channel's response over bulge directions at its preferred radius (centre + shifted)."""
        r = int(self.arcs[0, :, :, channel].amax(0).argmax())
        per_pos = self.arcs[:, :, r, channel]  # (P, D)
        return TuningCurve(f"{self.layer}:{channel}", self.directions, per_pos[0], per_pos[0][:, None],
                           self.rf, self.rf.center, list(self.shifts), per_pos[1:], 360.0)

    def detectors(self, criteria: CurveCriteria | None = None, **thresholds: float | None
                  ) -> list[CurveDetector]:
        """The channels that pass every test (module docstring) with ``criteria`` (default
        ``CurveCriteria()``; keyword thresholds such as ``min_selectivity=0.3`` override single fields),
        largest ``margin`` first (arcs over everything else at the worst position, relative to the layer's
        strongest arc response)."""
        crit = CurveCriteria.resolve(criteria, thresholds)
        min_curve_vs_line, min_curve_vs_blob = crit.min_curve_vs_line, crit.min_curve_vs_blob
        min_selectivity, max_drift, min_response = crit.min_selectivity, crit.max_drift, crit.min_response
        best = self.best()
        arc, line = best["arc"], best["line"]
        blob = torch.maximum(best["ring"], best["disc"])
        layer_max = float(arc[0].max())
        tiny = self.tiny
        lines_r, blobs_r = self._ratios(best)  # ratios over a response of ~0 are capped, not astronomical
        sat, pre = self.saturated, self.pre_ratios()
        found = []
        for c in range(self.n_channels):
            if layer_max <= 0 or float(arc[0, c]) < max(min_response * layer_max, tiny):
                continue
            if bool((arc[:, c] <= tiny).any()):
                continue
            vs_line, vs_blob = float(lines_r[c]), float(blobs_r[c])
            if vs_line < min_curve_vs_line or vs_blob < min_curve_vs_blob:
                continue
            tc = self.direction_curve(c)
            sel, peaks = direction_selectivity(tc.responses, self.directions)
            if peaks != 1 or sel < min_selectivity or tc.drift > max_drift:
                continue
            r = int(self.arcs[0, :, :, c].amax(0).argmax())
            margin = float((arc[:, c] - torch.maximum(line[:, c], blob[:, c])).min()) / layer_max
            found.append(CurveDetector(c, f"{self.layer}:{c}", tc.preferred, self.radii[r], vs_line, vs_blob,
                                       margin, sel, tc.drift, float(arc[0, c]), tc, bool(sat[c]),
                                       float(pre[0][c]) if pre else float("nan"),
                                       float(pre[1][c]) if pre else float("nan")))
        return sorted(found, key=lambda d: -d.margin)

    def curve_vs_line(self) -> torch.Tensor:
        """Every channel's worst-position ratio of best arc to best line, (C,) (the denominator floored at
        1 % of the layer's strongest arc response, as in ``detectors``)."""
        return self._ratios(self.best())[0]

    def summary(self, channel: int | None = None) -> str:
        """One sentence: the layer, its channels and how many pass ``detectors()`` with the default criteria.
        (``summary(channel)`` returning ``stats(channel)``'s dict is deprecated: use ``stats``.)"""
        if channel is not None:
            warnings.warn("CurveScan.summary(channel) -> dict is deprecated: use CurveScan.stats(channel); "
                          "summary() is a sentence", DeprecationWarning, stacklevel=2)
            return self.stats(channel)
        return scan_sentence("Curve", self.layer, self.n_channels, self.detectors(), "every curve test",
                             "CurveCriteria", "direction")

    def to_dict(self) -> dict:
        """The scan's geometry and every channel's ``stats`` (``json.dumps``-ready)."""
        return {"layer": self.layer, "size": self.size, "width": self.width, "radii": list(self.radii),
                "shifts": [list(s) for s in self.shifts], "ceiling": self.ceiling,
                "channels": [self.stats(c) for c in range(self.n_channels)]}

    def stats(self, channel: int) -> dict[str, float]:
        """The numbers behind the verdict for one channel (also for channels that fail)."""
        best = self.best()
        arc, line = best["arc"][:, channel], best["line"][:, channel]
        tc = self.direction_curve(channel)
        sel, peaks = direction_selectivity(tc.responses, self.directions)
        lines_r, blobs_r = self._ratios(best)
        pre = self.pre_ratios()
        return {"arc": float(arc[0]), "line": float(line[0]), "ring": float(best["ring"][0, channel]),
                "disc": float(best["disc"][0, channel]),
                "curve_vs_line": float(lines_r[channel]), "curve_vs_blob": float(blobs_r[channel]),
                "direction": tc.preferred, "selectivity": sel, "peaks": peaks, "drift": tc.drift,
                "tiny": self.tiny, "saturated": float(self.saturated[channel]),
                "ceiling": float("nan") if self.ceiling is None else float(self.ceiling),
                "pre_curve_vs_line": float(pre[0][channel]) if pre else float("nan"),
                "pre_curve_vs_blob": float(pre[1][channel]) if pre else float("nan")}


def _default_geometry(rf: ReceptiveField, size: int | None, model_size: int | None
                      ) -> tuple[int, float, list[float]]:
    stride = max(rf.stride)
    shift = max(2.0, stride / 2)
    ext = min(max(rf.size), 4 * 64)
    if size is None:
        need = ext + 2 * shift + 8
        size = int(32 * math.ceil(max(64, need) / 32))
        if model_size:
            size = min(size, int(model_size))
    r_lo = max(3.0, stride)
    r_hi = max(2 * r_lo, ext / 3)
    radii = sorted({round(2 * r_lo * (r_hi / r_lo) ** (k / 3)) / 2 for k in range(4)})
    return size, shift, radii


def curve_scan(model: nn.Module, layer: str, size: int | None = None, *, radii: Sequence[float] | None = None,
               n_directions: int = 24, shift: float | None = None, width: float | None = None,
               preprocess: Callable | bool | None = None, batch_size: int = 64) -> CurveScan:
    """Show every channel of ``layer`` the curve battery (arcs, lines, rings, discs) at its receptive-field
    centre and at four positions ``shift`` px away, and keep the evoked responses.

    Defaults follow the layer's geometry (``receptive_field``): ``shift`` = half the layer's stride (at
    least 2 px: the furthest a stimulus can be from some unit's centre), radii from max(3, stride) to a
    third of the field, stroke ``width`` = max(2, stride / 4) px, ``size`` large enough for the field
    (capped at ``model.input_size``).

    Example:
        >>> scan = curve_scan(fv.models.toy.edges_and_curves(), "relu2", size=32, radii=[4], shift=1)
        >>> scan.arcs.shape      # (positions, directions, radii, channels)
        torch.Size([5, 24, 1, 7])
    """
    from featviz.data import circles, curves, lines

    hm = hooked(model)
    name = hm.layer(layer)
    if n_directions < 4:
        raise BadValue(f"n_directions must be at least 4 to measure direction tuning, got {n_directions}")
    model_size = input_size_of(hm)
    rf0 = receptive_field(hm, name, size=size or model_size or 224)
    size, d_shift, d_radii = _default_geometry(rf0, size, model_size)
    shift = d_shift if shift is None else float(shift)
    radii = d_radii if radii is None else [float(r) for r in radii]
    if not radii or min(radii) <= 0:
        raise BadValue(f"radii must be positive numbers of pixels, got {radii}")
    width = max(2.0, max(rf0.stride) / 4) if width is None else float(width)
    rf = receptive_field(hm, name, size=size)
    directions = torch.arange(n_directions, dtype=torch.float32) * (360.0 / n_directions)
    orientations = directions[directions < 180]
    offsets = [-shift, -shift / 2, 0.0, shift / 2, shift]
    arc_len = [min(r * 2 * math.pi / 3, 0.9 * size) for r in radii]  # a third of the circle
    line_len = max(arc_len) / size
    shifts = shift_list(shift)
    centres = [rf.center] + [(rf.center[0] + dr, rf.center[1] + dc) for dr, dc in shifts]

    ceiling = clamp_ceiling(hm.module(name))

    def respond(images: torch.Tensor) -> torch.Tensor:  # (K, N, C): K = 1 (post) or 2 (post, pre)
        images = as_images(images, "stimuli", channels=None, unit=False)
        if ceiling is None:
            return layer_responses(hm, name, images, rf.position, preprocess, batch_size).cpu()[None]
        return torch.stack(responses_and_inputs(hm, name, images, rf.position, preprocess, batch_size)).cpu()

    blank = respond(torch.zeros(1, 3, size, size))[:, 0]  # (K, C)
    arcs, lns, rings, discs = [], [], [], []
    for ctr in centres:
        arcs.append(torch.stack([respond(curves(directions.tolist(), size / r, size=size, length=ln / size,
                                                width=width, center=ctr))
                                 for r, ln in zip(radii, arc_len)], 2))  # (K, D, R, C)
        ls = respond(lines(orientations.tolist(), offsets, size=size, length=line_len, width=width,
                           center=ctr))
        lns.append(ls.reshape(len(ls), len(orientations), len(offsets), -1))  # (K, O, F, C)
        rings.append(respond(circles(radii, size=size, width=width, center=ctr)))  # (K, R, C)
        discs.append(respond(circles(radii, size=size, filled=True, center=ctr)))

    def evoked(fam: list[torch.Tensor], k: int) -> torch.Tensor:  # (P, ..., C) minus the blank
        return torch.stack([f[k] for f in fam]) - blank[k]

    pre = None
    if ceiling is not None:
        pre = {"arc": evoked(arcs, 1), "line": evoked(lns, 1), "ring": evoked(rings, 1),
               "disc": evoked(discs, 1)}
    return CurveScan(name, rf, size, width, directions, list(radii), orientations, offsets, shifts,
                     evoked(arcs, 0), evoked(lns, 0), evoked(rings, 0), evoked(discs, 0), ceiling, blank[0],
                     pre)


def find_curve_detectors(model: nn.Module, layer: str, size: int | None = None, *,
                         criteria: CurveCriteria | None = None, radii: Sequence[float] | None = None,
                         shift: float | None = None, width: float | None = None,
                         preprocess: Callable | bool | None = None,
                         **thresholds: float | None) -> list[CurveDetector]:
    """Channels of ``layer`` that are curve detectors by every test of the module docstring, largest
    ``margin`` over lines, rings and discs first. An empty list is an answer: no channel survives the
    controls. ``criteria``: the thresholds (``CurveCriteria``, calibrated defaults), e.g.
    ``criteria=CurveCriteria(min_selectivity=0.3)``; the old keyword thresholds (``min_curve_vs_line``,
    ``min_curve_vs_blob``, ``min_selectivity``, ``max_drift``, ``min_response``) still work and override
    single fields of ``criteria``.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5), torch.nn.ReLU())   # random weights
        >>> find_curve_detectors(net, "1", size=32)   # a random filter is no curve detector
        []
    """
    scan = curve_scan(model, layer, size, radii=radii, shift=shift, width=width, preprocess=preprocess)
    crit = CurveCriteria.resolve(criteria, thresholds)  # a bad threshold name fails before the scan
    return scan.detectors(crit)
