"""Interactive explorers for notebooks: (model, "layer:channel") -> a circuit explorer; conv settings -> a
convolution explorer. Each is an ipywidgets view in a Jupyter kernel, a static matplotlib figure elsewhere.

``explore(model, ref)`` starts a circuit graph at ``ref``. Clicking a node's button expands its upstream units
(``fv.circuits.trace`` one level deep) and selects it; hovering an edge in the graph shows its expanded-weight
pattern; the side panel shows the selected node's feature visualization, dataset examples and evidence verdict
(``fv.circuits.evidence``), computed when first asked for and cached. Displayed, the explorer carries its
static figure too (``image/png``): an exported HTML page or a run without a widget front end shows the graph.

``explore_conv(...)`` draws a convolution's padded input with one output pixel's window, the output shape and
the ``as_strided`` view's shape and strides; with widgets, sliders change kernel, stride, padding, channels.

Example:
    >>> ex = explore(fv.models.toy.edges_and_curves(), "relu2:1", top_k=4, expand=False)
    >>> ex.expand("relu2:1")       # the planted inputs of curve unit 1: edges 1, 2, 3 and (inhibitory) 6
    ['relu1:1', 'relu1:2', 'relu1:3', 'relu1:6']
    >>> fig = ex.figure()          # the static view (matplotlib)
"""
from __future__ import annotations

import base64
import html
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from featviz.circuits.evidence import evidence
from featviz.circuits.examples import dataset_examples
from featviz.circuits.trace import Edge, trace
from featviz.errors import BadValue, UnknownName
from featviz.hooks import hooked
from featviz.optvis.render import render
from featviz.optvis.settings import RenderSettings
from featviz.viz.figures import WEIGHT_CMAP, draw_no_response, figure_png

__all__ = ["CircuitExplorer", "ConvExplorer", "explore", "explore_conv", "widgets_available"]


def widgets_available() -> bool:
    """True inside a Jupyter kernel with ipywidgets installed (a front end may render widgets)."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _png(fig: Figure) -> str:
    return base64.b64encode(figure_png(fig, dpi=80)).decode()


def _draw_render(ax, d: dict) -> None:
    """The side panel's feature visualization, or the "no response found" tile when the render is dead."""
    if d.get("dead"):

        draw_no_response(ax, *d["render"].shape[-2:])
    else:
        ax.imshow(d["render"].permute(1, 2, 0).clamp(0, 1).numpy())


def _bundle(static: Figure, text: str, widget_fn) -> dict:
    """Mime bundle: the widget view when a widget front end may exist, always the static PNG and text."""
    data = {"text/plain": text, "image/png": _png(static)}
    plt.close(static)
    if widgets_available():
        w = widget_fn()
        view = w._repr_mimebundle_()
        view = view[0] if isinstance(view, tuple) else view
        data.update({k: v for k, v in view.items() if k != "text/plain"})
    return data


# ----------------------------------------------------------------------------- circuit explorer

_PANEL_RENDER = RenderSettings(size=64, steps=64)  # the side panel's feature visualization: small and quick


class CircuitExplorer:
    """A growing circuit around ``root``: ``nodes`` ("layer:channel"), ``edges`` (src -> dst with strength and
    (kh, kw) pattern), ``expanded`` (nodes whose upstream units were added), ``selected`` (the panel's node).

    ``expand(node)`` adds ``node``'s ``top_k`` strongest upstream units (``fv.circuits.trace(model, node,
    depth=1, top_k)``) and returns the new ones; ``details(node)`` computes the side panel; ``figure()`` draws
    the static view; ``widget()`` builds the ipywidgets view.

    The side panel's feature visualization renders with ``settings`` (a ``fv.optvis.RenderSettings``, kept
    as ``render_settings``; default size 64, steps 64, seed 0); ``render_size`` / ``render_steps`` given
    beside it win.
    """

    def __init__(self, model: nn.Module, root: str, *, top_k: int = 3, images: torch.Tensor | None = None,
                 size: int | None = None, settings: RenderSettings | None = None,
                 render_size: int | None = None, render_steps: int | None = None, evidence: bool = True):

        self.model, self.top_k, self.images, self.size = model, top_k, images, size
        self.render_settings = RenderSettings.resolve(settings, _PANEL_RENDER, size=render_size,
                                                      steps=render_steps)
        self.render_size, self.render_steps = self.render_settings.size, self.render_settings.steps
        self.use_evidence = evidence
        try:
            name, c = hooked(model).unit(root)  # one channel, checked against the layer's width
        except ValueError as e:
            raise BadValue(f"explore needs one 'layer:channel': {e}") from None
        self.root = f"{name}:{c}"
        self.nodes: list[str] = [self.root]
        self.edges: list[Edge] = []
        self.expanded: set[str] = set()
        self.level: dict[str, int] = {self.root: 0}     # steps upstream of the root (the graph's column)
        self.selected = self.root
        self._details: dict[str, dict] = {}
        self._on_change = []

    # -- graph

    def upstream(self, node: str) -> list[Edge]:
        """Edges into ``node``, strongest first."""
        return sorted((e for e in self.edges if e.dst == node), key=lambda e: -abs(e.strength))

    def expand(self, node: str) -> list[str]:
        """Add ``node``'s strongest upstream units one level deep; returns the nodes that are new."""

        if node not in self.nodes:
            raise UnknownName(f"{node!r} is not in the explorer's graph; nodes: {', '.join(self.nodes)}")
        if node in self.expanded:
            return []
        try:
            circuit = trace(self.model, node, depth=1, top_k=self.top_k, size=self.size, progress=False)
        except ValueError as err:
            if "no layer upstream" not in str(err):
                raise
            self.expanded.add(node)            # an input-side unit: nothing further upstream
            return []
        new = []
        for e in circuit.edges:
            if e.src not in self.nodes:
                self.nodes.append(e.src)
                self.level[e.src] = self.level[node] + 1
                new.append(e.src)
            if not any(o.src == e.src and o.dst == e.dst for o in self.edges):
                self.edges.append(e)
        self.expanded.add(node)
        return new

    def click(self, node: str) -> list[str]:
        """What clicking a node does: select it and expand it (the widget's callback)."""
        self.selected = node
        new = self.expand(node)
        for fn in self._on_change:
            fn()
        return new

    def positions(self) -> dict[str, tuple[float, float]]:
        """(x, y) per node: the root at the right, each level upstream one column further left."""
        columns: dict[int, list[str]] = {}
        for n in self.nodes:
            columns.setdefault(self.level[n], []).append(n)
        depth = max(columns)
        pos = {}
        for lvl, names in columns.items():
            for i, n in enumerate(names):
                pos[n] = (float(depth - lvl), (len(names) - 1) / 2 - i)
        return pos

    # -- side panel

    def details(self, node: str | None = None) -> dict:
        """Feature visualization, dataset examples and evidence verdict for ``node`` (cached)."""
        node = node or self.selected
        if node in self._details:
            return self._details[node]
        out: dict = {"node": node}
        r = render(self.model, node, settings=self.render_settings, progress=False)
        out["render"], out["activation"] = r.images[0], float(r.activations[0])
        out["dead"] = bool(r.dead[0]) if getattr(r, "dead", None) is not None else False   # no response found
        if self.images is not None:
            out["examples"] = dataset_examples(self.model, node, self.images, k=4, progress=False)
        if self.use_evidence:
            try:
                ev = evidence(self.model, node, self.images, render=False, n_random=5)
                out["verdict"] = list(ev.verdict)
            except (ValueError, KeyError, RuntimeError) as err:   # e.g. no upstream layer to credit
                out["verdict"] = [f"no evidence: {err}"]
        self._details[node] = out
        return out

    # -- views

    def figure(self, details: bool = False) -> Figure:
        """The static view: the graph (edges red = excitatory, blue = inhibitory, width by strength, each with
        its weight pattern), and with ``details=True`` the selected node's side panel."""

        pos = self.positions()
        fig = plt.figure(figsize=(11 if details else 8, 4.5))
        ax = fig.add_axes([0.02, 0.05, 0.62 if details else 0.96, 0.85])
        top = max((abs(e.strength) for e in self.edges), default=1.0) or 1.0
        for e in self.edges:
            (x0, y0), (x1, y1) = pos[e.src], pos[e.dst]
            ax.plot([x0, x1], [y0, y1], color="tab:red" if e.strength > 0 else "tab:blue",
                    lw=0.5 + 4 * abs(e.strength) / top, alpha=0.7, zorder=1)
            pat = e.pattern.float()
            lim = float(pat.abs().max()) or 1.0
            ins = ax.inset_axes([(x0 + x1) / 2 - 0.08, (y0 + y1) / 2 - 0.12, 0.16, 0.24],
                                transform=ax.transData)
            ins.imshow(pat.numpy(), cmap=WEIGHT_CMAP, vmin=-lim, vmax=lim)
            ins.set_xticks([])
            ins.set_yticks([])
        for n, (x, y) in pos.items():
            face = "gold" if n == self.selected else ("lightgray" if n in self.expanded else "white")
            ax.scatter([x], [y], s=900, c=face, edgecolors="k", zorder=2)
            ax.text(x, y - 0.32, n, ha="center", va="top", fontsize=8)
        xs = [p[0] for p in pos.values()]
        ys = [p[1] for p in pos.values()]
        ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
        ax.set_ylim(min(ys) - 0.8, max(ys) + 0.6)
        ax.axis("off")
        ax.set_title(f"circuit explorer: {self.root} (grey = expanded, gold = selected; insets: weight "
                     "patterns)", fontsize=9)
        if details:
            d = self.details()
            a1 = fig.add_axes([0.68, 0.45, 0.3, 0.45])
            _draw_render(a1, d)
            a1.set_title(f"{d['node']}: feature visualization\n(activation {d['activation']:.2f})",
                         fontsize=8)
            a1.axis("off")
            text = "\n".join(_wrap(s, 48) for s in d.get("verdict", [])[:4])
            if "examples" in d:
                text = f"dataset examples: max {float(d['examples'].scores[0]):.2f}\n" + text
            fig.text(0.68, 0.4, text, va="top", fontsize=7)
        return fig

    def _svg(self) -> str:
        """The graph as inline SVG; hovering an edge shows its weight pattern (a tooltip has the numbers)."""
        pos = self.positions()
        xs = [p[0] for p in pos.values()]
        ys = [p[1] for p in pos.values()]
        sx, sy, pad = 170, 90, 70
        w = (max(xs) - min(xs)) * sx + 2 * pad
        h = (max(ys) - min(ys)) * sy + 2 * pad

        def xy(n):
            return pad + (pos[n][0] - min(xs)) * sx, pad + (max(ys) - pos[n][1]) * sy

        top = max((abs(e.strength) for e in self.edges), default=1.0) or 1.0
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}">',
                 "<style>.fv-pat{visibility:hidden}.fv-edge:hover .fv-pat{visibility:visible}"
                 ".fv-edge line:hover{stroke-opacity:1}</style>"]
        for e in self.edges:
            (x0, y0), (x1, y1) = xy(e.src), xy(e.dst)
            colour = "#d62728" if e.strength > 0 else "#1f77b4"
            pat = e.pattern.float()
            lim = float(pat.abs().max()) or 1.0
            rows = "\n".join(" ".join(f"{v:+.2f}" for v in row) for row in pat.tolist())
            cell = 36 / max(pat.shape)
            cells = []
            for (i, j), v in ((ij, float(pat[ij])) for ij in
                              [(i, j) for i in range(pat.shape[0]) for j in range(pat.shape[1])]):
                t = max(-1.0, min(1.0, v / lim))
                rgb = (255, int(255 * (1 - t)), int(255 * (1 - t))) if t > 0 else \
                    (int(255 * (1 + t)), int(255 * (1 + t)), 255)
                cells.append(f'<rect x="{j * cell:.1f}" y="{i * cell:.1f}" width="{cell:.1f}" '
                             f'height="{cell:.1f}" fill="rgb{rgb}"/>')
            mx, my = (x0 + x1) / 2 - 18, (y0 + y1) / 2 - 18
            parts.append(
                f'<g class="fv-edge"><title>{html.escape(e.src)} → {html.escape(e.dst)}: strength '
                f'{e.strength:+.3f}\n{rows}</title>'
                f'<line x1="{x0:.0f}" y1="{y0:.0f}" x2="{x1:.0f}" y2="{y1:.0f}" stroke="{colour}" '
                f'stroke-opacity="0.6" stroke-width="{1 + 6 * abs(e.strength) / top:.1f}"/>'
                f'<g class="fv-pat" transform="translate({mx:.0f},{my:.0f})">{"".join(cells)}'
                f'<rect width="36" height="36" fill="none" stroke="black"/></g></g>')
        for n in self.nodes:
            x, y = xy(n)
            face = "gold" if n == self.selected else ("#ddd" if n in self.expanded else "white")
            parts.append(f'<circle cx="{x:.0f}" cy="{y:.0f}" r="14" fill="{face}" stroke="black"/>'
                         f'<text x="{x:.0f}" y="{y + 30:.0f}" font-size="11" text-anchor="middle">'
                         f'{html.escape(n)}</text>')
        parts.append("</svg>")
        return "".join(parts)

    def widget(self):
        """The ipywidgets view: the SVG graph, one button per node (click: select + expand), a side panel."""
        import ipywidgets as W
        from IPython.display import display

        graph, buttons, panel = W.HTML(), W.HBox(), W.Output(layout=W.Layout(width="320px"))

        def redraw() -> None:
            graph.value = self._svg()
            columns: dict[int, list[str]] = {}
            for n in self.nodes:
                columns.setdefault(self.level[n], []).append(n)
            cols = []
            for lvl in sorted(columns, reverse=True):
                col = []
                for n in columns[lvl]:
                    b = W.Button(description=n, tooltip=f"select {n} and expand its upstream units",
                                 button_style="warning" if n == self.selected else "",
                                 layout=W.Layout(width="150px"))
                    b.on_click(lambda _b, n=n: self.click(n))
                    col.append(b)
                cols.append(W.VBox(col))
            buttons.children = cols
            panel.clear_output()
            with panel:
                d = self.details()
                fig, ax = plt.subplots(figsize=(3, 3))
                _draw_render(ax, d)
                ax.set_title(f"{d['node']} (activation {d['activation']:.2f})", fontsize=9)
                ax.axis("off")
                plt.show()
                if "examples" in d:
                    display(d["examples"].plot())
                for s in d.get("verdict", []):
                    print("•", s)

        self._on_change.append(redraw)
        redraw()
        return W.HBox([W.VBox([graph, buttons]), panel])

    def _repr_mimebundle_(self, include=None, exclude=None):
        return _bundle(self.figure(), f"CircuitExplorer({self.root!r}, {len(self.nodes)} nodes)", self.widget)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def explore(model: nn.Module, ref: str, *, top_k: int = 3, images: torch.Tensor | None = None,
            expand: bool = True, **kwargs: Any) -> CircuitExplorer:
    """A circuit explorer rooted at ``ref`` ("layer:channel"), its first level expanded when ``expand``.

    Shown in Jupyter it is a widget (with ipywidgets installed) that falls back to its static figure; call
    ``.figure(details=True)`` for the static view with the side panel (what an exported HTML page shows,
    since a widget needs a running kernel).

    Args:
        model: any ``nn.Module`` (or ``fv.hooked`` model) with conv layers.
        ref: the root unit, ``"layer:channel"``.
        top_k: how many of the strongest upstream channels each expanded unit shows.
        images: photos (N, 3, H, W) in [0, 1] for dataset examples and evidence; default for evidence:
            the bundled photos.
        expand: expand the root's first level of upstream units right away.
        kwargs: other :class:`CircuitExplorer` options: ``size`` (input size for the connections),
            ``settings`` (a ``fv.optvis.RenderSettings`` for the side panel's feature visualization;
            default size 64, steps 64, seed 0), ``render_size`` and ``render_steps`` (the same, as
            keywords that win over ``settings``), ``evidence`` (``False`` skips the evidence panel).

    Returns:
        The ``CircuitExplorer``: ``.expand(node)``, ``.click(node)``, ``.figure(details=...)``,
        ``.widget()``.
    """
    ex = CircuitExplorer(model, ref, top_k=top_k, images=images, **kwargs)
    if expand:
        ex.expand(ex.root)
    return ex


# ----------------------------------------------------------------------------- convolution explorer


class ConvExplorer:
    """One convolution's geometry: ``size`` x ``size`` input, ``in_channels`` -> ``out_channels``, kernel,
    stride, padding. ``shape()`` is the output shape; ``view()`` the ``as_strided`` window view's
    (shape, strides) on the padded input; ``figure(row, col)`` draws the window of output pixel (row, col)."""

    def __init__(self, size: int = 7, kernel_size: int = 3, stride: int = 1, padding: int = 0,
                 in_channels: int = 1, out_channels: int = 1):
        if kernel_size > size + 2 * padding:
            raise BadValue(f"kernel {kernel_size} does not fit a {size}-px input with padding {padding}")
        self.size, self.kernel_size, self.stride, self.padding = size, kernel_size, stride, padding
        self.in_channels, self.out_channels = in_channels, out_channels

    def shape(self) -> tuple[int, int, int]:
        """(out_channels, H_out, W_out), from the output-size formula."""
        n = (self.size + 2 * self.padding - self.kernel_size) // self.stride + 1
        return self.out_channels, n, n

    def view(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(shape, strides) of the window view (C, H_out, W_out, k, k) of the contiguous padded input."""
        p = self.size + 2 * self.padding
        _, n, _ = self.shape()
        k, s = self.kernel_size, self.stride
        return (self.in_channels, n, n, k, k), (p * p, p * s, s, p, 1)

    def output(self, seed: int = 0) -> torch.Tensor:
        """A random input and kernel through the window view + einsum, checked against F.conv2d."""
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(1, self.in_channels, self.size, self.size, generator=gen)
        k = self.kernel_size
        w = torch.randn(self.out_channels, self.in_channels, k, k, generator=gen)
        xp = torch.nn.functional.pad(x, [self.padding] * 4).contiguous()[0]
        shape, strides = self.view()
        out = torch.einsum("chwij,ocij->ohw", xp.as_strided(shape, strides), w)
        ref = torch.nn.functional.conv2d(x, w, stride=self.stride, padding=self.padding)[0]
        assert torch.allclose(out, ref, atol=1e-4), "as_strided view + einsum disagrees with F.conv2d"
        return out

    def figure(self, row: int = 0, col: int = 0) -> Figure:
        """Padded input channels with output pixel (row, col)'s window, and the output map."""
        c_out, n, _ = self.shape()
        row, col = min(row, n - 1), min(col, n - 1)
        p, k, s = self.size + 2 * self.padding, self.kernel_size, self.stride
        shape, strides = self.view()
        n_in = min(self.in_channels, 3)
        fig, axes = plt.subplots(1, n_in + 1, figsize=(3.2 * (n_in + 1), 3.6), squeeze=False)
        for c in range(n_in):
            ax = axes[0, c]
            grid = torch.zeros(p, p)
            grid[self.padding:self.padding + self.size, self.padding:self.padding + self.size] = 1
            ax.imshow(grid.numpy(), cmap="Greys", vmin=0, vmax=2.5)
            offset = c * p * p
            for i in range(p):
                for j in range(p):
                    ax.text(j, i, f"{offset + i * p + j}", ha="center", va="center",
                            fontsize=6 if p < 12 else 4, color="0.2" if grid[i, j] else "0.6")
            ax.add_patch(plt.Rectangle((col * s - .5, row * s - .5), k, k, fill=False, ec="orange", lw=3))
            ax.set(title=f"input channel {c}, padded {self.size}+2·{self.padding}\n(numbers: memory offsets)",
                   xlabel="column", ylabel="row")
            ax.title.set_fontsize(8)
        ax = axes[0, -1]
        ax.imshow(torch.zeros(n, n).numpy(), cmap="Greys", vmin=0, vmax=1)
        ax.add_patch(plt.Rectangle((col - .5, row - .5), 1, 1, color="orange"))
        ax.set(title=f"output: {c_out} x {n} x {n}", xlabel="column", ylabel="row", xticks=range(n),
               yticks=range(n))
        ax.title.set_fontsize(8)
        fig.suptitle(f"Conv2d({self.in_channels} -> {self.out_channels}, k={k}, s={s}, p={self.padding}) on "
                     f"{self.size}x{self.size}: as_strided(size={shape}, stride={strides}); window of output "
                     f"({row}, {col})", fontsize=9)
        fig.tight_layout()
        return fig

    def widget(self):
        """Sliders for size, kernel, stride, padding, channels and the output pixel; the figure redraws."""
        import ipywidgets as W

        out = W.Output()
        sliders = {
            "size": W.IntSlider(self.size, 3, 12, description="size"),
            "kernel_size": W.IntSlider(self.kernel_size, 1, 7, description="kernel"),
            "stride": W.IntSlider(self.stride, 1, 4, description="stride"),
            "padding": W.IntSlider(self.padding, 0, 3, description="padding"),
            "in_channels": W.IntSlider(self.in_channels, 1, 3, description="in ch"),
            "out_channels": W.IntSlider(self.out_channels, 1, 8, description="out ch"),
            "row": W.IntSlider(0, 0, 11, description="out row"),
            "col": W.IntSlider(0, 0, 11, description="out col"),
        }

        def redraw(_change=None) -> None:
            v = {k: s.value for k, s in sliders.items()}
            out.clear_output(wait=True)
            with out:
                try:
                    ex = ConvExplorer(v["size"], v["kernel_size"], v["stride"], v["padding"],
                                      v["in_channels"], v["out_channels"])
                except ValueError as err:
                    print(err)
                    return
                ex.figure(v["row"], v["col"])
                plt.show()

        for s in sliders.values():
            s.observe(redraw, names="value")
        redraw()
        return W.VBox([W.HBox(list(sliders.values())[:4]), W.HBox(list(sliders.values())[4:]), out])

    def _repr_mimebundle_(self, include=None, exclude=None):
        return _bundle(self.figure(), f"ConvExplorer(output {self.shape()})", self.widget)


def explore_conv(size: int = 7, kernel_size: int = 3, stride: int = 1, padding: int = 0, in_channels: int = 1,
                 out_channels: int = 1) -> ConvExplorer:
    """A convolution explorer (widget with sliders in Jupyter, static figure elsewhere).

    Example:
        >>> explore_conv(7, kernel_size=3, stride=2, padding=1).shape()
        (1, 4, 4)
    """
    return ConvExplorer(size, kernel_size, stride, padding, in_channels, out_channels)
