"""Dead renders (``Rendering.dead``) are drawn as "no response found" in figures and circuit diagrams."""
import copy

import matplotlib
import numpy as np
import torch
from torch import nn

import featviz as fv
from featviz.circuits.trace import Circuit, Edge
from featviz.optvis import Rendering
from featviz.optvis.rendering import no_response_tile
from featviz.viz.circuit_plot import plot_circuit, thumbnails_for

matplotlib.use("Agg")


def net_with_a_dead_unit():
    """Unit "1:0" = ReLU(-1) = 0 for every image (zero weights: nothing can revive it); "1:1" = ReLU(G)."""
    net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU(), nn.Conv2d(2, 1, 1), nn.ReLU())
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net[0].bias[0] = -1.0
        net[0].weight[1, 1] = 1.0
        net[2].weight[0, 1] = 1.0
    return net.eval()


def texts(ax):
    return [t.get_text() for t in ax.texts]


def test_image_grid_of_a_rendering_draws_the_dead_item_as_no_response():
    acts = torch.tensor([0.0, 2.0])  # both images flat grey; only item 0 has no response
    r = Rendering(torch.full((2, 3, 8, 8), 0.5), torch.zeros(1, 2), acts, ["a:0", "a:1"], "o")
    fig = fv.viz.image_grid(r)
    dead_ax, live_ax = fig.axes
    assert np.allclose(dead_ax.images[0].get_array(), no_response_tile(8, 8).permute(1, 2, 0).numpy())
    assert texts(dead_ax) == ["no response\nfound"] and texts(live_ax) == []
    assert float(np.asarray(live_ax.images[0].get_array()).std()) == 0.0  # a live item shows its own image
    assert [ax.get_title() for ax in fig.axes] == ["a:0", "a:1"]


def test_thumbnails_for_gives_the_tile_for_a_dead_node_also_from_the_disk_cache(tmp_path):
    net = net_with_a_dead_unit()
    nodes = ["1:0", "1:1"]
    thumbs = thumbnails_for(net, nodes, size=16, steps=4, cache_dir=tmp_path)
    assert torch.equal(thumbs["1:0"], no_response_tile(16, 16))
    assert not torch.equal(thumbs["1:1"], no_response_tile(16, 16))
    again = thumbnails_for(copy.deepcopy(net), nodes, size=16, steps=4, cache_dir=tmp_path)  # read from files
    assert all(torch.equal(thumbs[n], again[n]) for n in nodes) and len(list(tmp_path.iterdir())) == 2


def test_circuit_plot_marks_the_dead_node_no_response_found():
    net = net_with_a_dead_unit()
    c = Circuit("3:0", ["3:0", "1:0", "1:1"], [Edge("1:0", "3:0", 0.0, torch.zeros(1, 1)),
                                                Edge("1:1", "3:0", 1.0, torch.ones(1, 1))], "weights")
    fig = plot_circuit(c, thumbnails=thumbnails_for(net, c, size=16, steps=4))
    node_axes = {t: ax for ax in fig.axes for t in texts(ax) if t in c.nodes}
    assert "no response\nfound" in texts(node_axes["1:0"])
    assert all("no response\nfound" not in texts(node_axes[n]) for n in ("3:0", "1:1"))
