"""Circuit tracing: (model, "layer:channel") -> Circuit of the strongest upstream channels, layer by layer.

A ``Circuit`` holds nodes (``"layer:channel"``) and edges (src, dst, signed strength, the (kh, kw)
expanded-weight pattern from src to dst). It plots as a Zoom In style diagram and round-trips JSON.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from featviz.circuits._graph import ModuleGraph
from featviz.circuits._keywords import images_keyword
from featviz.circuits.attribution import attribute
from featviz.circuits.weights import expanded_weights
from featviz.core import evaluating, probe_input
from featviz.errors import BadValue
from featviz.hooks import hooked

__all__ = ["Circuit", "Edge", "trace", "upstream_layers"]


@dataclass
class Edge:
    """``src`` feeds ``dst`` with signed ``strength``; ``pattern`` (kh, kw) is the expanded weight from src
    to dst's central unit (where in dst's receptive field src excites, red, or inhibits, blue)."""

    src: str
    dst: str
    strength: float
    pattern: torch.Tensor = field(repr=False)


@dataclass
class Circuit:
    """Nodes ``"layer:channel"`` (root first) and weighted edges found by :func:`trace`.

    Example:
        >>> c = Circuit("b:0", ["b:0", "a:1"], [Edge("a:1", "b:0", 0.5, torch.ones(3, 3))], "attribution")
        >>> Circuit.from_json(c.to_json()).edges[0].strength
        0.5
    """

    root: str
    nodes: list[str]
    edges: list[Edge]
    by: str
    layers: list[str] = field(default_factory=list)
    model: nn.Module | None = field(default=None, repr=False, compare=False)

    def upstream(self, node: str) -> list[Edge]:
        """Edges into ``node``, strongest first."""
        return sorted((e for e in self.edges if e.dst == node), key=lambda e: -abs(e.strength))

    def to_dict(self) -> dict:
        """Nodes, layers and edges (patterns as nested lists): what :meth:`to_json` writes."""
        return {"root": self.root, "nodes": self.nodes, "by": self.by, "layers": self.layers,
                "edges": [{"src": e.src, "dst": e.dst, "strength": e.strength, "pattern": e.pattern.tolist()}
                          for e in self.edges]}

    def summary(self) -> str:
        """One sentence: the root, how the edges were found, and its strongest inputs."""
        ins = ", ".join(f"{e.src} ({e.strength:+.3g})" for e in self.upstream(self.root)[:3]) or "none"
        return (f"Circuit of {self.root} by {self.by}: {len(self.nodes)} nodes, {len(self.edges)} edges; "
                f"strongest inputs {ins}.")

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The circuit as JSON (:meth:`to_dict`); also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
        return text

    @classmethod
    def from_json(cls, text: str | os.PathLike) -> Circuit:
        """Read what :meth:`to_json` wrote (a JSON string or a file path)."""
        if not str(text).lstrip().startswith("{"):
            with open(text) as f:
                text = f.read()
        d = json.loads(text)
        edges = [Edge(e["src"], e["dst"], float(e["strength"]), torch.tensor(e["pattern"]))
                 for e in d["edges"]]
        return cls(d["root"], list(d["nodes"]), edges, d["by"], list(d.get("layers", [])))

    def plot(self, model: nn.Module | None = None, *, thumbnails=None, path: str | None = None,
             **kwargs):
        """The Zoom In style diagram (``featviz.viz.plot_circuit``): edges red (excitatory) / blue
        (inhibitory) with width by strength, each with its weight pattern; node thumbnails as given
        (``thumbnails=fv.viz.thumbnails_for(model, circuit)``), never rendered here except through the
        deprecated ``thumbnails=True``."""
        from featviz.viz.circuit_plot import plot_circuit

        return plot_circuit(self, self.model if model is None else model, thumbnails=thumbnails, path=path,
                            **kwargs)

    def _repr_png_(self) -> bytes:
        from featviz.viz.figures import figure_png

        return figure_png(self.plot())


def upstream_layers(model: nn.Module, layer: str, size: int | None = None) -> list[str]:
    """The layers a trace from ``layer`` steps through, earliest first, ending with ``layer``: the model's
    ``interesting_layers`` when it lists ``layer``, else the outputs of every conv unit (conv -> BN ->
    activation) that runs before ``layer`` and is not inside it.

    Example:
        >>> upstream_layers(fv.models.toy.edges_and_curves(), "relu2", size=16)
        ['relu1', 'relu2']
    """
    hm = hooked(model)
    listed = list(getattr(hm.model, "interesting_layers", None) or [])
    if layer in listed:
        return listed[:listed.index(layer) + 1]
    with evaluating(hm.model):
        graph = ModuleGraph(hm, probe_input(hm, size))
    stop = graph.call(layer).done
    ends = []
    for u in graph.conv_units():
        if graph.calls[u.end].done < stop and not u.end.startswith(layer + ".") and u.end not in ends:
            ends.append(u.end)
    return ends + [layer]


def _strongest(values: torch.Tensor, top_k: int) -> list[int]:
    return [int(i) for i in values.abs().argsort(descending=True)[:top_k]]


@images_keyword("inputs")
def trace(model: nn.Module, node: str, depth: int = 2, top_k: int = 3, by: str = "expanded_weights",
          images: torch.Tensor | None = None, *, layers: Sequence[str] | None = None, size: int | None = None,
          progress: bool = True) -> Circuit:
    """Follow the ``top_k`` strongest upstream connections of ``node`` for ``depth`` layers.

    Upstream of a layer are the conv units it reads directly in the execution graph (through
    activations, pooling, residual adds and concatenations; not into squeeze-excite gates), so parallel
    branches (a Fire module's two expands, a downsample shortcut) are never paired with each other;
    the ``top_k`` strongest channels over all of them are kept. Every edge carries its expanded-weight
    pattern. The model runs in eval mode (restored afterwards); the circuit remembers the model for
    ``.plot()``.

    Args:
        model: any ``nn.Module`` (or ``fv.hooked`` model) with conv layers.
        node: the unit to explain, ``"layer:channel"`` (a negative channel counts from the end; the
            circuit names it by its index).
        depth: how many layers to step upstream from ``node``'s layer.
        top_k: how many of the strongest source channels to keep for every channel reached.
        by: how an edge's strength is measured. ``"expanded_weights"``: the entry of largest magnitude
            of the (kh, kw) expanded weight, signed (a property of the weights alone: units per unit of
            source activation). ``"attribution"``: ``attribute(..., method="grad_x_act")`` on ``images``
            (the contribution on real images, in units of the destination's activation).
        images: images (N, 3, H, W) in [0, 1]; needed when ``by="attribution"``, unused otherwise.
        layers: a chain of layer names, earliest first, ending with ``node``'s layer, to step along
            instead of the execution graph. Default: the model's ``interesting_layers`` when it lists
            ``node``'s layer, else the graph.
        size: input size of the forward pass that finds the connections; default the model's
            ``input_size`` or 224.
        progress: show a tqdm progress bar over the layers; ``False`` turns it off.

    Returns:
        A ``Circuit``: nodes ``"layer:channel"`` and signed ``Edge`` s (``src``, ``dst``, ``strength``,
        ``pattern``); ``.upstream(node)``, ``.plot()``, ``.to_json()``.

    Example:
        >>> model = fv.models.efficientnet_lite0()
        >>> c = trace(model, "blocks.4:7", depth=2, top_k=3, progress=False)
        >>> [e.src for e in c.upstream("blocks.4:7")]
        ['blocks.2:11', 'blocks.2:0', 'blocks.2:2']
    """
    if by not in ("expanded_weights", "attribution"):
        raise BadValue(f"by must be 'expanded_weights' or 'attribution', got {by!r}")
    if by == "attribution" and images is None:
        raise BadValue("by='attribution' needs images= (images in [0, 1]) to attribute on")
    if depth < 1 or top_k < 1:
        raise BadValue(f"depth and top_k must be >= 1, got depth={depth}, top_k={top_k}")
    hm = hooked(model)
    with evaluating(hm.model):
        graph = ModuleGraph(hm, probe_input(hm, size))
        layer = graph.key(hm.ref(node).key)
        _, root = hm.unit(node, n_channels=graph.channels(layer))  # one channel, within the layer's width
        listed = list(getattr(hm.model, "interesting_layers", None) or [])
        if layers is not None or layer in listed:
            chain = list(layers) if layers is not None else upstream_layers(hm, layer, size)
            if not chain or chain[-1] != layer:
                raise BadValue(f"layers must end with the node's layer {layer!r}, got {chain}")
            if len(chain) < 2:
                raise BadValue(f"no layer upstream of {layer!r} to trace into; "
                                 f"pass layers=[..., {layer!r}]")
            ups = {dst: [src] for src, dst in zip(chain[:-1], chain[1:])}
            upstream = lambda dst: ups.get(dst, [])  # noqa: E731
        else:
            chain = [layer]
            upstream = lambda dst: [u.end for u in graph.upstream_units(dst)]  # noqa: E731
        nodes, edges, frontier = [f"{layer}:{root}"], [], {layer: [root]}
        for _ in tqdm(range(depth), desc=f"trace {node}", disable=not progress):
            nxt: dict[str, list[int]] = {}
            for dst, chans in frontier.items():
                cands = []  # (strength, src layer, src channel, pattern)
                for src in upstream(dst):
                    pattern = expanded_weights(hm, src, dst, dst_channels=chans, size=size, progress=False)
                    if by == "attribution":
                        strength = attribute(hm, src, dst, images, dst_channels=chans)  # (n, C_src)
                    else:
                        flat = pattern.flatten(2)  # (n, C_src, kh*kw)
                        strength = flat.gather(2, flat.abs().argmax(2, keepdim=True))[..., 0]
                    cands.append((src, strength, pattern))
                for row, o in enumerate(chans):
                    scored = [(float(st[row, c]), src, c, pat[row, c]) for src, st, pat in cands
                              for c in _strongest(st[row], top_k)]
                    for value, src, c, pat in sorted(scored, key=lambda t: -abs(t[0]))[:top_k]:
                        edges.append(Edge(f"{src}:{c}", f"{dst}:{o}", value, pat.cpu()))
                        if f"{src}:{c}" not in nodes:
                            nodes.append(f"{src}:{c}")
                            nxt.setdefault(src, []).append(c)
                            if src not in chain:
                                chain.append(src)
            frontier = nxt
            if not frontier:
                break
        if layers is None and layer not in listed:
            chain.sort(key=lambda n: graph.calls[n].done)
    return Circuit(nodes[0], nodes, edges, by, chain, model=hm.model)
