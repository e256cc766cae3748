"""Figures of optvis results: (Factorization | Atlas | Rendering) -> a matplotlib Figure; PNG with ``path``.

``Factorization.plot``, ``Atlas.plot`` and ``Rendering.show`` are one-line calls to these functions: the
results hold data, the drawing lives here (issue 19). Nothing is computed: a factorization's group
renderings are passed in (``plot_factorization(f, renderings=f.render(model))``), an atlas is drawn from
the renderings or sample counts it holds.

Example:
    >>> f = fv.factorize(fv.models.toy.edges_and_curves(), "relu1", torch.rand(2, 3, 24, 24), 2,
    ...                  progress=False)
    >>> [ax.get_title() for ax in plot_factorization(f).axes[1:3]]
    ['group 0', 'group 1']
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from featviz.errors import BadValue
from featviz.optvis.factorize import group_colors
from featviz.viz.figures import _hwc, draw_no_response, save

if TYPE_CHECKING:
    from featviz.optvis.atlas import Atlas
    from featviz.optvis.factorize import Factorization
    from featviz.optvis.rendering import Rendering

__all__ = ["plot_atlas", "plot_factorization", "show_rendering"]

ATLAS_KINDS = ("features", "classes")


def plot_factorization(fac: Factorization, renderings: Rendering | None = None, n_images: int = 4,
                       path: str | None = None):
    """Figure of a ``Factorization``: per image, the image tinted by its groups, then each group's map; the
    top row names the layer and shows each group (its rendering, else a swatch of its colour).

    ``renderings`` (e.g. ``fac.render(model)``) is drawn, not computed: pass it to see each group's feature
    visualization above its column. Group ``k`` has colour ``group_colors(K)[k]`` in its title, its swatch,
    its map and the overlay. Returns a ``matplotlib.figure.Figure``; PNG with ``path``.

    Example:
        >>> f = fv.factorize(fv.models.toy.edges_and_curves(), "relu1", torch.rand(2, 3, 24, 24), 2,
        ...                  progress=False)
        >>> len(plot_factorization(f).axes)    # (2 images + the top row) x (overlay + 2 groups)
        9
    """

    k, n = len(fac), min(n_images, len(fac.images))
    rows = n + 1
    fig = Figure(figsize=(1.6 * (k + 1), 1.6 * rows + 0.3))
    axes = fig.subplots(rows, k + 1, squeeze=False)
    colors = group_colors(k)
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].text(0.5, 0.5, f"{fac.layer}\n{fac.method}, {k} groups", ha="center", va="center",
                    fontsize=8, transform=axes[0, 0].transAxes)
    for g in range(k):
        ax = axes[0, g + 1]
        if renderings is not None and g < len(renderings):
            ax.imshow(renderings.images[g].permute(1, 2, 0).clamp(0, 1).numpy())
        else:
            ax.imshow(np.ones((8, 8, 3)) * colors[g])
        ax.set_title(f"group {g}", fontsize=8, color=colors[g])
    vmax = float(fac.spatial[:n].clamp(min=0).amax()) or 1.0
    for i in range(n):
        axes[i + 1, 0].imshow(fac.overlay(i).permute(1, 2, 0).clamp(0, 1).numpy())
        for g in range(k):
            m = fac.spatial[i, g].clamp(min=0).numpy() / vmax  # (h, w) in [0, 1]
            tinted = np.clip(m[..., None] * colors[g] + (1 - m[..., None]), 0, 1)  # float error: > 1
            axes[i + 1, g + 1].imshow(tinted, vmin=0, vmax=1)
    fig.tight_layout()
    return save(fig, path)


def plot_atlas(atlas: Atlas, kind: str = "features", path: str | None = None, counts: bool = True):
    """Figure of an ``Atlas``: ``"features"`` (its renderings, or the sample density when built with
    ``steps=0``) or ``"classes"`` (each cell coloured by its class, the class name written in it).

    Each filled cell shows its sample count (``counts=True``). Returns a ``matplotlib.figure.Figure``; PNG
    with ``path``.

    Raises:
        BadValue: an unknown ``kind``; ``"classes"`` for an atlas without classes.

    Example:
        >>> a = fv.atlas(fv.models.toy.edges_and_curves(), "relu1", torch.rand(4, 3, 24, 24), grid=3,
        ...              n_samples=90, reducer="pca", steps=0, progress=False)
        >>> plot_atlas(a).axes[0].get_title()[:25]
        'activation atlas of relu1'
    """

    if kind not in ATLAS_KINDS:
        raise BadValue(f"kind must be 'features' or 'classes', got {kind!r}")
    if kind == "classes" and atlas.classes is None:
        raise BadValue("no class atlas: the model has no (B, n_classes) output")
    grid = atlas.grid
    fig = Figure(figsize=(8, 8))
    ax = fig.add_subplot()
    ax.set_xlim(0, grid)
    ax.set_ylim(grid, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"activation atlas of {atlas.layer} ({int(atlas.counts.sum())} samples, "
                 f"{len(atlas.cells)} cells)" if kind == "features" else f"class atlas of {atlas.layer}")
    if kind == "features" and atlas.renders is not None:
        ax.imshow(atlas.mosaic().permute(1, 2, 0).numpy(), extent=(0, grid, grid, 0))
    elif kind == "features":
        ax.imshow(np.log1p(atlas.counts.numpy()), cmap="Greys", extent=(0, grid, grid, 0))
    else:
        cmap = colormaps["tab20"]
        uniq = {c: i for i, c in enumerate(dict.fromkeys(atlas.classes.tolist()))}
        names = atlas.class_names
        for (r, c), k in zip(atlas.cells.tolist(), atlas.classes.tolist()):
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor=cmap(uniq[k] % 20), edgecolor="white"))
            name = names[k] if names and k < len(names) else str(k)
            ax.text(c + 0.5, r + 0.5, name[:10], ha="center", va="center", fontsize=max(3, 60 / grid))
    if counts:
        for (r, c) in atlas.cells.tolist():
            ax.text(c + 0.05, r + 0.95, str(int(atlas.counts[r, c])), fontsize=max(3, 50 / grid),
                    color="0.2", va="bottom")
    fig.tight_layout()
    return save(fig, path)


def show_rendering(rendering: Rendering, ncol: int | None = None, scale: float = 1.5):
    """``Rendering.show``: the images in a pyplot figure (shown by a notebook), one panel per item titled with
    its label; transparent renderings drawn with their alpha; a dead item's panel shows the crossed-out
    tile with the words "no response found". Returns the figure.

    Example:
        >>> r = fv.render_layer(fv.models.toy.edges_and_curves(), "relu2", size=16, steps=2, progress=False)
        >>> len(show_rendering(r).axes)        # 7 channels on a 3 x 3 grid
        9
    """

    b = len(rendering)
    ncol = ncol or max(1, int(round(b**0.5 + 0.49)))
    nrow = -(-b // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(scale * ncol, scale * nrow + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    images = rendering.rgba() if rendering.alpha is not None else rendering.images
    for ax, img, label, dead in zip(axes.flat, images, rendering.labels, rendering.dead.tolist()):
        if dead:
            draw_no_response(ax, *img.shape[-2:])
        else:
            ax.imshow(_hwc(img))
        ax.set_title(label, fontsize=8)
    fig.tight_layout()
    return fig
