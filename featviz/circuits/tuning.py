"""Tuning curves: (model, "layer:channel", stimuli at known angles) -> response vs angle; edge detectors.

Stimuli come from ``featviz.data`` (``gratings``, ``edges``, ``curves``), images in [0, 1] whose angle
convention is documented in ``featviz/data/stimuli.py``. An edge detector has a single-peaked
orientation curve over gratings; a curve detector prefers curves of one orientation.
"""
from __future__ import annotations

import functools  # noqa: F401  (used in docstring examples)
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from featviz.circuits._criteria import Criteria, scan_sentence
from featviz.circuits._keywords import images_keyword
from featviz.circuits.receptive_field import ReceptiveField, receptive_field
from featviz.core import as_images, remembered, tensor_key
from featviz.errors import BadType, BadValue
from featviz.hooks import HookedModel, hooked
from featviz.models import randomized

__all__ = ["TuningCurve", "EdgeCriteria", "EdgeDetector", "EdgeScan", "edge_scan", "tuning_curve",
           "find_edge_detectors", "layer_responses",
           "responses_and_inputs", "clamp_ceiling"]


@dataclass
class TuningCurve:
    """Responses of one channel to stimuli at ``angles``: ``responses`` (A,) averaged over the stimuli that
    share an angle (phases, curvatures), ``raw`` (A, G) before averaging.

    When the stimuli were placed by ``tuning_curve`` (a stimulus function), ``rf`` is the unit's receptive
    field and ``center`` where the stimuli were centred; with ``shifts`` the same curve was measured with
    the stimuli moved by each (d_row, d_col) in ``shifts``: ``shifted`` (S, A). ``period`` is 360 for
    directed stimuli (arcs, step edges) and 180 for orientations (gratings, lines).
    """

    node: str
    angles: torch.Tensor  # (A,) degrees
    responses: torch.Tensor  # (A,)
    raw: torch.Tensor = field(repr=False)  # (A, G)
    rf: ReceptiveField | None = field(default=None, repr=False)
    center: tuple[float, float] | None = None
    shifts: list[tuple[float, float]] = field(default_factory=list)
    shifted: torch.Tensor | None = field(default=None, repr=False)  # (S, A)
    period: float = 180.0

    @property
    def peak(self) -> float:
        """The angle with the largest response, in degrees."""
        return float(self.angles[int(self.responses.argmax())])

    @property
    def preferred(self) -> float:
        """The circular mean of the rectified curve (degrees in [0, period)): a peak robust to sampling."""
        return circular_mean(self.responses, self.angles, self.period)

    @property
    def drift(self) -> float:
        """How far the preferred angle moves when the stimulus is shifted: the largest circular distance
        (degrees) between the preferred angle at any shift and at the centre; 0 without shifts."""
        if self.shifted is None or len(self.shifted) == 0:
            return 0.0
        prefs = [self.preferred] + [circular_mean(r, self.angles, self.period) for r in self.shifted]
        if any(math.isnan(p) for p in prefs):  # no response somewhere: no stable preference
            return self.period / 2
        return max(angle_distance(p, prefs[0], self.period) for p in prefs[1:])

    def plot(self, ax=None, path: str | None = None):
        """Response vs angle (``featviz.viz.plot_tuning_curve``); saves a PNG when ``path`` is given."""
        from featviz.viz import plot_tuning_curve

        return plot_tuning_curve(self, ax=ax, path=path)

    def _repr_png_(self) -> bytes:
        from featviz.viz.figures import figure_png

        return figure_png(self.plot())

    def summary(self) -> str:
        """One sentence: the unit, its preferred angle and peak, and the drift under shifts."""
        drift = f", drifting {self.drift:.0f}° over {len(self.shifts)} shifts" if self.shifts else ""
        return (f"{self.node} prefers {self.preferred:.0f}° (peak {self.peak:g}°, response "
                f"{float(self.responses.max()):.3g}) over {len(self.angles)} angles{drift}.")

    def to_dict(self) -> dict:
        """Angles, responses, preferred angle and drift (``json.dumps``-ready)."""
        return {"node": self.node, "angles": [float(a) for a in self.angles],
                "responses": [float(r) for r in self.responses], "preferred": self.preferred,
                "peak": self.peak, "period": self.period, "drift": self.drift,
                "center": None if self.center is None else list(self.center),
                "shifts": [list(s) for s in self.shifts]}


def circular_mean(r: torch.Tensor, angles: torch.Tensor, period: float = 360.0) -> float:
    """Preferred angle of a curve ``r`` (A,) at ``angles`` (degrees): the direction of
    ``sum max(r, 0) e^{i 2π θ / period}`` mapped back to [0, period); NaN when no response is positive.

    Example:
        >>> circular_mean(torch.tensor([0., 1, 3, 1]), torch.tensor([0., 90, 180, 270]))
        180.0
    """
    rp = r.double().clamp_min(0)
    if float(rp.sum()) <= 0:
        return float("nan")
    z = (rp * torch.exp(1j * torch.deg2rad(angles.double() * (360.0 / period)))).sum()
    return round(math.degrees(math.atan2(float(z.imag), float(z.real))) * period / 360.0 % period, 4) % period


def angle_distance(a: float, b: float, period: float = 360.0) -> float:
    """Circular distance between two angles in degrees, in [0, period / 2].

    Example:
        >>> angle_distance(350, 10), angle_distance(10, 170, period=180)
        (20.0, 20.0)
    """
    d = abs(a - b) % period
    return float(min(d, period - d))


def clamp_ceiling(module: nn.Module) -> float | None:
    """The largest value an activation module can output (ReLU6: 6, Hardtanh: ``max_val``), else None.

    Example:
        >>> clamp_ceiling(torch.nn.ReLU6()), clamp_ceiling(torch.nn.ReLU())
        (6.0, None)
    """
    name = type(module).__name__
    if name == "ReLU6":
        return 6.0
    if name == "Hardtanh":
        return float(module.max_val)
    return None


def _read(a: torch.Tensor, position: str | tuple[int, int]) -> torch.Tensor:
    if isinstance(position, tuple):
        return a[:, :, position[0], position[1]]
    if position == "center":
        return a[:, :, a.shape[-2] // 2, a.shape[-1] // 2]
    return a.mean((-2, -1)) if position == "mean" else a.amax((-2, -1))


def layer_responses(hm: HookedModel, layer: str, images: torch.Tensor,
                    position: str | tuple[int, int] = "center", preprocess: Callable | bool | None = None,
                    batch_size: int = 64) -> torch.Tensor:
    """Every channel's response to each image, (N, C): the central unit (``position="center"``, the map
    position ``(H // 2, W // 2)`` that ``receptive_field`` places stimuli for), a unit ``(i, j)``, the
    spatial mean (``"mean"``) or the spatial max (``"max"``) of the layer's map."""
    return _responses(hm, layer, images, position, preprocess, batch_size, False)[0]


def responses_and_inputs(hm: HookedModel, layer: str, images: torch.Tensor,
                         position: str | tuple[int, int] = "center",
                         preprocess: Callable | bool | None = None, batch_size: int = 64
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``layer_responses`` and, read at the same place, the layer module's input (its pre-activation: before
    a ReLU6's clamp), (N, C) each."""
    post, pre = _responses(hm, layer, images, position, preprocess, batch_size, True)
    return post, pre


def _responses(hm: HookedModel, layer: str, images: torch.Tensor, position: str | tuple[int, int],
               preprocess: Callable | bool | None, batch_size: int, pre: bool
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    if not (position in ("center", "mean", "max") or (isinstance(position, tuple) and len(position) == 2)):
        raise BadValue(f"position must be 'center', 'mean', 'max' or a map position (i, j), "
                         f"got {position!r}")
    if preprocess in (None, True, False):  # within fv.core.reusing: the same stimuli through the layer, once
        where = tuple(int(v) for v in position) if isinstance(position, tuple) else position
        key = (hm.ref(layer).key, tensor_key(images), where, preprocess, int(batch_size), pre)
        return remembered("layer_responses", hm.model, key,
                          lambda: _responses_pass(hm, layer, images, position, preprocess, batch_size, pre))
    return _responses_pass(hm, layer, images, position, preprocess, batch_size, pre)


def _responses_pass(hm: HookedModel, layer: str, images: torch.Tensor, position: str | tuple[int, int],
                    preprocess: Callable | bool | None, batch_size: int, pre: bool
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    out, ins = [], []
    seen: list[torch.Tensor] = []

    def grab(module, inputs, output):
        seen.append(inputs[0].detach())

    with hm.hooks([(layer, grab)] if pre else []):
        for _, cache in hm.stream(images, [layer], batch_size=batch_size, preprocess=preprocess,
                                  progress=False):  # eval mode per batch; BatchNorm statistics kept
            out.append(_read(cache[layer], position))  # (b, C)
            if pre:
                ins.append(_read(seen[-1], position))
                seen.clear()
    return torch.cat(out), (torch.cat(ins) if pre else None)


def _angles(n_images: int, angles: Sequence[float] | None, what: str) -> torch.Tensor:
    if angles is None:  # as made by fv.data.gratings(range(0, 180, step)): evenly over 180 degrees
        return torch.arange(n_images, dtype=torch.float32) * (180.0 / n_images)
    a = torch.tensor([float(v) for v in angles])
    if len(a) == 0 or n_images % len(a):
        raise BadValue(f"{what}: {n_images} stimuli do not split into {len(a)} angles; give one angle per "
                         "stimulus, or per group of equal size in angle-major order (e.g. phases)")
    return a


Stimuli = torch.Tensor | Callable[..., torch.Tensor]


def shift_list(shifts: float | Sequence[tuple[float, float]] | None) -> list[tuple[float, float]]:
    """``None`` -> []; a number ``s`` -> the four moves by ``s`` px (up, down, left, right); a list of
    (d_row, d_col) pairs -> itself.

    Example:
        >>> shift_list(4)
        [(-4.0, 0.0), (4.0, 0.0), (0.0, -4.0), (0.0, 4.0)]
    """
    if shifts is None:
        return []
    if isinstance(shifts, (int, float)):
        s = float(shifts)
        if s <= 0:
            raise BadValue(f"shifts must be a positive number of pixels or a list of (d_row, d_col), "
                             f"got {s}")
        return [(-s, 0.0), (s, 0.0), (0.0, -s), (0.0, s)]
    try:
        return [(float(r), float(c)) for r, c in shifts]
    except (TypeError, ValueError):
        raise BadValue(f"shifts must be a number of pixels or a list of (d_row, d_col) pairs, "
                         f"got {shifts!r}") from None


def place_stimuli(model: nn.Module, node: str, make: Callable[..., torch.Tensor], at: str = "rf",
                  shifts: float | Sequence[tuple[float, float]] | None = None
                  ) -> tuple[ReceptiveField, tuple[float, float], list[torch.Tensor]]:
    """Build stimuli with ``make(center=(row, col))`` at the unit's receptive-field centre (``at="rf"``) or
    at the image centre (``at="image"``), and once more at each shift: returns (rf, centre, [images at the
    centre, images at shift 1, ...]).

    Example:
        >>> make = functools.partial(fv.data.curves, range(0, 360, 30), size=64)
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.ReLU())
        >>> rf, c, (centred, *moved) = place_stimuli(net, "1:3", make, shifts=4)
        >>> c, len(moved), centred.shape          # the 31x31 map's centre unit reads pixels 30..32
        ((31.0, 31.0), 4, torch.Size([12, 3, 64, 64]))
    """
    if at not in ("rf", "image"):
        raise BadValue(f"at must be 'rf' (the unit's receptive-field centre) or 'image', got {at!r}")
    probe = make()
    if not isinstance(probe, torch.Tensor) or probe.dim() != 4:
        raise BadType("a stimulus function must return a (N, C, H, W) tensor when called with center=")
    size = (int(probe.shape[-2]), int(probe.shape[-1]))
    rf = receptive_field(model, node, size=size)
    center = rf.center if at == "rf" else ((size[0] - 1) / 2, (size[1] - 1) / 2)
    images = [make(center=center)]
    images += [make(center=(center[0] + dr, center[1] + dc)) for dr, dc in shift_list(shifts)]
    return rf, center, images


@images_keyword("stimuli")
def tuning_curve(model: nn.Module, node: str, images: Stimuli, angles: Sequence[float] | None = None, *,
                 at: str = "rf", shifts: float | Sequence[tuple[float, float]] | None = None,
                 period: float | None = None, position: str = "center",
                 preprocess: Callable | bool | None = None) -> TuningCurve:
    """Response of channel ``node`` (``"layer:channel"``) to each stimulus, as a function of angle.

    ``images``: the stimuli: a stimulus *function* ``make(center=(row, col)) -> (N, 3, H, W)`` — e.g.
    ``functools.partial(fv.data.curves, range(0, 360, 15), size=96)`` — which ``tuning_curve`` calls with
    the unit's receptive-field centre (``at="rf"``, the default; ``at="image"``: the image centre), or
    ready images (N, 3, H, W) in [0, 1], used as they are. ``preprocess`` is applied as in the model.
    ``angles``: one per stimulus, or one per group of N / len(angles) consecutive stimuli (angle-major, as
    ``gratings`` with phases and ``curves`` with curvatures are ordered) whose responses are averaged.
    Default: N angles evenly over [0, 180). ``shifts`` (a stimulus function only): also measure with the
    stimuli moved by ``shifts`` px up/down/left/right (a number) or by each (d_row, d_col) given; the
    result's ``drift`` says how far the preferred angle moves. ``period``: 360 for directed stimuli, 180 for
    orientations (default: 360 if any angle is >= 180). ``position``: which response of the map counts
    ("center" = the unit the stimuli are placed for, spatial "mean" or "max").

    Example:
        >>> angles = range(0, 360, 30)
        >>> make = functools.partial(fv.data.edges, angles, size=32)   # step edges, centred where asked
        >>> tc = tuning_curve(fv.models.toy.edges_and_curves(), "relu1:2", make, angles, shifts=2)
        >>> round(tc.preferred), round(tc.drift), tc.center, tc.period
        (90, 0, (16.0, 16.0), 360.0)
    """
    hm = hooked(model)
    layer = hm.ref(node).key
    rf, center, sets = None, None, None
    if callable(images) and not isinstance(images, torch.Tensor):
        if angles is None:
            raise BadValue("with a stimulus function, give angles= (the angles it was made with, e.g. "
                             "tuning_curve(model, node, partial(fv.data.curves, A, size=64), A))")
        rf, center, sets = place_stimuli(hm, node, images, at, shifts)
        images = as_images(sets[0], "stimuli", channels=None, unit=False)
    else:
        if shifts is not None:
            raise BadValue("shifts needs a stimulus function (make(center=...) -> images) to move the "
                             "stimuli, e.g. functools.partial(fv.data.curves, angles, size=64)")
        images = as_images(images, "images", channels=None, unit=False)
    a = _angles(len(images), angles, "tuning_curve")
    where = rf.position if (rf is not None and position == "center") else position
    resp = layer_responses(hm, layer, images, where, preprocess)  # (N, C)
    _, c = hm.unit(node, n_channels=resp.shape[1])  # one channel, non-negative, within the layer's width
    raw = resp[:, c].reshape(len(a), -1).cpu()  # (A, G)
    shifted = None
    if sets is not None and len(sets) > 1:
        shifted = torch.stack([layer_responses(hm, layer, s, where, preprocess)[:, c]
                               .reshape(len(a), -1).mean(1).cpu() for s in sets[1:]])
    if period is None:
        period = 360.0 if float(a.max()) >= 180 else 180.0
    return TuningCurve(f"{layer}:{c}", a, raw.mean(1), raw, rf, center, shift_list(shifts), shifted,
                       float(period))


@dataclass
class EdgeDetector:
    """A channel that passed both edge tests of ``find_edge_detectors``.

    Attributes:
        node: ``"layer:channel"``.
        angle: preferred grating angle (degrees in [0, 180), the wave direction: the edge's gradient).
        osi: orientation selectivity over gratings; ``peak_trough``: their peak/trough ratio; ``freq``:
            the grating frequency (cycles/px) they were measured at.
        edge_direction: preferred step-edge direction (degrees in [0, 360), dark to bright).
        edge_selectivity: direction selectivity over step edges (0 = untuned, 1 = one direction only).
        curve: the grating tuning curve; ``edge_curve``: the step-edge tuning curve (evoked responses).
    """

    node: str
    angle: float
    osi: float
    peak_trough: float
    freq: float
    curve: TuningCurve = field(repr=False)
    edge_direction: float = float("nan")
    edge_selectivity: float = float("nan")
    edge_curve: TuningCurve | None = field(default=None, repr=False)


def orientation_stats(r: torch.Tensor, angles: torch.Tensor) -> tuple[float, float, float, int]:
    """(osi, preferred angle, peak/trough ratio, number of peaks) of an orientation curve ``r`` (A,)
    sampled at ``angles`` evenly covering [0, 180). osi = 1 - circular variance of the rectified
    responses on doubled angles; peaks = runs of the circular curve above half its height."""
    rp = r.clamp_min(0)
    z = (rp * torch.exp(2j * torch.deg2rad(angles))).sum()
    osi = float(z.abs() / rp.sum().clamp_min(1e-12))
    angle = float(math.degrees(math.atan2(float(z.imag), float(z.real))) / 2 % 180)
    top, bottom = float(rp.max()), float(rp.min())
    above = rp > bottom + 0.5 * (top - bottom)
    peaks = int((above & ~above.roll(1)).sum()) if not bool(above.all()) else 0
    return osi, angle, top / max(bottom, 1e-6 * max(top, 1e-12)), peaks


@dataclass(frozen=True)
class EdgeCriteria(Criteria):
    """The thresholds of ``find_edge_detectors`` / ``EdgeScan.detectors`` (see ``find_edge_detectors``);
    measured false-positive and false-negative rates of the defaults: docs/finder_calibration.md.

    Example:
        >>> EdgeCriteria().min_osi, EdgeCriteria(min_edge_selectivity=0.6).min_edge_selectivity
        (0.2, 0.6)
    """

    min_osi: float = 0.2
    min_peak_trough: float = 3.0
    min_response: float = 0.1
    min_edge_selectivity: float = 0.5
    min_edge_response: float = 0.2


@dataclass
class EdgeScan:
    """Every channel's responses to the edge battery of ``find_edge_detectors``: ``resp`` (F, A, 8, C) over
    grating frequencies ``freqs`` x angles x phases, ``evoked`` (24, C) step edges over ``directions`` minus
    mid grey (None without step edges). ``detectors(criteria)`` applies the rule."""

    layer: str
    rf: ReceptiveField
    angles: torch.Tensor
    freqs: list[float]
    resp: torch.Tensor = field(repr=False)
    directions: torch.Tensor = field(repr=False)
    evoked: torch.Tensor | None = field(repr=False)

    def summary(self) -> str:
        """One sentence: the layer, its channels and how many pass ``detectors()`` (default criteria)."""
        return scan_sentence("Edge", self.layer, self.resp.shape[-1], self.detectors(), "both edge tests",
                             "EdgeCriteria", "angle")

    def to_dict(self) -> dict:
        """The battery and the default-criteria detectors (``json.dumps``-ready; responses stay tensors)."""
        return {"layer": self.layer, "freqs": list(self.freqs), "angles": [float(a) for a in self.angles],
                "n_channels": int(self.resp.shape[-1]), "step_edges": self.evoked is not None,
                "detectors": [d.node for d in self.detectors()]}

    def detectors(self, criteria: EdgeCriteria | None = None, **thresholds: float | None
                  ) -> list[EdgeDetector]:
        """The channels that pass both tests with ``criteria`` (default ``EdgeCriteria()``; keyword
        thresholds override single fields), most orientation-selective first."""
        crit = EdgeCriteria.resolve(criteria, thresholds)
        curves = self.resp.mean(2)  # (F, A, C)
        name, rf, angles, directions, evoked = self.layer, self.rf, self.angles, self.directions, self.evoked
        if evoked is not None:
            edge_max = float(evoked.amax())
            tiny = 1e-6 * float(evoked.abs().amax())
        found = []
        for c in range(curves.shape[-1]):
            passing = []
            for f in range(len(self.freqs)):
                r = curves[f, :, c]
                osi, angle, ratio, peaks = orientation_stats(r, angles)
                strong = float(r.max()) >= crit.min_response * float(curves[f].amax())
                if peaks == 1 and osi >= crit.min_osi and ratio >= crit.min_peak_trough and strong:
                    passing.append((osi, angle, ratio, f))
            if not passing:
                continue
            osi, angle, ratio, f = max(passing)
            curve = TuningCurve(f"{name}:{c}", angles, curves[f, :, c], self.resp[f, :, :, c], rf, rf.center)
            detector = EdgeDetector(f"{name}:{c}", angle, osi, ratio, float(self.freqs[f]), curve)
            if evoked is not None:
                e = evoked[:, c]
                sel, peaks = direction_selectivity(e, directions)
                weak = float(e.max()) < max(crit.min_edge_response * edge_max, tiny, 1e-30)
                if peaks != 1 or sel < crit.min_edge_selectivity or weak:
                    continue
                detector.edge_curve = TuningCurve(f"{name}:{c}", directions, e, e[:, None], rf, rf.center,
                                                  period=360.0)
                detector.edge_direction = detector.edge_curve.preferred
                detector.edge_selectivity = sel
            found.append(detector)
        return sorted(found, key=lambda e: -e.osi)


def edge_scan(model: nn.Module, layer: str, *, step: float = 10.0, size: int = 64,
              freqs: Sequence[float] = (0.0625, 0.125, 0.25), step_edges: bool = True,
              preprocess: Callable | bool | None = None) -> EdgeScan:
    """Show every channel of ``layer`` the gratings and step edges of ``find_edge_detectors`` at its
    receptive-field centre and keep the responses (``EdgeScan``).

    Example:
        >>> scan = edge_scan(fv.models.toy.edges_and_curves(), "relu1", size=32)
        >>> scan.resp.shape, len(scan.detectors())       # (freqs, angles, phases, channels)
        (torch.Size([3, 18, 8, 8]), 8)
    """
    from featviz.data import edges, gratings

    hm = hooked(model)
    name = hm.layer(layer)
    rf = receptive_field(hm, name, size=size)
    angles = torch.arange(0.0, 180.0, step)
    stimuli = [gratings(angles.tolist(), size=size, freq=f, phases=list(range(0, 360, 45)), center=rf.center)
               for f in freqs]
    resp = torch.stack([layer_responses(hm, name, s, rf.position, preprocess).cpu()
                        .reshape(len(angles), 8, -1) for s in stimuli])  # (F, A, 8, C)
    directions = torch.arange(0.0, 360.0, 15.0)
    evoked = None
    if step_edges:
        grey = layer_responses(hm, name, torch.full((1, 3, size, size), 0.5), rf.position, preprocess).cpu()
        steps = edges(directions.tolist(), size=size, center=rf.center)
        evoked = layer_responses(hm, name, steps, rf.position, preprocess).cpu() - grey  # (24, C)
    return EdgeScan(name, rf, angles, [float(f) for f in freqs], resp, directions, evoked)


def find_edge_detectors(model: nn.Module, layer: str, *, criteria: EdgeCriteria | None = None,
                        step: float = 10.0, size: int = 64, freqs: Sequence[float] = (0.0625, 0.125, 0.25),
                        step_edges: bool = True, preprocess: Callable | bool | None = None,
                        **thresholds: float | None) -> list[EdgeDetector]:
    """Channels of ``layer`` that behave like oriented edge detectors, strongest selectivity first.

    Every stimulus is centred on the receptive field of the unit read (``receptive_field``: the map
    centre unit at ``size`` px). A channel qualifies if it passes both tests:

    **Gratings** at angles 0, ``step``, ... < 180 with eight phases (0, 45, ..., 315) averaged: at one of
    the spatial frequencies ``freqs`` (cycles/px; the most selective one is reported) its curve is
      * single-peaked: the curve (circular over 180 degrees) has exactly one run above half its height;
      * selective: orientation selectivity ``osi = |sum r e^{2i theta}| / sum r >= min_osi``
        (1 - circular variance; 0 = untuned, 1 = one angle only);
      * peak/trough ratio of the rectified curve ``>= min_peak_trough``;
      * responsive: peak ``>= min_response`` times the largest peak in the layer (same frequency).

    **Step edges** (``step_edges=True``) in 24 directions through the field's centre, evoked responses
    (minus the response to uniform grey): one peak over 360 degrees, direction selectivity
    ``|sum r e^{i theta}| / sum r >= min_edge_selectivity`` and a peak ``>= min_edge_response`` times the
    layer's strongest. The thresholds are an ``EdgeCriteria`` (``criteria=EdgeCriteria(min_osi=0.3)``); the
    old keyword thresholds (``min_osi``, ``min_peak_trough``, ``min_response``, ``min_edge_selectivity``,
    ``min_edge_response``) still work and override single fields of ``criteria``; ``edge_scan`` keeps the
    responses so several criteria can be applied to one scan.
    Gratings alone also pass oriented *random* filters: on EfficientNet-Lite0's
    ``blocks.1.depthwise_relu`` gratings alone pass 58 trained channels and 36-43 of a randomly
    initialised copy; both tests pass 38 trained and 10-16 random (seeds 0-2; see ``control_counts``).

    Example:
        >>> found = find_edge_detectors(fv.models.toy.edges_and_curves(), "relu1", size=32)
        >>> len(found), sorted(round(e.edge_direction) % 360 for e in found)[:3]
        (8, [0, 45, 90])
    """
    crit = EdgeCriteria.resolve(criteria, thresholds)  # a bad threshold name fails before the scan
    scan = edge_scan(model, layer, step=step, size=size, freqs=freqs, step_edges=step_edges,
                     preprocess=preprocess)
    return scan.detectors(crit)


def direction_selectivity(r: torch.Tensor, angles: torch.Tensor) -> tuple[float, int]:
    """(selectivity, number of peaks) of a direction curve over 360 degrees: ``|Σ r⁺ e^{iθ}| / Σ r⁺`` and
    the number of runs of the circular curve above half its height.

    Example:
        >>> direction_selectivity(torch.tensor([0., 1, 4, 1]), torch.tensor([0., 90, 180, 270]))
        (0.666667, 1)
    """
    rp = r.float().clamp_min(0)
    total = float(rp.sum())
    if total <= 0:
        return 0.0, 0
    z = (rp * torch.exp(1j * torch.deg2rad(angles.float()))).sum()
    top, bottom = float(rp.max()), float(rp.min())
    above = rp > bottom + 0.5 * (top - bottom)
    peaks = int((above & ~above.roll(1)).sum()) if not bool(above.all()) else 0
    return round(float(z.abs()) / total, 6), peaks


@dataclass
class ControlCount:
    """How many channels a finder names in the model and in randomly re-initialised copies of it.

    ``trained``: the count in the model; ``randomized``: one count per seed; ``ratio``: trained over the
    largest randomized count (inf when every copy gives 0). ``found``: what the finder returned.
    """

    finder: str
    layer: str
    trained: int
    randomized: list[int]
    found: list = field(repr=False, default_factory=list)

    @property
    def ratio(self) -> float:
        worst = max(self.randomized) if self.randomized else 0
        return float("inf") if worst == 0 else self.trained / worst

    def summary(self) -> str:
        """The sentence ``str()`` gives: trained count against the randomized controls."""
        return str(self)

    def to_dict(self) -> dict:
        """Counts, ratio and the sentence (``json.dumps``-ready)."""
        return {"finder": self.finder, "layer": self.layer, "trained": self.trained,
                "randomized": list(self.randomized), "ratio": self.ratio, "summary": self.summary()}

    def __str__(self) -> str:
        rnd = ", ".join(str(n) for n in self.randomized)
        return (f"{self.finder} on {self.layer}: {self.trained} channels in the trained model, "
                f"{rnd} in randomly initialised copies (seeds 0-{len(self.randomized) - 1})")


def control_counts(model: nn.Module, layer: str, finder: Callable[..., list],
                   seeds: Sequence[int] = (0, 1, 2), **kwargs) -> ControlCount:
    """Run a finder (``find_edge_detectors``, ``find_curve_detectors``, ...) on the model and on
    ``fv.models.randomized(model, seed)`` for each seed: the standard control for "this layer has X".

    Arguments follow the package order (model, reference, then the finder and options); the first-wave
    order ``control_counts(finder, model, layer)`` still works with a ``DeprecationWarning``.

    Example:
        >>> cc = control_counts(fv.models.toy.edges_and_curves(), "relu1", find_edge_detectors, size=32)
        >>> cc.trained, cc.randomized == [len(find_edge_detectors(fv.models.randomized(
        ...     fv.models.toy.edges_and_curves(), s), "relu1", size=32)) for s in (0, 1, 2)]
        (8, True)
    """
    if _is_model(layer) and not _is_model(model) and callable(model):  # the old order (finder, model, layer)
        warnings.warn("control_counts(finder, model, layer) is deprecated: write "
                      "control_counts(model, layer, finder) (model, references, then the rest)",
                      DeprecationWarning, stacklevel=2)
        model, layer, finder = layer, finder, model
    if not callable(finder):
        raise BadType(f"finder must be a function such as fv.circuits.find_edge_detectors, "
                        f"got {type(finder).__name__}")

    found = finder(model, layer, **kwargs)
    counts = [len(finder(randomized(model, seed=s), layer, **kwargs)) for s in seeds]
    return ControlCount(getattr(finder, "__name__", str(finder)), layer, len(found), counts, found)


def _is_model(obj: object) -> bool:
    return isinstance(obj, (nn.Module, HookedModel))
