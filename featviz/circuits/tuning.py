"""Tuning curves: (model, "layer:channel", stimuli at known angles) -> response vs angle; edge detectors.

Stimuli come from ``featviz.data`` (``gratings``, ``edges``, ``curves``), images in [0, 1] whose angle
convention is documented in ``featviz/data/stimuli.py``. An edge detector has a single-peaked
orientation curve over gratings; a curve detector prefers curves of one orientation.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from featviz.circuits._common import (
    as_hooked,
    check_channels,
    check_images,
    preprocess_fn,
    resolve_ref,
    split_ref,
)
from featviz.hooks import HookedModel

__all__ = ["TuningCurve", "EdgeDetector", "tuning_curve", "find_edge_detectors", "layer_responses"]


@dataclass
class TuningCurve:
    """Responses of one channel to stimuli at ``angles``: ``responses`` (A,) averaged over the stimuli that
    share an angle (phases, curvatures), ``raw`` (A, G) before averaging."""

    node: str
    angles: torch.Tensor  # (A,) degrees
    responses: torch.Tensor  # (A,)
    raw: torch.Tensor = field(repr=False)  # (A, G)

    @property
    def peak(self) -> float:
        """The angle with the largest response, in degrees."""
        return float(self.angles[int(self.responses.argmax())])

    def plot(self, ax=None, path: str | None = None):
        """Response vs angle (``featviz.viz.plot_tuning_curve``); saves a PNG when ``path`` is given."""
        from featviz.viz import plot_tuning_curve

        return plot_tuning_curve(self, ax=ax, path=path)


def layer_responses(hm: HookedModel, layer: str, images: torch.Tensor, position: str = "center",
                    preprocess: Callable | bool | None = None, batch_size: int = 64) -> torch.Tensor:
    """Every channel's response to each image, (N, C): the central unit (``position="center"``), the
    spatial mean (``"mean"``) or the spatial max (``"max"``) of the layer's map."""
    if position not in ("center", "mean", "max"):
        raise ValueError(f"position must be 'center', 'mean' or 'max', got {position!r}")
    prep = preprocess_fn(hm, preprocess)
    out = []
    with torch.no_grad():
        for k in range(0, len(images), batch_size):
            _, cache = hm.run_with_cache(prep(images[k:k + batch_size]), names=[layer], stop_at_last=True)
            a = cache[layer]  # (b, C, H, W)
            if position == "center":
                out.append(a[:, :, a.shape[-2] // 2, a.shape[-1] // 2])
            else:
                out.append(a.mean((-2, -1)) if position == "mean" else a.amax((-2, -1)))
    return torch.cat(out)


def _angles(n_images: int, angles: Sequence[float] | None, what: str) -> torch.Tensor:
    if angles is None:  # as made by fv.data.gratings(range(0, 180, step)): evenly over 180 degrees
        return torch.arange(n_images, dtype=torch.float32) * (180.0 / n_images)
    a = torch.tensor([float(v) for v in angles])
    if len(a) == 0 or n_images % len(a):
        raise ValueError(f"{what}: {n_images} stimuli do not split into {len(a)} angles; give one angle per "
                         "stimulus, or per group of equal size in angle-major order (e.g. phases)")
    return a


def tuning_curve(model: nn.Module, node: str, stimuli: torch.Tensor, angles: Sequence[float] | None = None, *,
                 position: str = "center", preprocess: Callable | bool | None = None) -> TuningCurve:
    """Response of channel ``node`` (``"layer:channel"``) to each stimulus, as a function of angle.

    ``stimuli``: (N, 3, H, W) images in [0, 1] (``preprocess`` applied as in the model), e.g.
    ``fv.data.gratings(angles, phases=[0, 90, 180, 270])``. ``angles``: one per stimulus, or one per
    group of N / len(angles) consecutive stimuli (angle-major, as ``gratings`` with phases and ``curves``
    with curvatures are ordered) whose responses are averaged. Default: N angles evenly over [0, 180).
    ``position``: which response of the map counts ("center" unit, spatial "mean" or "max").

    Example:
        >>> tc = tuning_curve(model, "stem.relu:3", fv.data.gratings(range(0, 180, 15)))  # doctest: +SKIP
        >>> tc.angles.shape, tc.peak                                                     # doctest: +SKIP
        (torch.Size([12]), 45.0)
    """
    hm = as_hooked(model)
    layer, channels = resolve_ref(hm, node)
    if not channels or len(channels) != 1:
        raise ValueError(f"node must be 'layer:channel' with one channel, got {node!r}")
    images = check_images(stimuli, "stimuli")
    a = _angles(len(images), angles, "tuning_curve")
    resp = layer_responses(hm, layer, images, position, preprocess)  # (N, C)
    (c,) = check_channels(hm, layer, channels, resp.shape[1])
    raw = resp[:, c].reshape(len(a), -1).cpu()  # (A, G)
    return TuningCurve(f"{layer}:{c}", a, raw.mean(1), raw)


@dataclass
class EdgeDetector:
    """A channel with single-peaked orientation tuning: preferred grating ``angle`` (degrees in [0, 180),
    the wave direction: the edge's gradient), orientation selectivity ``osi``, ``peak_trough`` ratio, and
    the grating frequency ``freq`` (cycles/px) they were measured at."""

    node: str
    angle: float
    osi: float
    peak_trough: float
    freq: float
    curve: TuningCurve = field(repr=False)


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


def find_edge_detectors(model: nn.Module, layer: str, *, min_osi: float = 0.2, min_peak_trough: float = 3.0,
                        min_response: float = 0.1, step: float = 10.0, size: int = 64,
                        freqs: Sequence[float] = (0.0625, 0.125, 0.25),
                        preprocess: Callable | bool | None = None) -> list[EdgeDetector]:
    """Channels of ``layer`` that behave like oriented edge detectors, strongest selectivity first.

    Criterion, over gratings (``size`` px) at angles 0, ``step``, ... < 180 with eight phases (0, 45, ...,
    315) averaged, response = the central unit; a channel qualifies if at one of the spatial
    frequencies ``freqs`` (cycles/px; the most selective one is reported) its curve is:
      * single-peaked: the curve (circular over 180 degrees) has exactly one run above half its height;
      * selective: orientation selectivity ``osi = |sum r e^{2i theta}| / sum r >= min_osi``
        (1 - circular variance; 0 = untuned, 1 = one angle only);
      * peak/trough ratio of the rectified curve ``>= min_peak_trough``;
      * responsive: peak ``>= min_response`` times the largest peak in the layer (same frequency).

    Example:
        >>> found = find_edge_detectors(model, "stem.relu")      # doctest: +SKIP
        >>> found[0].node, round(found[0].angle)                 # doctest: +SKIP
        ('stem.relu:5', 90)
    """
    from featviz.data import gratings

    hm = as_hooked(model)
    name, channels = split_ref(layer)
    hm.module(name)
    if channels is not None:
        raise ValueError(f"layer must be a layer name without a channel, got {layer!r}")
    angles = torch.arange(0.0, 180.0, step)
    stimuli = [gratings(angles.tolist(), size=size, freq=f, phases=list(range(0, 360, 45))) for f in freqs]
    resp = torch.stack([layer_responses(hm, name, s, "center", preprocess).cpu().reshape(len(angles), 8, -1)
                        for s in stimuli])  # (F, A, 8, C)
    curves = resp.mean(2)  # (F, A, C)
    found = []
    for c in range(curves.shape[-1]):
        passing = []
        for f in range(len(freqs)):
            r = curves[f, :, c]
            osi, angle, ratio, peaks = orientation_stats(r, angles)
            strong = float(r.max()) >= min_response * float(curves[f].amax())
            if peaks == 1 and osi >= min_osi and ratio >= min_peak_trough and strong:
                passing.append((osi, angle, ratio, f))
        if passing:
            osi, angle, ratio, f = max(passing)
            curve = TuningCurve(f"{name}:{c}", angles, curves[f, :, c], resp[f, :, :, c])
            found.append(EdgeDetector(f"{name}:{c}", angle, osi, ratio, float(freqs[f]), curve))
    return sorted(found, key=lambda e: -e.osi)
