"""Universality: match_units finds planted shared units (any channel order); families sorts planted units."""
import pytest
import torch
from torch import nn

import featviz as fv
from featviz.circuits import augment_images, families, match_units, unit_links

PERM = [3, 0, 4, 1, 2]  # net_b's channel c is net_a's planted unit PERM[c] (units 0..4 of 7)


def _net(weight: torch.Tensor) -> nn.Sequential:
    net = nn.Sequential(nn.Conv2d(3, weight.shape[0], 5, padding=2, bias=False), nn.ReLU()).eval()
    with torch.no_grad():
        net[0].weight.copy_(weight)
    return net


@pytest.fixture(scope="module")
def pair():
    """net_a: 5 planted units + 2 of its own; net_b: the 5 planted units permuted + 3 of its own."""
    g = torch.Generator().manual_seed(0)
    planted = torch.randn(5, 3, 5, 5, generator=g)
    net_a = _net(torch.cat([planted, torch.randn(2, 3, 5, 5, generator=g)]))
    net_b = _net(torch.cat([planted[PERM], torch.randn(3, 3, 5, 5, generator=g)]))
    images = augment_images(torch.rand(6, 3, 24, 24, generator=g), n=2)
    return net_a, net_b, images


def test_match_units_recovers_the_permutation(pair):
    net_a, net_b, images = pair
    m = match_units(net_a, "1", net_b, "1", images, seeds=(0, 1), progress=False)
    assert [int(m.best[u]) for u in range(5)] == [PERM.index(u) for u in range(5)]
    assert float(m.best_correlation[:5].min()) > 0.999
    assert m.correlation.shape == (7, 8) and m.control_correlation.shape == (2, 7, 8)
    assert m.n_images == 36 and m.n_positions == 36 * 24 * 24


def test_unmatched_units_stay_near_the_randomized_control(pair):
    net_a, net_b, images = pair
    m = match_units(net_a, "1", net_b, "1", images, seeds=(0, 1, 2), progress=False)
    assert float(m.margin[:5].min()) > 0.2  # planted: well above chance
    assert float(m.margin[5:].abs().max()) < 0.2  # net_a's own units: no better than a random net
    assert [p[0] for p in m.pairs(min_margin=0.2)] == sorted(range(5), key=lambda u: -m.best_correlation[u])


def test_maps_of_different_sizes_are_aligned_on_a_common_grid(pair):
    net_a, _, images = pair
    pooled = nn.Sequential(*net_a, nn.AvgPool2d(2)).eval()  # the same units on a 12x12 map
    m = match_units(net_a, "1", pooled, "2", images, seeds=(), progress=False)
    assert m.grid == (12, 12) and m.best.tolist() == list(range(7))
    assert float(m.best_correlation.min()) > 0.999


class _Shrink(nn.Module):  # resizes its input to 12 px itself, as match_units does for input_size=12
    def forward(self, x):
        return torch.nn.functional.interpolate(x, size=(12, 12), mode="bilinear", antialias=True).clamp(0, 1)


def test_each_model_sees_the_images_at_its_own_input_size(pair):
    net_a, net_b, images = pair
    net_b.input_size = 12
    try:
        m = match_units(net_a, "1", net_b, "1", images, seeds=(), progress=False)
    finally:
        del net_b.input_size
    same = match_units(net_a, "1", nn.Sequential(_Shrink(), *net_b), "2", images, seeds=(), progress=False)
    assert m.grid == (12, 12)
    torch.testing.assert_close(m.correlation, same.correlation, atol=1e-5, rtol=0)


def test_a_stream_of_batches_gives_the_same_matrix(pair):
    net_a, net_b, images = pair
    whole = match_units(net_a, "1", net_b, "1", images, seeds=(), progress=False)
    streamed = match_units(net_a, "1", net_b, "1", (images[k:k + 5] for k in range(0, 36, 5)), seeds=(),
                           progress=False)
    torch.testing.assert_close(streamed.correlation, whole.correlation, atol=1e-5, rtol=0)


def test_unit_links_point_both_ways_and_skip_chance_matches(pair):
    net_a, net_b, images = pair
    m = match_units(net_a, "1", net_b, "1", images, names=("A", "B"), progress=False)
    links = unit_links([m], min_correlation=0.5, min_margin=0.2)
    assert [(u.model, u.node) for u in links[("A", "1:0")]] == [("B", f"1:{PERM.index(0)}")]
    assert links[("B", f"1:{PERM.index(0)}")][0].node == "1:0"
    assert ("A", "1:5") not in links and ("A", "1:6") not in links


def test_plot_draws_pairs_without_computing_renders(pair):
    net_a, net_b, images = pair
    m = match_units(net_a, "1", net_b, "1", images, progress=False)
    fig = m.plot(units=[0, 1], k=2, renders_a={0: torch.rand(3, 8, 8)})
    assert len(fig.axes) == 2 * 6


def _family_net() -> nn.Sequential:
    """conv 7x7: two of the toy's edge detectors (0, 90 deg), a red-vs-cyan unit, a centre-surround unit."""
    toy = fv.models.toy.edges_and_curves()
    w = torch.zeros(4, 3, 7, 7)
    w[:2] = toy.conv1.weight[[0, 2]].detach()
    w[2, :, 3, 3] = torch.tensor([1.0, -0.5, -0.5])  # R - (G + B) / 2: red fields only, zero on greys
    r2 = (torch.arange(7.0) - 3)[:, None] ** 2 + (torch.arange(7.0) - 3)[None] ** 2
    dog = torch.exp(-r2 / 2) / 2 - torch.exp(-r2 / 8) / 8
    w[3] = (dog - dog.mean()).expand(3, 7, 7) / 3  # sums to zero: silent on uniform fields
    net = nn.Sequential(nn.Conv2d(3, 4, 7, padding=3, bias=False), nn.ReLU()).eval()
    with torch.no_grad():
        net[0].weight.copy_(w)
    return net


def test_families_sort_planted_units_by_their_rule():
    fam = families(_family_net(), "1", kinds=["edge", "high-low", "contrast", "colour"], size=32, seeds=(0,))
    assert fam.family_of(0).kind == "edge" and fam.family_of(1).kind == "edge"
    assert fam.family_of(0).label != fam.family_of(1).label
    assert fam.family_of(2).label == "colour red"
    assert fam.family_of(3).label == "contrast bright centre"
    assert set(fam.counts()) == set(fam.control) and all(len(v) == 1 for v in fam.control.values())


def test_families_reject_unknown_kinds():
    with pytest.raises(ValueError, match="unknown family kinds"):
        families(_family_net(), "1", kinds=["texture"], seeds=())
