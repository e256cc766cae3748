"""The microscope's cost estimate: (model, Plan) -> calibrated CPU seconds per layer and part; no rendering.

A build's time is passes of the model. ``estimate`` times the few kinds of pass on this machine (one torch
thread, ``time.process_time``: CPU seconds, so a loaded machine does not change them) and multiplies them by
the number of each kind that ``compute`` runs for the plan's *missing* parts (cached units cost nothing).

Calibrated here, per layer ``L`` (``Calibration``):
    step(L)   one step of ``fv.render`` of a channel of ``L`` at the render size (parameterisation,
              transforms, forward, backward, update): (a render of 1 + k steps - one of 1 step) / k
    fb(L)     forward + backward of one image at the render size up to ``L`` (median of a few reps)
    f(L)      forward of one image at the model's input size up to ``L`` (one batched pass, read at layers)
    figure    one page figure as SVG (matplotlib); tile: one dataset-example JPEG tile

The count model (S render size, I input size, T steps, D diversity, k examples, N photos, P evidence
photos, R random sets, A tuning angles), per channel of ``L``:
    fv          T step(L)                                   (one render; a dead unit's retry not counted;
                every step: with ``early_stop`` an upper bound, a render stopping at 35-95 % of T on Lite0)
    diversity   T step_D(L) + D f(L) (S/I)^2                (the batch, then its activations measured;
                step_D: one step of a render of a batch of D, timed like step)
    tuning      one figure; per early layer 4 A f(L) (the gratings)
    examples    2 k tiles; per layer N f(L) (photo statistics) and N f(model) (labels), shared by layers
    evidence    P/2 fb(L) (I/S)^2 attribution + the channel's own ablated set, P/2 (f(U) + seg(L)) + 4
                figures (seg(L): one photo through the masked segment U -> L, timed as (6 masks - 2 masks)
                / 4 on 2 probe images); per layer, shared by its channels (``fv.core.reusing``): 121 f(L)
                (S'/I)^2 edge stimuli, the family test P (f(U) + (R + 2) seg(L)) and the random sets of
                each set size (at most 3) P/2 (f(U) + R seg(L));
                per layer ("scans") 2 (1 + 5 (26 r + 60)) f(L) (S'/I)^2 curve stimuli, model and randomized
                (r radii, at most 4; S' the scan size from the layer's receptive field)
    partners    2 k tiles each (their dataset examples; no render), or T step(L) each with
                ``partner_renders``: the partners the plan names, and at most ``top_k`` per built channel of
                each neighbouring layer (connections decide which; an upper bound)
Not counted: connections (expanded weights; about 0.2 % of a whole Lite0 build), the extras, page writing,
and, inside the evidence, tuning and scan parts, the receptive-field and wiring computations and the
upstream layer's edge-family search. Measured against real builds (``bench/README.md``, "microscope --plan
estimate"): a small Lite0 build 0.79x, a toy build 1.3x; per part the renders and evidence within about
1.5x, tuning and scans about 1.7x under.

Example:
    >>> from featviz.microscope import MicroscopeSettings, plan
    >>> model = fv.models.toy.edges_and_curves()
    >>> p = plan(model, ["relu1"], "site", settings=MicroscopeSettings(size=32, steps=8), channels=2)
    >>> e = estimate(model, p)
    >>> sorted(e.parts["relu1"]), e.total > 0
    (['diversity', 'evidence', 'examples', 'fv', 'partners', 'scans', 'tuning'], True)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from featviz.circuits.evidence import previous_layer
from featviz.core import evaluating, probe_input
from featviz.hooks import hooked
from featviz.microscope._plan import Plan

__all__ = ["Estimate", "Calibration", "calibrate", "estimate"]

PARTS = ("fv", "diversity", "tuning", "examples", "evidence", "scans", "partners")
"""The parts of an estimate, in the order they are shown."""
EDGE_STIMULI = 121  # evidence's step-edge tuning: 24 directions x (centre + 4 shifts) + a grey image
_REPS = 3


@dataclass
class Calibration:
    """CPU seconds of the kinds of pass a build runs, measured on this machine (one torch thread).

    Attributes:
        step: ``{layer: s}`` one step of ``fv.render`` of one image at ``size`` px; ``step_batch`` of
            ``batch`` images (the diversity batch; empty when ``batch`` < 2).
        fb: ``{layer: s}`` forward + backward of one image at ``size`` px up to the layer.
        f: ``{layer: s}`` forward of one image at ``input_size`` px up to the layer; ``f_model``: the whole
            model. figure: one page figure as SVG. tile: one dataset-example tile (crop, JPEG).
        scan_size: ``{layer: px}`` the curve scan's stimulus size (from the receptive field).
        segment: ``{layer: s}`` one photo at ``input_size`` through the masked segment from its upstream
            layer to the layer (the evidence's ablations), for the layers ``calibrate`` got upstreams of.
    """

    size: int
    input_size: int
    fb: dict[str, float]
    step: dict[str, float]
    step_batch: dict[str, float]
    batch: int
    f: dict[str, float]
    f_model: float
    figure: float
    tile: float
    scan_size: dict[str, int] = field(default_factory=dict)
    segment: dict[str, float] = field(default_factory=dict)


@dataclass
class Estimate:
    """Estimated CPU seconds (one thread) of the missing work of a plan, by layer and part.

    ``parts[layer][part]`` (parts: ``PARTS``), ``partners[layer]`` how many partner channels were counted
    (an upper bound), ``calibration`` the measured passes it is made from. ``str()`` is a table.
    """

    parts: dict[str, dict[str, float]]
    channels: dict[str, int]
    partners: dict[str, int]
    calibration: Calibration

    @property
    def layers(self) -> dict[str, float]:
        """``{layer: CPU seconds}``."""
        return {n: sum(p.values()) for n, p in self.parts.items()}

    @property
    def total(self) -> float:
        """CPU seconds of the whole build (one thread)."""
        return sum(self.layers.values())

    def __str__(self) -> str:
        head = (f"{'layer':>22} {'todo':>5} {'partners':>8} " + " ".join(f"{p:>9}" for p in PARTS)
                + f" {'total':>9}")
        rows = [head]
        for n, parts in self.parts.items():
            cells = " ".join(f"{_dur(parts[p]):>9}" for p in PARTS)
            rows.append(f"{n:>22} {self.channels[n]:>5} {self.partners[n]:>8} {cells} "
                        f"{_dur(sum(parts.values())):>9}")
        rows.append(f"estimated CPU time: {_dur(self.total)} on one thread ({self.total / 3600:.2f} "
                    "CPU-hours; wall time is about this divided by the cores or workers used)")
        return "\n".join(rows)


def _dur(s: float) -> str:
    return f"{s:.1f} s" if s < 60 else f"{s / 60:.1f} min" if s < 3600 else f"{s / 3600:.2f} h"


def calibrate(model: nn.Module, layers: list[str], size: int, input_size: int,
              reps: int = _REPS, upstream: dict[str, str] | None = None, batch: int = 1) -> Calibration:
    """Time the passes ``estimate`` counts, for ``layers`` of ``model`` at render ``size`` and ``input_size``
    (one torch thread; CPU seconds of this process). A second or two per layer on a laptop for Lite0.
    ``upstream``: ``{layer: the layer its evidence ablates}``, whose forward time ``f`` and masked segment
    are timed too; ``batch``:
    the diversity batch, whose render step is timed too (batching makes it cheaper than ``batch`` steps).

    Example:
        >>> c = calibrate(fv.models.toy.edges_and_curves(), ["relu1"], 32, 64, reps=1)
        >>> c.step["relu1"] > 0 and c.fb["relu1"] > 0 and c.f["relu1"] > 0
        True
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with evaluating(model, freeze_grads=True):
            hm = hooked(model)
            fb = {n: _fb_seconds(hm, n, size, reps) for n in layers}
            step = {n: _step_seconds(model, n, size, reps + 1) for n in layers}
            step_batch = ({n: _step_seconds(model, n, size, 2, batch) for n in layers} if batch > 1 else {})
            upstream = upstream or {}
            names = [n for n in hm.hook_names if n in set(layers) | set(upstream.values())]
            f, f_model = _forward_seconds(hm, names, input_size)
            segment = {n: _segment_seconds(hm, u, n, input_size) for n, u in upstream.items()}
            scan = {n: _scan_size(hm, n, input_size) for n in layers}
        figure, tile = _figure_seconds(), _tile_seconds(input_size)
    finally:
        torch.set_num_threads(threads)
    return Calibration(size, input_size, fb, step, step_batch, batch, f, f_model, figure, tile, scan,
                       segment)


def _fb_seconds(hm, layer: str, size: int, reps: int) -> float:
    """Median CPU seconds of forward + backward of one image at ``size`` px up to ``layer``."""
    times = []
    for i in range(reps + 1):  # the first run warms up (allocator, kernels) and is not counted
        x = probe_input(hm.model, size=size).requires_grad_(True)
        start = time.process_time()
        _, cache = hm.run_with_cache(x, names=[layer], stop_at_last=True, detach=False)
        cache[layer].float().square().mean().backward()
        if i:
            times.append(time.process_time() - start)
    return sorted(times)[len(times) // 2]


def _step_seconds(model: nn.Module, layer: str, size: int, k: int, batch: int = 1) -> float:
    """CPU seconds of one step of ``fv.render`` of channel 0 of ``layer`` at ``size`` px, ``batch`` images:
    a render of ``1 + k`` steps minus one of 1 step (its set-up), over ``k``."""
    from featviz.optvis import render

    def seconds(steps: int) -> float:
        start = time.process_time()
        render(model, f"{layer}:0", size=size, steps=steps, batch=batch, progress=False)
        return time.process_time() - start

    seconds(1)  # warm-up
    return max(seconds(1 + k) - seconds(1), 0.0) / k


def _segment_seconds(hm, up: str, layer: str, size: int, n: int = 2) -> float:
    """CPU seconds of one photo (of ``n`` probe images at ``size`` px) through the segment ``up`` -> ``layer``
    with one mask of ``up``'s channels, as the ablation tests run it: (6 masks - 2 masks) / (4 n)."""
    from featviz.circuits.ablation import segment_responses  # the segment the ablation tests run

    x = probe_input(hm.model, size=size, batch=n)
    c = hm.n_channels(up)

    def seconds(masks: int) -> float:
        start = time.process_time()
        segment_responses(hm, [x], lambda v: v, up, layer, torch.zeros(masks, c, dtype=torch.bool))
        return time.process_time() - start

    seconds(2)  # warm-up
    return max(seconds(6) - seconds(2), 0.0) / (4 * n)


def _forward_seconds(hm, layers: list[str], size: int, batch: int = 4) -> tuple[dict[str, float], float]:
    """Per image: CPU seconds of a forward pass at ``size`` px up to each layer (read by hooks in one
    batched pass), and of the whole model."""
    x = probe_input(hm.model, size=size).repeat(batch, 1, 1, 1)
    with torch.no_grad():
        hm.model(x)  # warm-up
        seen: dict[str, float] = {}

        def at(name: str):
            def hook(module, inputs, output):
                seen.setdefault(name, time.process_time())
            return hook

        start = time.process_time()
        with hm.hooks([(n, at(n)) for n in layers]):
            hm.model(x)
        end = time.process_time()
    return {n: (seen.get(n, end) - start) / batch for n in layers}, (end - start) / batch


def _scan_size(hm, layer: str, input_size: int) -> int:
    """The curve scan's stimulus size for ``layer`` (``curve_scan``'s default geometry)."""
    from featviz.circuits.curves import _default_geometry
    from featviz.circuits.receptive_field import receptive_field

    try:
        return int(_default_geometry(receptive_field(hm, layer, size=input_size), None, input_size)[0])
    except (ValueError, RuntimeError):
        return input_size


def _figure_seconds() -> float:
    """CPU seconds of one page figure (two curves, a legend) drawn as SVG."""
    import matplotlib.pyplot as plt

    from featviz.microscope._channel import FIGURE_IN, svg_bytes

    start = time.process_time()
    fig, ax = plt.subplots(figsize=FIGURE_IN, layout="constrained")
    ax.plot(range(24), range(24), "k-", label="a")
    ax.plot(range(24), range(24, 0, -1), "-", label="b")
    ax.legend()
    ax.set_title("t")
    svg_bytes(fig)
    return time.process_time() - start


def _tile_seconds(size: int) -> float:
    """CPU seconds of one dataset-example tile (crop around a box, JPEG)."""
    from featviz.microscope._channel import jpeg_bytes
    from featviz.microscope._examples import _tile

    photo = torch.rand(3, size, size)
    start = time.process_time()
    for _ in range(4):
        jpeg_bytes(_tile(photo, (size // 4, size // 2, size // 4, size // 2)))
    return (time.process_time() - start) / 4


def estimate(model: nn.Module, plan: Plan, calibration: Calibration | None = None) -> Estimate:
    """Estimated CPU seconds (one thread) of building ``plan``'s missing parts, per layer and part
    (``PARTS``); the count model is in this module's docstring. Calibrates on this machine unless a
    ``calibration`` of the same layers and sizes is given. Writes nothing.

    Example:
        >>> from featviz.microscope import MicroscopeSettings, plan
        >>> model = fv.models.toy.edges_and_curves()
        >>> p = plan(model, ["relu2"], "site", settings=MicroscopeSettings(size=32, steps=8, evidence=False),
        ...          channels=1)
        >>> e = estimate(model, p)
        >>> e.parts["relu2"]["evidence"], e.parts["relu2"]["fv"] > 0
        (0.0, True)
    """
    s, size, big = plan.settings, plan.settings.size, plan.size
    hm = hooked(model)
    ups = {n: plan.upstream[n] or previous_layer(hm, n) for n in plan.layers
           if any("evidence" in m for (layer, _), m in plan.missing.items() if layer == n)}
    c = calibration or calibrate(model, plan.layers, size, big, upstream={n: u for n, u in ups.items() if u},
                                 batch=s.diversity if any("diversity" in m for m in plan.missing.values())
                                 else 1)
    px = (size / big) ** 2  # forward cost scales with the pixels
    parts: dict[str, dict[str, float]] = {}
    todo: dict[str, int] = {}
    partners = _partner_counts(plan)
    n_photos, P, R = len(plan.photos), s.evidence_photos, s.evidence_random
    P = min(P, n_photos)
    stats_layers = {n for (n, _), m in plan.missing.items() if "examples" in m}
    for n in plan.layers:
        fb, step, f = c.fb[n], c.step[n], c.f[n]
        missing = [m for (layer, _), m in plan.missing.items() if layer == n]
        todo[n] = len(missing)
        count = {q: sum(q in m for m in missing) for q in PARTS[:5]}  # channels missing each part
        scan_px = (c.scan_size.get(n, big) / big) ** 2
        r = 4  # curve_scan's radii: at most 4 distinct
        est = {
            "fv": count["fv"] * s.steps * step,
            "diversity": count["diversity"] * (s.steps * _batch_step(c, n, s.diversity)
                                               + s.diversity * f * px),
            "tuning": count["tuning"] * c.figure + (4 * len(s.tuning_angles) * f if count["tuning"] else 0.0),
            "examples": count["examples"] * 2 * s.examples * c.tile
            + (n_photos * f if n in stats_layers and not _cached(plan, "acts", n) else 0.0),
            "evidence": count["evidence"] * (P / 2 * fb / px + _ablations(c, n, ups.get(n), P, R)
                                             + 4 * c.figure)
            + (EDGE_STIMULI * f * scan_px + _layer_ablations(c, n, ups.get(n), P, R, count["evidence"])
               if count["evidence"] else 0.0),
            "scans": (2 * (1 + 5 * (26 * r + 60)) * f * scan_px
                      if count["evidence"] and not _cached(plan, "evidence", n) else 0.0),
            "partners": partners[n] * (s.steps * step if s.partner_renders else 2 * s.examples * c.tile),
        }
        parts[n] = est
    first = next((n for n in plan.layers if n in stats_layers), None)
    if first is not None:  # each photo is labelled once by the whole model (dataset examples' labels)
        parts[first]["examples"] += n_photos * c.f_model
    return Estimate(parts, todo, partners, c)


def _batch_step(c: Calibration, layer: str, batch: int) -> float:
    """One render step of ``batch`` images: timed when the calibration has that batch, else ``batch`` steps
    of one image (an upper bound)."""
    return c.step_batch[layer] if c.batch == batch and layer in c.step_batch else batch * c.step[layer]


def _ablations(c: Calibration, layer: str, up: str | None, photos: int, n_random: int) -> float:
    """CPU seconds of what a channel of ``layer`` adds to the evidence's ablations (ablating ``up``): its own
    set of top inputs on half the photos, the upstream layer once and one masked segment pass (the rest is
    shared by the layer: ``_layer_ablations``)."""
    if up is None:
        return 0.0
    f_up = c.f.get(up, 0.0)
    seg = c.segment.get(layer, max(c.f[layer] - f_up, 0.0))
    return photos / 2 * (f_up + seg)


def _layer_ablations(c: Calibration, layer: str, up: str | None, photos: int, n_random: int,
                     channels: int) -> float:
    """CPU seconds of the ablations a layer's channels share (``fv.core.reusing``): the family test on all
    the photos (the upstream layer once, ``n_random + 2`` masked segment passes) and, per size of a
    channel's set of top inputs (1 to 3; at most one size per channel), its random sets on half the
    photos."""
    if up is None:
        return 0.0
    f_up = c.f.get(up, 0.0)
    seg = c.segment.get(layer, max(c.f[layer] - f_up, 0.0))
    return photos * (f_up + (n_random + 2) * seg) + min(channels, 3) * photos / 2 * (f_up + n_random * seg)


def _cached(plan: Plan, kind: str, layer: str) -> bool:
    """Whether the cache file of ``kind`` ("acts": photo statistics, "evidence": curve scans) of ``layer``
    is on disk already."""
    from featviz.microscope._evidence import scan_path
    from featviz.microscope._examples import stats_path
    from featviz.microscope._plan import CACHE

    cache = Path(plan.out) / CACHE / kind
    path = (stats_path(cache, layer, plan.photos, plan.weights) if kind == "acts"
            else scan_path(cache, layer, plan.weights))
    return path.is_file()


def _partner_counts(plan: Plan) -> dict[str, int]:
    """Per layer, the partner channels counted: those the plan names, plus at most ``top_k`` per built
    channel still to build of each neighbouring layer (capped by the channels not built), an upper bound of
    what the connections add."""
    out = {n: len(set(plan.partners.get(n, [])) - set(plan.channels[n])) for n in plan.layers}
    todo = {n: sum(layer == n for layer, _ in plan.missing) for n in plan.layers}  # (a cached unit's
    k = plan.settings.top_k                                                         # partners exist)
    for a, b in plan.pairs:
        for here, there in ((a, b), (b, a)):
            free = plan.shapes[here][1] - len(plan.channels[here]) - out[here]
            out[here] += max(0, min(free, k * todo[there]))
    return out
