"""Evidence for one unit: (model, "layer:channel", images) -> every line of evidence, each with its control.

Following Distill's "Curve Detectors", a claim about what a channel detects rests on several
independent lines of evidence; each one here is computed and carries its control:

=====================  ==================================================  ==================================
line                   measured                                            control
=====================  ==================================================  ==================================
feature visualization  ``fv.render`` of the channel; its activation         a render that stays at ~0
                       vs the best photo's                                  is flagged dead, never shown
dataset examples       top and bottom photos by the channel's spatial max   the bottom examples
synthetic tuning       curve battery and step edges at the receptive-field  the same stimuli moved a few
                       centre (``curve_scan``, ``tuning_curve``)            px (drift); rings, discs, lines
selectivity            the channel's arc-over-line ratio, ranked in its     the same ratio over every channel
                       layer                                                of ``randomized(model)``
upstream circuit       grad x act attribution from the layer before on      signs kept: excitation and
                       half the photos: strongest excitatory/inhibitory     inhibition reported apart
which inputs matter    zeroing those top excitatory channels, measured on   a description (effect, bootstrap
                       the *other* half of the photos                       interval), never a verdict
family test            zeroing a family of the layer before found on        random sets of the same size from
                       stimuli (default: its edge detectors), all photos    the whole layer, p = (k+1)/(n+1);
                       (``ablation_test`` with a ``hypothesis``)            none where wiring fixes the result
=====================  ==================================================  ==================================

``Evidence.verdict`` is a list of sentences, each generated from those numbers. Only the family test can
say "than chance": its set is fixed before the photos are looked at, so on randomly initialised nets it says
so at the nominal rate (tests/circuits/test_ablation.py); a set chosen by attribution would say so for
almost any unit.

Example:
    >>> ev = evidence(fv.models.toy.edges_and_curves(), "relu2:1", render=False, n_random=5)
    >>> ev.verdict[-3].startswith("Upstream (relu1")
    True
    >>> fig = ev.plot(path="relu2-1.png")
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import nn

from featviz.circuits.ablation import AblationTest, ablation_test
from featviz.circuits.attribution import attribute
from featviz.circuits.curves import CurveCriteria, CurveScan, curve_scan, find_curve_detectors
from featviz.circuits.receptive_field import ReceptiveField, receptive_field
from featviz.circuits.trace import upstream_layers
from featviz.circuits.tuning import (
    TuningCurve,
    direction_selectivity,
    find_edge_detectors,
    layer_responses,
    tuning_curve,
)
from featviz.core import as_images, input_size_of, preprocess_fn, remembered, tensor_key
from featviz.data import sample_images
from featviz.errors import BadType, BadValue
from featviz.hooks import hooked
from featviz.models import randomized
from featviz.optvis.render import render as fv_render
from featviz.optvis.settings import RenderSettings

if TYPE_CHECKING:
    from featviz.optvis.rendering import Rendering

__all__ = ["Evidence", "evidence", "named_family", "previous_layer"]


@dataclass
class Evidence:
    """Every line of evidence for one unit (see the module docstring). ``to_dict()`` gives the numbers,
    ``verdict`` the sentences, ``plot()`` one figure."""

    node: str
    rf: ReceptiveField
    render_image: torch.Tensor | None = field(repr=False)  # (3, H, W) or None
    render_activation: float
    render_dead: bool
    photo_activation: float
    top: list[tuple[int, float]]  # (image index, spatial max), strongest first
    bottom: list[tuple[int, float]]
    curve: dict[str, float]  # CurveScan.stats of the channel, + "passes"
    curve_rank: int  # 1 = the highest arc-over-line ratio in its layer
    n_channels: int
    random_exceeding: float  # the fraction of randomized-net channels with a higher arc-over-line ratio
    edge: TuningCurve = field(repr=False)
    edge_selectivity: float
    upstream: str | None
    excitatory: list[tuple[int, float]]
    inhibitory: list[tuple[int, float]]
    ablation: AblationTest | None = field(repr=False)  # the top excitatory inputs: descriptive
    images: torch.Tensor = field(repr=False)
    names: list[str] = field(default_factory=list, repr=False)
    verdict: list[str] = field(default_factory=list)
    arc_curve: TuningCurve | None = field(default=None, repr=False)  # arc directions, centre + shifted
    family_test: AblationTest | None = field(default=None, repr=False)  # a family found on stimuli vs chance
    family: str | None = None  # which family was tested, or why none was
    selected_on: int = 0  # photos the upstream inputs were chosen on (the others measure their ablation)
    scale: float = float("nan")  # the layer's response scale to the curve battery (CurveScan.scale) ...
    random_scale: float = float("nan")  # ... and the randomized copy's, reported beside the comparison

    @property
    def shift(self) -> float:
        """How far (px) the stimuli were moved for the position sweep."""
        sh = self.arc_curve.shifts if self.arc_curve is not None else []
        return abs(sh[0][0]) if sh else 0.0

    def to_dict(self) -> dict:
        """JSON-ready numbers of every line of evidence."""
        return {
            "node": self.node,
            "receptive_field": {"center": list(self.rf.center), "size": list(self.rf.size),
                                "position": list(self.rf.position), "input_size": list(self.rf.input_size)},
            "feature_visualization": {"activation": None if self.render_image is None
                                      else self.render_activation, "dead": self.render_dead,
                                      "best_photo_activation": self.photo_activation},
            "dataset_examples": {"top": [[self.names[i] if self.names else i, v] for i, v in self.top],
                                 "bottom": [[self.names[i] if self.names else i, v] for i, v in self.bottom]},
            "curve_tests": dict(self.curve),
            "selectivity": {"rank": self.curve_rank, "of": self.n_channels,
                            "randomized_exceeding": self.random_exceeding, "scale": self.scale,
                            "randomized_scale": self.random_scale},
            "step_edges": {"direction": self.edge.preferred, "selectivity": self.edge_selectivity,
                           "drift": self.edge.drift},
            "upstream": {"layer": self.upstream, "excitatory": self.excitatory,
                         "inhibitory": self.inhibitory, "selected_on": self.selected_on},
            "ablation": None if self.ablation is None else self.ablation.to_dict(),
            "family_test": None if self.family_test is None else self.family_test.to_dict(),
            "family": self.family,
            "verdict": list(self.verdict),
        }

    def summary(self) -> str:
        """The verdict: one sentence per line of evidence, each with its control."""
        return "\n".join(self.verdict)

    def plot(self, path: str | None = None):
        """One figure of every line of evidence (``featviz.viz.plot_evidence``); PNG with ``path``."""
        from featviz.viz.evidence_plot import plot_evidence

        return plot_evidence(self, path)

    def _repr_png_(self) -> bytes:
        from featviz.viz.figures import figure_png

        return figure_png(self.plot())


def previous_layer(hm, layer: str) -> str | None:
    """The last of ``model.interesting_layers`` that runs before ``layer`` (its own parents excluded: a
    container runs after its children), else the previous conv unit."""
    names = hm.hook_names
    listed = [n for n in (getattr(hm.model, "interesting_layers", None) or []) if n in names]
    here = names.index(layer)
    before = [n for n in listed if names.index(n) < here and not layer.startswith(n + ".") and n != layer]
    if before:
        return before[-1]
    try:
        chain = upstream_layers(hm, layer)
    except (ValueError, KeyError, RuntimeError):
        return None
    return chain[-2] if len(chain) >= 2 else None


def evidence(model: nn.Module, node: str, images: torch.Tensor | None = None, *, upstream: str | None = None,
             scan: CurveScan | None = None, random_scan: CurveScan | None = None,
             render: bool | RenderSettings = True, rendering: Rendering | None = None, n_random: int = 199,
             top_k: int = 3, seed: int = 0, progress: bool = True,
             hypothesis: str | Sequence[int] | tuple[str, Sequence[int]] | None = "edges",
             **deprecated: int | None) -> Evidence:
    """Collect every line of evidence for ``node`` (``"layer:channel"``), each with its control.

    Args:
        model: any ``nn.Module`` (or ``fv.hooked`` model).
        node: the unit, ``"layer:channel"`` (one channel).
        images: photos (N, 3, H, W) in [0, 1] for dataset examples, attribution and ablation; default
            the bundled sample photos at the model's input size.
        upstream: the layer whose channels are credited and ablated; default the last of
            ``model.interesting_layers`` that runs before ``node``'s layer, else the previous conv unit.
        scan: a ``curve_scan`` result of ``node``'s layer in the model, to reuse (computed when not
            given).
        random_scan: the same scan in ``fv.models.randomized(model, seed)``, the control (computed when
            not given).
        render: render the unit's feature visualization (``True``: ``fv.render`` at the model's input size,
            at most 128 px, 128 steps, seeded by ``seed``; a ``fv.optvis.RenderSettings``: with those
            settings); ``False`` skips it (faster).
        n_random: how many random sets of upstream channels the ablations are compared with (199: p can
            go down to 0.005).
        top_k: how many of the strongest excitatory and of the strongest inhibitory upstream channels
            to list (dataset examples: the 5 highest and lowest images).
        seed: seeds the randomized model, the random ablation sets and the rendering.
        progress: a tqdm progress bar for the rendering (the default, as every loop a person waits for).
        rendering: an ``fv.render`` result of ``node`` made before (e.g. by the microscope) whose first
            image, activation and ``dead`` flag are used instead of rendering again.
        hypothesis: the family of the upstream layer tested against random sets of the whole layer on
            all photos: "edges" (``find_edge_detectors``, the default), "curves" (``find_curve_detectors``),
            a list of channels (a set you name), ``(name, channels)``, or None (no test).
        deprecated: the old ``render_size=`` / ``render_steps=`` keywords, read into ``render``'s settings
            with a ``DeprecationWarning``.

    Returns:
        An ``Evidence``: each line of evidence with its control and a generated ``verdict``.

    The photos are split in two (even and odd indices): the top ``top_k`` upstream inputs by attribution are
    chosen on one half and their ablation is measured on the other (a description: effect and bootstrap
    interval, never a verdict). Only the family test, whose set is fixed before the photos are seen, is
    compared with chance.

    Example:
        >>> ev = evidence(fv.models.toy.edges_and_curves(), "relu2:1", render=False, n_random=5)
        >>> ev.upstream, ev.excitatory[0][0] in (1, 2, 3), len(ev.verdict) >= 4
        ('relu1', True, True)
    """
    hm = hooked(model)
    layer = hm.ref(node).key
    size = int(input_size_of(hm, 224))
    if images is None:
        images, names = sample_images(size=size)
    else:
        images, names = as_images(images, "images", channels=None, unit=False), []
    scores, means_all = _max_and_mean(hm, layer, images)  # (N, C) each, one pass over the photos
    n_ch = scores.shape[1]
    _, c = hm.unit(node, n_channels=n_ch)  # one channel, non-negative, within the layer's width
    node = f"{layer}:{c}"
    rf = receptive_field(hm, node, size=size)

    # feature visualization vs the best photo (the objective: the channel's spatial mean)
    means = means_all[:, c]
    photo_act = float(means.max())
    render_image, render_act, dead = None, float("nan"), False
    if rendering is not None:
        render_image, render_act = rendering.images[0].detach().cpu(), float(rendering.activations[0])
        dead = bool(rendering.dead[0]) if getattr(rendering, "dead", None) is not None else False
    elif render is not False:
        r = fv_render(hm, node, settings=_render_settings(render, deprecated, size, seed), progress=progress)
        render_image, render_act = r.images[0], float(r.activations[0])
        dead = bool(r.dead[0]) if getattr(r, "dead", None) is not None else False

    order = scores[:, c].argsort(descending=True)
    k = min(5, len(order))
    top = [(int(i), float(scores[i, c])) for i in order[:k]]
    bottom = [(int(i), float(scores[i, c])) for i in order.flip(0)[:k]]

    # synthetic tuning at the receptive-field centre, with its position sweep and controls
    scan = scan if scan is not None else curve_scan(hm, layer)
    if random_scan is None:
        random_scan = curve_scan(randomized(hm.model, seed=seed), layer, scan.size, radii=scan.radii,
                                 shift=scan.shifts[1][0] if scan.shifts else None, width=scan.width)
    stats = scan.stats(c)
    passing = {d.channel for d in scan.detectors()}
    stats["passes"] = float(c in passing)
    ratios = scan.curve_vs_line()
    rank = int((ratios > ratios[c]).sum()) + 1
    rnd = random_scan.curve_vs_line()
    random_exceeding = float((rnd >= ratios[c]).float().mean())
    directions = list(range(0, 360, 15))
    from featviz.data import edges

    edge = tuning_curve(hm, node, partial(edges, directions, size=scan.size), directions,
                        shifts=scan.shifts[1][0] if scan.shifts else None)
    grey = layer_responses(hm, layer, torch.full((1, 3, scan.size, scan.size), 0.5), edge.rf.position)
    evoked = edge.responses - grey[0, c].cpu()
    edge.responses = evoked
    if edge.shifted is not None:
        edge.shifted = edge.shifted - grey[0, c].cpu()
    edge_sel, _ = direction_selectivity(evoked, edge.angles)

    # upstream circuit with signs (chosen on half the photos), its ablation on the other half (a description),
    # and a family found on stimuli tested against random sets of the whole layer
    up = upstream if upstream is not None else previous_layer(hm, layer)
    excit, inhib, abl, fam_test, fam_text = [], [], None, None, None
    pick, held = (images[0::2], images[1::2]) if len(images) >= 2 else (images, images)
    if up is not None:
        contrib = attribute(hm, up, layer, pick, dst_channels=[c])[0].cpu()  # (C_src,)
        pos = contrib.argsort(descending=True)
        excit = [(int(j), float(contrib[j])) for j in pos[:top_k] if contrib[j] > 0]
        inhib = [(int(j), float(contrib[j])) for j in pos.flip(0)[:top_k] if contrib[j] < 0]
        if excit and len(contrib) > len(excit) and len(images) >= 2:
            src = f"{up}:" + ",".join(str(j) for j, _ in excit)
            try:
                abl = ablation_test(hm, src, node, held, n_random=n_random, seed=seed, descriptive=True,
                                    selected_on=len(pick),
                                    hypothesis=f"its top {len(excit)} excitatory inputs by attribution")
            except ValueError:
                abl = None
        fam_test, fam_text = _family_test(hm, up, node, images, hypothesis, n_random, seed)

    ev = Evidence(node, rf, render_image, render_act, dead, photo_act, top, bottom, stats, rank, n_ch,
                  random_exceeding, edge, edge_sel, up, excit, inhib, abl, images, list(names))
    ev.family_test, ev.family, ev.selected_on = fam_test, fam_text, (len(pick) if up is not None else 0)
    ev.scale, ev.random_scale = scan.scale, random_scan.scale
    ev.arc_curve = scan.direction_curve(c)
    ev.verdict = _verdict(ev)
    return ev


def _render_settings(render: bool | RenderSettings, old: dict, input_size: int, seed: int) -> RenderSettings:
    """evidence's rendering settings: ``render`` (``True``: at most 128 px, 128 steps, ``seed``) with the
    deprecated ``render_size`` / ``render_steps`` keywords applied."""
    unknown = set(old) - {"render_size", "render_steps"}
    if unknown:
        raise BadType(f"evidence() got unexpected keyword arguments {sorted(unknown)}")
    if old:
        warnings.warn("evidence(render_size=, render_steps=) is deprecated: pass render=fv.optvis."
                      "RenderSettings(size=..., steps=...)", DeprecationWarning, stacklevel=3)
    base = render if isinstance(render, RenderSettings) else \
        RenderSettings(size=min(input_size, 128), steps=128, seed=seed)
    return RenderSettings.resolve(None, base, size=old.get("render_size"), steps=old.get("render_steps"))


def named_family(model: nn.Module, layer: str, kind: str = "edges") -> tuple[str, list[int]]:
    """A family of ``layer`` found on synthetic stimuli (never on photos), as ``(name, channels)``:
    "edges" (``find_edge_detectors``) or "curves" (``find_curve_detectors``), with the finder's defaults.

    Example:
        >>> named_family(fv.models.toy.edges_and_curves(), "relu1")[1]
        [0, 1, 2, 3, 4, 5, 6, 7]
    """
    if kind == "edges":
        size = int(input_size_of(model, 64))
        found = find_edge_detectors(model, layer, size=min(64, size))
        chans = sorted(int(e.node.rsplit(":", 1)[1]) for e in found)
        return (f"the {len(chans)} edge detectors of {layer} (find_edge_detectors, on gratings and step "
                "edges)", chans)
    if kind == "curves":
        chans = sorted(d.channel for d in find_curve_detectors(model, layer))
        return f"the {len(chans)} curve detectors of {layer} (find_curve_detectors, on arcs and decoys)", \
            chans
    raise BadValue(f"a named family is 'edges' or 'curves', got {kind!r}")


def _family_test(hm, up: str, node: str, images: torch.Tensor, hypothesis, n_random: int, seed: int
                 ) -> tuple[AblationTest | None, str | None]:
    """The family test of ``evidence``: (test or None, the family's name or why there is no test)."""
    if hypothesis is None:
        return None, None
    if isinstance(hypothesis, str):
        name, chans = named_family(hm, up, hypothesis)
    elif isinstance(hypothesis, tuple) and len(hypothesis) == 2 and isinstance(hypothesis[0], str):
        name, chans = hypothesis[0], [int(c) for c in hypothesis[1]]
    else:
        chans = sorted({int(c) for c in hypothesis})
        name = f"{len(chans)} channels of {up} named by the user"
    with torch.no_grad():
        _, cache = hm.run_with_cache(preprocess_fn(hm)(images[:1]), names=[up], stop_at_last=True)
    n_up = int(cache[up].shape[1])
    if not chans:
        return None, f"no family test: {name} is empty"
    if len(set(c % n_up for c in chans)) >= n_up:
        return None, f"no family test: {name} is the whole layer, so every random set would be the same set"
    src = f"{up}:" + ",".join(str(c) for c in chans)
    try:
        return ablation_test(hm, src, node, images, n_random=n_random, seed=seed, hypothesis=name), name
    except ValueError as err:
        return None, f"no family test: {err}"


def _max_and_mean(hm, layer: str, images: torch.Tensor, batch_size: int = 64
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Every channel's spatial max and spatial mean on each image, (N, C) each, from one forward pass (once
    per layer and photos within ``fv.core.reusing``)."""
    return remembered("max_and_mean", hm.model, (hm.ref(layer).key, tensor_key(images), int(batch_size)),
                      lambda: _max_and_mean_pass(hm, layer, images, batch_size))


def _max_and_mean_pass(hm, layer: str, images: torch.Tensor, batch_size: int
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    maxes, means = [], []
    for _, cache in hm.stream(images, [layer], batch_size=batch_size, progress=False):
        a = cache[layer]
        maxes.append(a.amax((-2, -1)).cpu())
        means.append(a.mean((-2, -1)).cpu())
    return torch.cat(maxes), torch.cat(means)


def _verdict(ev: Evidence) -> list[str]:
    """Sentences generated from the numbers: every claim carries its control."""
    out = []
    cv = ev.curve
    r = ev.rf
    out.append(f"{ev.node} reads a {r.size[0]}x{r.size[1]} px field centred at ({r.center[0]:g}, "
               f"{r.center[1]:g}) of a {r.input_size[0]} px image ({r.offset[0]:+g}, {r.offset[1]:+g} px "
               f"from the image centre); every stimulus below is placed there.")
    if ev.render_image is not None:
        if ev.render_dead:
            out.append("Feature visualization found no response (the render stayed at ~0): not shown as a "
                       "feature.")
        else:
            cmp = "above" if ev.render_activation > ev.photo_activation else "below"
            out.append(f"Its feature visualization reaches {ev.render_activation:.2f}, {cmp} the best "
                       f"photo's {ev.photo_activation:.2f} (spatial mean).")
    label = "passes" if cv["passes"] else "fails"
    reasons = []
    tiny = cv.get("tiny", 1e-6)
    if cv["arc"] <= tiny:
        reasons.append(f"no arc at the receptive-field centre evokes a response (best {cv['arc']:.2g})")
    elif cv["curve_vs_line"] < CurveCriteria().min_curve_vs_line:
        ratio = cv["curve_vs_line"]
        reasons.append(f"its best line drives it {1 / max(ratio, 1e-6):.2f}x as hard as its best arc at some "
                       "position" if ratio < 1 else
                       f"arcs beat lines by only {ratio:.2f}x at the worst position (needs "
                       f"{CurveCriteria().min_curve_vs_line:g}x)")
    if cv["arc"] > tiny and cv["curve_vs_blob"] < 1.0:
        which = "ring" if cv["ring"] >= cv["disc"] else "disc"
        reasons.append(f"a {which} drives it harder than any arc ({cv[which]:.2f} vs {cv['arc']:.2f} at the "
                       "centre)")
    if cv["arc"] > tiny and cv["peaks"] != 1:
        reasons.append(f"its arc-direction curve has {cv['peaks']} peaks")
    if cv["arc"] > tiny and cv["drift"] > 45:
        reasons.append(f"its preferred direction moves {cv['drift']:.0f} deg when the stimulus moves "
                       f"{ev.shift:g} px")
    detail = "; ".join(reasons) if reasons else (
        f"arcs beat lines by {cv['curve_vs_line']:.2f}x and rings/discs by {cv['curve_vs_blob']:.2f}x at "
        f"every position, preferred bulge {cv['direction']:.0f} deg, drift {cv['drift']:.0f} deg")
    out.append(f"Curve tests: {label} ({detail}).")
    if cv.get("saturated"):
        pre = (f"; before the clamp arcs beat lines by {cv['pre_curve_vs_line']:.2f}x and rings/discs by "
               f"{cv['pre_curve_vs_blob']:.2f}x" if cv.get("pre_curve_vs_line") == cv.get("pre_curve_vs_line")
               else "")
        out.append(f"Saturation: its best stimulus drives it to the layer's ceiling ({cv['ceiling']:g}), so "
                   f"the ratios above are capped there{pre}.")
    scales = ("" if ev.scale != ev.scale else
              f" (response scale to the battery: {ev.scale:.3g} here, {ev.random_scale:.3g} in the copy)")
    out.append(f"Selectivity: its worst-position arc/line ratio {cv['curve_vs_line']:.2f} ranks "
               f"{ev.curve_rank} of {ev.n_channels} in its layer; {100 * ev.random_exceeding:.0f} % of the "
               f"channels of a randomly initialised copy reach it{scales}.")
    if ev.edge.preferred != ev.edge.preferred:  # NaN: no step edge raises it above uniform grey
        out.append("Step edges: none evokes a response above uniform grey at the receptive-field centre.")
    else:
        out.append(f"Step edges: direction selectivity {ev.edge_selectivity:.2f}, preferred "
                   f"{ev.edge.preferred:.0f} deg, drift {ev.edge.drift:.0f} deg over the same shifts.")
    if ev.upstream is not None:
        ex = ", ".join(f"{j} ({v:+.2f})" for j, v in ev.excitatory) or "none"
        inh = ", ".join(f"{j} ({v:+.2f})" for j, v in ev.inhibitory) or "none"
        n = ev.selected_on or len(ev.images)
        out.append(f"Upstream ({ev.upstream}, grad x act on {n} photos): excited by {ex}; inhibited by "
                   f"{inh}.")
    if ev.ablation is not None:
        out.append(ev.ablation.summary())
    if ev.family_test is not None:
        out.append(ev.family_test.summary())
    elif ev.family:
        out.append(ev.family[0].upper() + ev.family[1:] + ".")
    return out

