"""Figures of circuits test results: (Evidence | AblationTest) -> matplotlib ``Figure``; PNG with ``path=``.

``plot_evidence`` lays out every line of evidence for one unit (``fv.circuits.evidence``): the feature
visualization, top and bottom photos, arc tuning at the receptive-field centre and shifted, the best
response per stimulus family, step-edge tuning and the ablation against chance (``plot_ablation_test``:
the random sets' effects as a histogram, a line at the tested set's). Figures draw only what the result
holds; nothing is rendered or measured here.
"""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from featviz.viz.figures import _figure, _hwc, save

if TYPE_CHECKING:
    from featviz.circuits.ablation import AblationTest
    from featviz.circuits.evidence import Evidence

__all__ = ["plot_ablation_test", "plot_evidence"]

FAMILY_COLORS = {"arc": "k", "line": "grey", "ring": "tab:orange", "disc": "tab:red"}


def plot_ablation_test(test: AblationTest, ax=None, path: str | None = None):
    """Histogram of ``test``'s random effects (%) with a line at the tested set's effect. Draws on ``ax`` when
    given, else on a new figure; saves a PNG when ``path`` is given; returns the figure.

    Example:
        >>> import torch
        >>> from featviz.circuits import AblationTest
        >>> t = AblationTest("a:1", "b:0", 2, 1, -0.5, torch.tensor([0, -0.1]), torch.tensor([[0], [2]]))
        >>> fig = plot_ablation_test(t)
        >>> fig.axes[0].lines[0].get_xdata()[0]
        -50.0
    """
    fig = None
    if ax is None:
        fig = _figure(4.5, 3)
        ax = fig.add_subplot()
    ax.hist((100 * test.random_effects.double()).numpy(), bins=max(5, min(30, test.n_random // 2)),
            color="0.7", label=f"{test.n_random} random sets")
    ax.axvline(100 * test.effect, color="C3", lw=2, label=f"{test.src}")
    ax.set_xlabel(f"change of {test.dst} (%)")
    ax.set_ylabel("random channel sets")
    if test.structural:
        title = "fixed by the wiring: no p-value"
    elif test.descriptive:
        title = "chosen from data: a description"
    else:
        title = f"z = {test.z:.2f}, p = {test.p:.2g}"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    return save(fig or ax.figure, path)


def _photos(fig, grid, ev: Evidence) -> None:
    """Row 0: the feature visualization, then the top photos; row 1: the verdict, then the bottom photos."""
    ax = fig.add_subplot(grid[0, 0])
    if ev.render_image is not None and not ev.render_dead:
        ax.imshow(_hwc(ev.render_image))
        ax.set_title(f"feature vis.\nact {ev.render_activation:.2f}", fontsize=9)
    else:
        ax.text(0.5, 0.5, "no response\nfound", ha="center", va="center")
        ax.set_title("feature vis.", fontsize=9)
    ax.axis("off")
    for row, (title, items) in enumerate((("top", ev.top[:5]), ("bottom", ev.bottom[:5]))):
        for j, (i, v) in enumerate(items):
            ax = fig.add_subplot(grid[row, 1 + j])
            ax.imshow(_hwc(ev.images[i]))
            name = ev.names[i] if ev.names else str(i)
            ax.set_title(f"{title}: {name}\n{v:.2f}", fontsize=8)
            ax.axis("off")
    ax = fig.add_subplot(grid[1, 0])
    ax.axis("off")
    ax.text(0, 1, "\n".join(textwrap.fill(s, 34) for s in ev.verdict[:4]), va="top", fontsize=7)


def _tuning(fig, grid, ev: Evidence) -> None:
    """Row 2: arc tuning (centre and shifted), best response per stimulus family, step-edge tuning."""
    ax = fig.add_subplot(grid[2, 0:2])
    arcs = ev.arc_curve
    if arcs is not None:
        ax.plot(arcs.angles, arcs.responses, "k-", lw=2, label="at RF centre")
        for r in arcs.shifted:
            ax.plot(arcs.angles, r, "-", lw=0.8, alpha=0.6)
        ax.set_xlabel("arc bulge direction (deg)")
        ax.set_ylabel("evoked response")
        ax.set_title(f"arcs: drift {ev.curve['drift']:.0f} deg across shifts", fontsize=9)
    ax = fig.add_subplot(grid[2, 2])
    ax.bar(list(FAMILY_COLORS), [ev.curve[f] for f in FAMILY_COLORS], color=list(FAMILY_COLORS.values()))
    ax.set_title("best response per stimulus", fontsize=9)
    ax = fig.add_subplot(grid[2, 3])
    ax.plot(ev.edge.angles, ev.edge.responses, "k-")
    for r in ev.edge.shifted if ev.edge.shifted is not None else []:
        ax.plot(ev.edge.angles, r, "-", lw=0.8, alpha=0.6)
    ax.set_title(f"step edges (sel. {ev.edge_selectivity:.2f})", fontsize=9)
    ax.set_xlabel("edge direction (deg)")


def plot_evidence(ev: Evidence, path: str | None = None):
    """One figure of every line of evidence in ``ev`` (a ``featviz.circuits.Evidence``): feature
    visualization, top and bottom photos, arc direction tuning (centre and shifted), best responses per
    stimulus family, step-edge tuning, and the family test (else the ablation) against chance. Saves a
    PNG when ``path`` is given; returns the figure.

    Example:
        >>> ev = fv.circuits.evidence(fv.models.toy.edges_and_curves(), "relu2:1", render=False, n_random=4)
        >>> len(plot_evidence(ev).axes) >= 8
        True
    """

    fig = Figure(figsize=(13, 7), dpi=100, layout="constrained")
    grid = fig.add_gridspec(3, 6)
    _photos(fig, grid, ev)
    _tuning(fig, grid, ev)
    ax = fig.add_subplot(grid[2, 4:6])
    test = ev.family_test if ev.family_test is not None else ev.ablation
    if test is not None:
        plot_ablation_test(test, ax=ax)
    else:
        ax.axis("off")
    fig.suptitle(f"Evidence for {ev.node}", fontsize=11)
    return save(fig, path)
