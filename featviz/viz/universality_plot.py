"""Figures of universality results: (UnitMatch | LayerFamilies) -> matplotlib ``Figure``; PNG with ``path=``.

``plot_unit_match`` puts matched units of two models side by side (each unit's top images, and its
feature visualization when one is given); ``plot_families`` compares a layer's unit families with its
randomized controls'. Renders are inputs: nothing is optimised or measured here.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch

from featviz.viz.figures import _figure, _hwc, save

if TYPE_CHECKING:
    from featviz.circuits.universality import LayerFamilies, UnitMatch

__all__ = ["plot_families", "plot_unit_match"]


def plot_unit_match(match: UnitMatch, units: Sequence[int] | None = None, k: int = 3, *,
                    renders_a: Mapping[int, torch.Tensor] | None = None,
                    renders_b: Mapping[int, torch.Tensor] | None = None, path: str | None = None):
    """Matched pairs side by side: per row, unit a's top-``k`` images (after its feature visualization when
    ``renders_a[channel]`` gives a (3, H, W) image), then its best match's. ``units``: channels of
    ``match.layer_a`` (default: the 6 with the largest margin over the control). Returns the figure; saves a
    PNG when ``path`` is given.

    Example:
        >>> a = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
        >>> m = fv.circuits.match_units(a, "1", a, "1", torch.rand(4, 3, 16, 16), seeds=(), progress=False)
        >>> len(plot_unit_match(m, units=[0], k=2).axes)
        6
    """
    if units is None:
        units = [int(i) for i in match.margin.nan_to_num(-2).argsort(descending=True)[:6]]
    renders_a, renders_b = renders_a or {}, renders_b or {}
    cols = 2 * (k + 1)
    fig = _figure(1.4 * cols, 1.6 * len(units))
    axes = fig.subplots(len(units), cols, squeeze=False)
    for row, i in enumerate(units):
        j = int(match.best[i])
        cells = [renders_a.get(i)] + [match.thumbnails[t] for t in match.top_images("a", i, k)]
        cells += [renders_b.get(j)] + [match.thumbnails[t] for t in match.top_images("b", j, k)]
        for ax, img in zip(axes[row], cells):
            ax.axis("off")
            if img is not None:
                ax.imshow(_hwc(img))
        axes[row][0].set_title(f"{match.name_a} {match.layer_a}:{i}", fontsize=7, loc="left")
        r, ctl = float(match.correlation[i, j]), float(match.control_best_correlation[i])
        axes[row][k + 1].set_title(f"{match.name_b} {match.layer_b}:{j}  r={r:.2f} (random {ctl:.2f})",
                                   fontsize=7, loc="left")
    fig.tight_layout()
    return save(fig, path)


def plot_families(families: LayerFamilies, path: str | None = None):
    """Bars: units per family in the model and (the largest over seeds) in its randomized copies. Returns
    the figure; saves a PNG when ``path`` is given.

    Example:
        >>> from featviz.circuits.universality import Family, LayerFamilies
        >>> fams = LayerFamilies("1", 4, [Family("edge", "edge 0°", "1", [0, 1])], {"edge 0°": [0]}, (0,))
        >>> [int(p.get_height()) for p in plot_families(fams).axes[0].patches]
        [2, 0]
    """
    counts = families.counts()
    labels = list(counts)
    fig = _figure(max(4, 0.6 * len(labels) + 1), 3)
    ax = fig.add_subplot()
    x = torch.arange(len(labels)).float()
    ax.bar(x - 0.2, [counts[k] for k in labels], 0.4, label="trained")
    ctl = [max(families.control.get(k, [0]) or [0]) for k in labels]
    ax.bar(x + 0.2, ctl, 0.4, label=f"randomized (max of {len(families.seeds)})", color="grey")
    ax.set_xticks(x.tolist(), labels, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("units")
    ax.set_title(f"{families.layer}: {families.n_channels} units", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path)
