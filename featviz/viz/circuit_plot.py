"""Circuit diagrams: (Circuit, thumbnails) -> Zoom In style figure; feature-vis thumbnails cached per model.

A diagram draws only: thumbnails are an input (``thumbnails_for(model, circuit)`` renders and caches them,
explicitly), never rendered behind a plot call (``thumbnails=True`` still does, with a DeprecationWarning).

Layers are rows (latest at the top), nodes sit on their layer's row, edges run from src up to dst,
red for excitation and blue for inhibition, width by |strength| (relative within a layer), and each
edge carries its (kh, kw) weight pattern as a small red/blue heat map at its midpoint.
"""
from __future__ import annotations

import hashlib
import os
import warnings
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn

from featviz.core import parse_ref
from featviz.errors import BadValue
from featviz.optvis.settings import RenderSettings
from featviz.viz.figures import _figure, _hwc, draw_no_response, save, weight_heatmap

if TYPE_CHECKING:
    from featviz.optvis.rendering import Rendering

__all__ = ["plot_circuit", "thumbnails_for"]

_THUMB_RENDER = RenderSettings(size=64, steps=64)  # thumbnails: small and quick; seed 0, the rest fv.render's
# model -> {(node, RenderSettings): image}; weak, so a deleted model takes its thumbnails with it
_THUMBS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fingerprint(model: nn.Module) -> str:
    h = hashlib.sha1(type(model).__name__.encode())
    for p in list(model.parameters())[:4] + list(model.parameters())[-2:]:
        h.update(p.detach().float().cpu().flatten()[:256].numpy().tobytes())
    return h.hexdigest()[:12]


def _unit(node: str) -> tuple[str, int]:
    """A circuit node ``"layer:c"`` (``"layer#2:c"``) -> (layer key, channel), read by
    ``featviz.core.parse_ref``; a node that names no channel or several is a ``ValueError``."""
    ref = parse_ref(node)
    if ref.channels is None or len(ref.channels) != 1:
        raise BadValue(f"a circuit node is one channel, 'layer:channel' (e.g. 'relu2:3'), got {node!r}")
    return ref.key, ref.channels[0]


def thumbnails_for(model: nn.Module, nodes, *, settings: RenderSettings | None = None,
                   size: int | None = None, steps: int | None = None, seed: int | None = None,
                   cache_dir: str | os.PathLike | None = None,
                   progress: bool = False) -> dict[str, torch.Tensor]:
    """Feature visualizations (3, size, size) for ``nodes`` (``"layer:channel"`` strings, or a ``Circuit``:
    its nodes), rendered with
    ``fv.render_layer`` one batch per layer, and cached: in memory per model object, and in
    ``cache_dir`` (files keyed by a fingerprint of the weights, the node and the settings) when given.

    A node whose render found no response (``Rendering.dead``) comes back as the crossed-out
    ``no_response_tile``, never as the flat grey image the optimiser left.

    The render settings come from ``settings`` (a ``fv.optvis.RenderSettings``; default: size 64, steps 64,
    seed 0, the rest ``fv.render``'s), or ``size`` / ``steps`` / ``seed``; a keyword given beside
    ``settings`` wins.

    Example:
        >>> model = fv.models.toy.edges_and_curves()
        >>> thumbs = thumbnails_for(model, ["relu2:5"], size=32, steps=8)
        >>> thumbs["relu2:5"].shape
        torch.Size([3, 32, 32])
        >>> quick = fv.optvis.RenderSettings(size=32, steps=8)
        >>> torch.equal(thumbnails_for(model, ["relu2:5"], settings=quick)["relu2:5"], thumbs["relu2:5"])
        True
    """
    from featviz.optvis.rendering import no_response_tile

    nodes = list(getattr(nodes, "nodes", nodes))
    s = RenderSettings.resolve(settings, _THUMB_RENDER, size=size, steps=steps, seed=seed)
    found = _thumbnails(model, nodes, settings=s, cache_dir=cache_dir, progress=progress)
    return {node: no_response_tile(*img.shape[-2:]) if dead else img for node, (img, dead) in found.items()}


def _thumbnails(model: nn.Module, nodes: list[str], *, settings: RenderSettings,
                cache_dir: str | os.PathLike | None, progress: bool) -> dict[str, tuple[torch.Tensor, bool]]:
    """node -> (image (3, size, size), dead flag); the cached work behind ``thumbnails_for``."""
    from featviz.optvis import render_layer

    memo = _THUMBS.setdefault(model, {})
    key = lambda node: (node, settings)  # noqa: E731
    prefix = _fingerprint(model) if cache_dir is not None else ""
    size, steps, seed = settings.size, settings.steps, settings.seed
    size_tag = size if isinstance(size, int) else "x".join(map(str, size))
    # the other settings, when any differs from fv.render's defaults (files of the defaults keep their names)
    other = {k: v for k, v in settings.to_dict().items()
             if k not in ("size", "steps", "seed") and v != getattr(_THUMB_RENDER, k)}
    extra = "_" + hashlib.sha1(repr(sorted(other.items())).encode()).hexdigest()[:8] if other else ""
    # "_v2": files hold {"image", "dead"}; older files (a bare image, no dead flag) are not read
    file_of = lambda node: os.path.join(  # noqa: E731
        cache_dir, f"{prefix}_{node.replace(':', '_')}_{size_tag}_{steps}_{seed}{extra}_v2.pt")
    out: dict[str, tuple[torch.Tensor, bool]] = {}
    missing: dict[str, dict[str, int]] = {}  # layer -> {node: channel}
    for node in nodes:
        if key(node) in memo:
            out[node] = memo[key(node)]
            continue
        if cache_dir is not None and os.path.exists(file_of(node)):
            saved = torch.load(file_of(node), weights_only=True)
            out[node] = memo[key(node)] = (saved["image"], bool(saved["dead"]))
            continue
        layer, ch = _unit(node)
        missing.setdefault(layer, {})[node] = ch
    for layer, todo in missing.items():
        r = render_layer(model, layer, channels=list(todo.values()), settings=settings, progress=progress)
        for node, img, dead in zip(todo, r.images, r.dead.tolist()):
            out[node] = memo[key(node)] = (img, bool(dead))
            if cache_dir is not None:
                os.makedirs(cache_dir, exist_ok=True)
                torch.save({"image": img, "dead": torch.tensor(bool(dead))}, file_of(node))
    return out


def _positions(circuit) -> dict[str, tuple[float, float]]:
    """Node -> (x, y) in figure fractions: one row per layer (deepest on top), nodes spread evenly."""
    layers = []
    for node in circuit.nodes:  # root first, then upstream: rows appear latest layer first
        layer = _unit(node)[0]
        if layer not in layers:
            layers.append(layer)
    pos = {}
    for row, layer in enumerate(layers):
        members = [n for n in circuit.nodes if _unit(n)[0] == layer]
        y = 1 - (row + 0.5) / len(layers)
        for i, n in enumerate(members):
            pos[n] = ((i + 0.5) / len(members), y)
    return pos


_RENDER_DEFAULTS = {"size": 64, "steps": 64, "seed": 0, "cache_dir": None}


def _given_thumbnails(thumbnails, nodes: list[str]) -> dict[str, tuple[torch.Tensor, bool]]:
    """node -> (image, dead) from a ``{node: (3, H, W)}`` mapping or a ``Rendering`` (by its labels)."""
    from featviz.optvis.rendering import Rendering, no_response_tile

    if isinstance(thumbnails, Rendering):
        n = len(thumbnails.images)
        dead = thumbnails.dead if thumbnails.dead is not None else torch.zeros(n, dtype=torch.bool)
        return {label: (img, bool(d)) for label, img, d in zip(thumbnails.labels, thumbnails.images,
                                                                dead.tolist()) if label in nodes}
    if not isinstance(thumbnails, Mapping):
        raise BadValue("thumbnails must be a {node: (3, H, W) image} mapping (fv.viz.thumbnails_for(model, "
                       f"circuit)), a Rendering, or None; got {type(thumbnails).__name__}")
    out = {}
    for node, img in thumbnails.items():
        if node in nodes:
            img = torch.as_tensor(img)
            out[node] = (img, torch.equal(img, no_response_tile(*img.shape[-2:])))
    return out


def plot_circuit(circuit, model: nn.Module | None = None, *,
                 thumbnails: Mapping[str, torch.Tensor] | Rendering | bool | None = None,
                 path: str | None = None, node_size: float = 0.9, patterns: bool = True,
                 notes: dict[str, str] | None = None, **render_kwargs):
    """Draw ``circuit`` (a ``featviz.circuits.Circuit``) Zoom In style, with the ``thumbnails`` given.

    ``thumbnails``: ``{node: (3, H, W) image}`` (``fv.viz.thumbnails_for(model, circuit)`` renders and
    caches them) or a ``Rendering`` whose labels are nodes; ``None`` / ``False``: grey tiles. Drawing never
    renders, except the deprecated ``thumbnails=True`` (or render settings ``size``/``steps``/``seed``/
    ``cache_dir`` given without thumbnails), which renders through ``thumbnails_for`` with ``model`` and
    warns. A dead node's thumbnail (``no_response_tile``) is drawn as "no response found".

    ``notes``: extra text under a node's label (e.g. ``{"blocks.0:6": "edge 86°"}``).

    Example:
        >>> circuit = fv.circuits.trace(fv.models.toy.edges_and_curves(), "relu2:0", depth=1, progress=False)
        >>> fig = plot_circuit(circuit, path="circuit.png")                          # grey tiles
        >>> thumbs = fv.viz.thumbnails_for(fv.models.toy.edges_and_curves(), circuit, size=16, steps=2)
        >>> fig = plot_circuit(circuit, thumbnails=thumbs)
    """
    from matplotlib.lines import Line2D

    unknown = set(render_kwargs) - set(_RENDER_DEFAULTS)
    if unknown:
        raise TypeError(f"plot_circuit() got unexpected keyword arguments {sorted(unknown)}")
    legacy = thumbnails is True or (thumbnails is None and bool(render_kwargs))
    if legacy:
        if model is None:
            raise BadValue("thumbnails need the model: pass thumbnails=fv.viz.thumbnails_for(model, "
                           "circuit), or thumbnails=False")
        warnings.warn("plot_circuit/Circuit.plot rendering thumbnails itself (thumbnails=True, or size=/"
                      "steps=/seed=/cache_dir=) is deprecated: render them explicitly and pass them in, "
                      "thumbnails=fv.viz.thumbnails_for(model, circuit, size=..., steps=...)",
                      DeprecationWarning, stacklevel=3)
        given = {**_RENDER_DEFAULTS, **render_kwargs}
        settings = _THUMB_RENDER.replace(size=given["size"], steps=given["steps"], seed=given["seed"])
        thumbs = _thumbnails(model, circuit.nodes, settings=settings, cache_dir=given["cache_dir"],
                             progress=False)
    elif thumbnails is None or thumbnails is False:
        thumbs = {}
    else:
        thumbs = _given_thumbnails(thumbnails, list(circuit.nodes))
    pos = _positions(circuit)
    rows = len({y for _, y in pos.values()})
    cols = max(sum(1 for p in pos.values() if p[1] == y) for y in {y for _, y in pos.values()})
    width, height = max(4.0, 1.7 * cols * node_size), max(3.0, 2.4 * rows * node_size)
    fig = _figure(width, height)
    canvas = fig.add_axes((0, 0, 1, 1))
    canvas.set_xlim(0, 1)
    canvas.set_ylim(0, 1)
    canvas.set_axis_off()
    strongest: dict[str, float] = {}  # per dst layer: strengths of different layer pairs are not comparable
    for e in circuit.edges:
        layer = _unit(e.dst)[0]
        strongest[layer] = max(strongest.get(layer, 0.0), abs(e.strength))
    half_w, half_h = 0.5 * node_size / width, 0.5 * node_size / height  # thumbnail half-size, fig fractions
    for e in circuit.edges:
        (x0, y0), (x1, y1) = pos[e.src], pos[e.dst]
        color = "#d62728" if e.strength >= 0 else "#1f77b4"
        lw = 0.5 + 5.0 * abs(e.strength) / (strongest[_unit(e.dst)[0]] or 1.0)
        below = y1 - half_h - 0.3 / height  # leave room for dst's label
        canvas.add_line(Line2D([x0, x1], [y0 + half_h, below], color=color, lw=lw, alpha=0.75,
                               solid_capstyle="round"))
        if patterns and e.pattern.dim() == 2:
            mx, my = (x0 + x1) / 2, (y0 + half_h + below) / 2
            s = 0.32 * node_size
            inset = fig.add_axes((mx - s / width / 2, my - s / height / 2, s / width, s / height))
            weight_heatmap(e.pattern, inset)
            for spine in inset.spines.values():
                spine.set_edgecolor(color)
    for node, (x, y) in pos.items():
        ax = fig.add_axes((x - half_w, y - half_h, 2 * half_w, 2 * half_h))
        if node in thumbs and thumbs[node][1]:  # dead: no response found, not a grey square
            draw_no_response(ax, *thumbs[node][0].shape[-2:], fontsize=6)
        elif node in thumbs:
            ax.imshow(_hwc(thumbs[node][0]))
        else:
            ax.set_facecolor("0.93")
        ax.set_xticks([])
        ax.set_yticks([])
        lw = 2.5 if node == circuit.root else 0.8
        for spine in ax.spines.values():
            spine.set_linewidth(lw)
        label = f"{node}\n{notes[node]}" if notes and node in notes else node
        ax.text(0.5, -0.04, label, transform=ax.transAxes, ha="center", va="top", fontsize=7)
    return save(fig, path)
