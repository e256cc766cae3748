"""fv.viz.explore / explore_conv: the graph built, the expansion callback (on the hand-wired toy whose wiring
is known), the SVG hover patterns, the static fallback without a widget front end, and the conv geometry."""
from __future__ import annotations

import base64
import importlib
import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

import featviz as fv  # noqa: E402

explore_mod = importlib.import_module("featviz.viz.explore")   # the module (fv.viz.explore is the function)


@pytest.fixture(scope="module")
def toy():
    return fv.models.toy.edges_and_curves()


def _planted(toy, k: int) -> dict[str, float]:
    return {f"relu1:{c}": w for c, _, _, w in toy.ground_truth["conv2"][k]["inputs"]}


def test_graph_starts_with_the_root_and_its_planted_inputs(toy):
    ex = fv.viz.explore(toy, "relu2:1", top_k=4)
    assert ex.root == "relu2:1" and ex.nodes[0] == "relu2:1"
    planted = _planted(toy, 1)                                  # edges 2, 3, 1 (+1) and 6 (-1)
    assert set(ex.nodes[1:]) == set(planted)
    for e in ex.upstream("relu2:1"):
        assert e.dst == "relu2:1" and e.strength == pytest.approx(planted[e.src])
        assert tuple(e.pattern.shape) == (9, 9)


def test_expansion_callback_adds_exactly_the_upstream_units(toy):
    ex = fv.viz.explore(toy, "relu2:4", top_k=3, expand=False)
    assert ex.nodes == ["relu2:4"] and not ex.edges
    calls = []
    ex._on_change.append(lambda: calls.append(ex.selected))
    new = ex.click("relu2:4")                                   # corner unit: inputs 0 and 2 only
    assert sorted(new) == sorted(_planted(toy, 4)) == ["relu1:0", "relu1:2"] or len(new) == 3
    assert set(_planted(toy, 4)) <= set(new)
    assert calls == ["relu2:4"] and ex.selected == "relu2:4"
    assert ex.click("relu2:4") == []                             # expanding twice adds nothing
    n_edges = len(ex.edges)
    assert ex.click("relu1:0") == [] and ex.selected == "relu1:0"  # nothing upstream of the first layer
    assert len(ex.edges) == n_edges and "relu1:0" in ex.expanded


def test_expand_unknown_node_names_the_graph(toy):
    ex = fv.viz.explore(toy, "relu2:0", top_k=2, expand=False)
    with pytest.raises(KeyError, match="relu2:0"):
        ex.expand("relu2:5")


def test_positions_put_upstream_units_left_of_the_root(toy):
    ex = fv.viz.explore(toy, "relu2:0", top_k=4)
    pos = ex.positions()
    assert all(pos[n][0] < pos["relu2:0"][0] for n in ex.nodes[1:])
    assert len({pos[n] for n in ex.nodes}) == len(ex.nodes)


def test_svg_carries_each_edge_with_its_weight_pattern(toy):
    ex = fv.viz.explore(toy, "relu2:1", top_k=4)
    svg = ex._svg()
    assert svg.count('class="fv-edge"') == len(ex.edges) == 4
    assert svg.count('class="fv-pat"') == 4 and ".fv-edge:hover .fv-pat" in svg
    assert "relu1:6 → relu2:1: strength -1.000" in svg


def test_static_fallback_without_a_widget_front_end(toy):
    assert not explore_mod.widgets_available()                  # pytest: no Jupyter kernel
    ex = fv.viz.explore(toy, "relu2:1", top_k=2)
    bundle = ex._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "image/png"}
    assert len(ex.nodes) == 3 and bundle["text/plain"] == "CircuitExplorer('relu2:1', 3 nodes)"
    png = Image.open(io.BytesIO(base64.b64decode(bundle["image/png"])))
    assert png.format == "PNG" and min(png.size) > 100
    assert len(np.unique(np.asarray(png.convert("L")))) > 10      # a drawing, not a blank canvas
    fig = ex.figure()
    assert isinstance(fig, Figure)
    drawn = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert set(ex.nodes) <= drawn, drawn                        # every node is labelled in the static view


def test_side_panel_details_are_computed_once(toy):
    ex = fv.viz.explore(toy, "relu2:6", top_k=1, render_size=32, render_steps=4, evidence=False,
                        images=torch.rand(3, 3, 32, 32))
    d = ex.details()
    assert d["node"] == "relu2:6" and tuple(d["render"].shape) == (3, 32, 32)
    assert d["examples"].images.shape[0] == 3
    assert ex.details() is d
    assert isinstance(ex.figure(details=True), Figure)


def test_widget_builds_when_ipywidgets_is_installed(toy):
    pytest.importorskip("ipywidgets")
    ex = fv.viz.explore(toy, "relu2:6", top_k=1, render_size=32, render_steps=2, evidence=False)
    w = ex.widget()
    graph_box, panel = w.children
    graph, buttons = graph_box.children
    assert "<svg" in graph.value
    assert [b.description for col in buttons.children for b in col.children] == ex.nodes[::-1] or \
        sorted(b.description for col in buttons.children for b in col.children) == sorted(ex.nodes)
    button = next(b for col in buttons.children for b in col.children if b.description != ex.root)
    button.click()                                              # the expansion callback through the widget
    assert ex.selected == button.description


@pytest.mark.parametrize("size, k, s, p", [(7, 3, 2, 1), (28, 3, 2, 1), (10, 4, 3, 2), (5, 5, 1, 0)])
def test_conv_explorer_geometry_matches_torch(size, k, s, p):
    ex = fv.viz.explore_conv(size, kernel_size=k, stride=s, padding=p, in_channels=2, out_channels=3)
    want = torch.nn.functional.conv2d(torch.zeros(1, 2, size, size), torch.zeros(3, 2, k, k), stride=s,
                                      padding=p).shape[1:]
    assert ex.shape() == tuple(want)
    assert tuple(ex.output().shape) == tuple(want)               # as_strided + einsum == F.conv2d inside
    # the window view itself, against F.unfold's windows of a numbered input
    x = torch.arange(2.0 * size * size).reshape(1, 2, size, size)
    xp = torch.nn.functional.pad(x, [p] * 4).contiguous()[0]
    windows = xp.as_strided(*ex.view())                         # (C, H_out, W_out, k, k)
    unfolded = torch.nn.functional.unfold(x, k, padding=p, stride=s)[0]   # (C * k * k, H_out * W_out)
    n = want[-1]
    torch.testing.assert_close(windows.permute(0, 3, 4, 1, 2).reshape(2 * k * k, n * n), unfolded)
    assert isinstance(ex.figure(1, 1), Figure)
    assert set(ex._repr_mimebundle_()) == {"text/plain", "image/png"}


def test_conv_explorer_refuses_a_kernel_that_does_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        fv.viz.explore_conv(3, kernel_size=7, padding=1)


def test_side_panel_flags_a_dead_render_as_no_response():
    """Issue 25: a failed render is shown as "no response found", as in notebook 04 and circuit diagrams."""
    from test_no_response import net_with_a_dead_unit  # tests/viz: a unit that nothing can switch on

    net = net_with_a_dead_unit()
    ex = fv.viz.explore(net, "1:0", top_k=1, expand=False, render_size=16, render_steps=4, evidence=False)
    d = ex.details()
    assert d["dead"] is True
    fig = ex.figure(details=True)
    assert any("no response\nfound" == t.get_text() for ax in fig.axes for t in ax.texts)
    live = fv.viz.explore(net, "1:1", top_k=1, expand=False, render_size=16, render_steps=4, evidence=False)
    assert live.details()["dead"] is False
    assert not any("no response" in t.get_text() for ax in live.figure(details=True).axes for t in ax.texts)
