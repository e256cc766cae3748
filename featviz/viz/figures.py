"""Matplotlib figures: (tensors or circuits results) -> ``matplotlib.figure.Figure``; PNG with ``path=``.

Weight heatmaps in the Zoom In style (positive red, negative blue, symmetric scale, white at zero),
image grids, tuning curves and dataset-example grids. Figures are built without pyplot (no global
state, any backend); ``figure_svg`` closes the pyplot figure it is given.
"""
from __future__ import annotations

import io
import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import rcParams
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from featviz._io import atomic_write_bytes
from featviz.errors import BadValue
from featviz.optvis.rendering import Rendering, no_response_tile

__all__ = ["WEIGHT_CMAP", "draw_no_response", "figure_png", "figure_svg", "image_grid",
           "plot_dataset_examples", "plot_tuning_curve", "plot_weights", "save", "weight_heatmap"]

WEIGHT_CMAP = "RdBu_r"  # red = positive, blue = negative
"""Matplotlib colormap of weight figures: red = positive, blue = negative, white = 0 (as in Zoom In)."""


def _figure(width: float, height: float, dpi: int = 100):
    return Figure(figsize=(width, height), dpi=dpi)


def _figure_bytes(fig, fmt: str, dpi: float | None = None) -> bytes:
    """``fig`` encoded as ``fmt`` (``"png"``, ``"svg"``, ``"pdf"``, ...): tight box, white background;
    ``dpi`` None: matplotlib's ``savefig.dpi`` (the figure's own by default)."""
    buf = io.BytesIO()
    dpi_kw = {} if dpi is None else {"dpi": dpi}
    fig.savefig(buf, format=fmt, bbox_inches="tight", facecolor="white", **dpi_kw)
    return buf.getvalue()


def save(fig, path: str | os.PathLike | None):
    """Write ``fig`` to ``path`` when a path is given, atomically (a temporary file, then a rename: a reader
    never sees half a figure); return ``fig``. The format is the extension's (``.png``, ``.svg``, ``.pdf``,
    ...; matplotlib's default format without one). Every figure file of featviz is written here.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "w.png"
        >>> fig = save(plot_weights(torch.randn(2, 2, 3, 3)), out)
        >>> out.read_bytes()[:4]
        b'\\x89PNG'
    """
    if path is not None:
        fmt = os.path.splitext(os.fspath(path))[1][1:]
        if not fmt:
            fmt = rcParams["savefig.format"]
        atomic_write_bytes(path, _figure_bytes(fig, fmt.lower()))
    return fig


def _hwc(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (H, W) tensor in [0, 1] -> array matplotlib can show."""
    a = image.detach().float().cpu().clamp(0, 1)
    return a.permute(1, 2, 0).numpy() if a.dim() == 3 else a.numpy()


def draw_no_response(ax, h: int = 64, w: int = 64, fontsize: float = 7):
    """Draw a dead render (``Rendering.dead``) on ``ax``: the crossed-out tile and "no response found".

    Example:
        >>> ax = draw_no_response(_figure(1, 1).add_subplot(), 16, 16)
        >>> ax.texts[0].get_text().split()
        ['no', 'response', 'found']
    """

    ax.imshow(_hwc(no_response_tile(h, w)))
    ax.text(0.5, 0.5, "no response\nfound", transform=ax.transAxes, ha="center", va="center",
            fontsize=fontsize, color="0.15", bbox={"facecolor": "white", "alpha": 0.85, "lw": 0})
    return ax


def weight_heatmap(kernel: torch.Tensor, ax=None, vmax: float | None = None, frame: bool = True):
    """Draw one (kh, kw) kernel as a red/blue heat map on ``ax`` (a new figure when None); return the axes.

    ``vmax``: the colour scale's bound (default: the kernel's largest magnitude), symmetric around zero.

    Example:
        >>> ax = weight_heatmap(torch.tensor([[1.0, -1.0], [0.0, 0.5]]))
        >>> ax.images[0].get_clim()
        (-1.0, 1.0)
    """
    k = kernel.detach().float().cpu()
    if k.dim() != 2:
        raise BadValue(f"kernel must be (kh, kw), got shape {tuple(k.shape)}")
    if ax is None:
        ax = _figure(2, 2).add_subplot()
    bound = float(vmax) if vmax is not None else max(float(k.abs().max()), 1e-12)
    ax.imshow(k.numpy(), cmap=WEIGHT_CMAP, vmin=-bound, vmax=bound, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if not frame:
        ax.set_axis_off()
    return ax


def plot_weights(w: torch.Tensor, path: str | None = None, dst_labels: Sequence[str] | None = None,
                 src_labels: Sequence[str] | None = None, max_cells: int = 32, cell: float = 0.5):
    """A grid of kernels from a (C_dst, C_src, kh, kw) tensor: one row per dst channel, one column per src
    channel (at most ``max_cells`` of each), all on one symmetric red/blue scale.

    Example:
        >>> fig = plot_weights(torch.randn(4, 6, 3, 3))
        >>> len(fig.axes)
        24
    """
    if w.dim() != 4:
        raise BadValue(f"weights must be (C_dst, C_src, kh, kw), got shape {tuple(w.shape)}")
    w = w[:max_cells, :max_cells].detach().float().cpu()
    n_dst, n_src = w.shape[:2]
    fig = _figure(cell * n_src + 0.8, cell * n_dst + 0.4)
    grid = fig.add_gridspec(n_dst, n_src, wspace=0.08, hspace=0.08)
    bound = max(float(w.abs().max()), 1e-12)
    for o in range(n_dst):
        for c in range(n_src):
            ax = weight_heatmap(w[o, c], fig.add_subplot(grid[o, c]), vmax=bound)
            if c == 0:
                ax.set_ylabel(dst_labels[o] if dst_labels else str(o), fontsize=7, rotation=0, ha="right")
            if o == 0:
                ax.set_title(src_labels[c] if src_labels else str(c), fontsize=7)
    return save(fig, path)


def image_grid(images: torch.Tensor | Rendering, titles: Sequence[str] | None = None, ncol: int | None = None,
               path: str | None = None, cell: float = 1.6, dead: Sequence[bool] | torch.Tensor | None = None):
    """Show (N, 3, H, W) (or (N, H, W)) images in [0, 1] on a grid with optional titles.

    ``images`` may also be a ``Rendering``: its images, its labels as default titles and its
    ``dead`` flags. Items flagged in ``dead`` are drawn as "no response found" (:func:`draw_no_response`),
    never as their (flat grey) image.

    Example:
        >>> fig = image_grid(torch.rand(6, 3, 8, 8), titles=list("abcdef"), ncol=3, dead=[0, 0, 0, 0, 0, 1])
        >>> len(fig.axes), fig.axes[5].texts[0].get_text().split()
        (6, ['no', 'response', 'found'])
    """

    if isinstance(images, Rendering):
        titles = titles if titles is not None else images.labels
        dead = images.dead if dead is None else dead
        images = images.images
    if images.dim() not in (3, 4) or len(images) == 0:
        raise BadValue(f"images must be a non-empty (N, 3, H, W) or (N, H, W) tensor, "
                         f"got {tuple(images.shape)}")
    n = len(images)
    dead_flags = [False] * n if dead is None else [bool(d) for d in dead]
    if len(dead_flags) != n:
        raise BadValue(f"dead has {len(dead_flags)} flags for {n} images")
    ncol = ncol or int(np.ceil(np.sqrt(n)))
    nrow = int(np.ceil(n / ncol))
    fig = _figure(cell * ncol, cell * nrow + (0.25 * nrow if titles else 0))
    for i in range(n):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        if dead_flags[i]:
            draw_no_response(ax, *images.shape[-2:])
        else:
            ax.imshow(_hwc(images[i]), cmap="gray" if images.dim() == 3 else None, vmin=0, vmax=1)
        ax.set_axis_off()
        if titles:
            ax.set_title(str(titles[i]), fontsize=8)
    return save(fig, path)


def plot_tuning_curve(curves, ax=None, path: str | None = None, polar: bool = False):
    """Response vs angle for one ``TuningCurve`` or a list of them (one line each; faint lines for the
    individual phases/curvatures that were averaged).

    Example:
        >>> from featviz.circuits import TuningCurve
        >>> tc = TuningCurve("a:0", torch.arange(0., 180, 45), torch.tensor([1., 3, 1, 0]), torch.ones(4, 1))
        >>> len(plot_tuning_curve(tc).axes[0].lines)   # the curve, its one raw column, the zero line
        3
    """
    curves = curves if isinstance(curves, (list, tuple)) else [curves]
    fig = None
    if ax is None:
        fig = _figure(4, 3)
        ax = fig.add_subplot(projection="polar" if polar else None)
    for tc in curves:
        a = tc.angles.float().numpy()
        x = np.deg2rad(a) if polar else a
        (line,) = ax.plot(x, tc.responses.float().numpy(), marker="o", ms=3, label=tc.node)
        raw = tc.raw.float().numpy()
        if raw.shape[1] > 1 or len(curves) == 1:
            ax.plot(x, raw, color=line.get_color(), alpha=0.25, lw=0.8)
    if not polar:
        ax.set_xlabel("angle (degrees)")
        ax.set_ylabel("response")
        ax.axhline(0, color="0.6", lw=0.6)
    ax.legend(fontsize=7, loc="best")
    fig = fig or ax.figure
    return save(fig, path)


def plot_dataset_examples(examples, path: str | None = None, crops: bool = True):
    """Grid of a ``DatasetExamples``' crops (or full images with the box drawn), titled with scores.

    Example:
        >>> photos, names = fv.data.sample_images(size=64)
        >>> ex = fv.circuits.dataset_examples(fv.models.toy.edges_and_curves(), "relu2:0", photos, k=4,
        ...                                   progress=False)
        >>> fig = plot_dataset_examples(ex, path="top.png")
    """

    imgs = examples.crops if crops else examples.images
    titles = [f"#{int(i)}: {float(s):.2f}" for i, s in zip(examples.indices, examples.scores)]
    fig = image_grid(imgs, titles=titles, ncol=min(len(imgs), 5))
    if not crops:
        for ax, (r0, r1, c0, c1) in zip(fig.axes, examples.boxes.tolist()):
            box = Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False, ec="yellow", lw=1.5)
            ax.add_patch(box)
    fig.suptitle(examples.node, fontsize=9)
    return save(fig, path)


def figure_svg(fig, min_pt: float = 0.0) -> bytes:
    """``fig`` as deterministic SVG bytes (no date, fixed ids: the same figure gives the same bytes), text
    kept as text (searchable, the browser's font), every text at least ``min_pt`` points; the figure is
    closed. The microscope's pages show these at their natural size.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig = plt.figure()
        >>> _ = fig.suptitle("tiny", fontsize=5)
        >>> b"font-size: 9.5px" in figure_svg(fig, min_pt=9.5)
        True
        >>> figure_svg(plt.figure()) == figure_svg(plt.figure())
        True
    """
    for t in fig.findobj(Text):
        if t.get_text() and t.get_fontsize() < min_pt:
            t.set_fontsize(min_pt)
    buf = io.BytesIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "featviz"}):
        fig.savefig(buf, format="svg", facecolor="white", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return buf.getvalue()


def figure_png(fig, dpi: float = 100) -> bytes:
    """``fig`` as PNG bytes (what a result's ``_repr_png_`` hands to a notebook, what a page inlines); every
    in-memory PNG of a figure is made here, as :func:`save` makes every figure file.

    Example:
        >>> figure_png(_figure(1, 1))[:4]
        b'\\x89PNG'
    """
    return _figure_bytes(fig, "png", dpi=dpi)
