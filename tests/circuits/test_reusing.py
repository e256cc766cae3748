"""fv.core.reusing: what a layer's channels share is computed once, and nothing stale is ever served.

A planted net whose ablation effects are known by hand: dst channel d reads src channel c with weight
w[d, c]; ablating a set S of src channels changes dst d's mean by -mean(x) * sum_{c in S} w[d, c].
"""
import pytest
import torch
from torch import nn

import featviz as fv
import featviz.circuits._segment as segment
from featviz.circuits.tuning import layer_responses
from featviz.core import reusing

W = torch.tensor([[5.0, 1.0, 0.5, 0.25, 0.1, 0.2, 0.3, 0.4],
                  [0.1, 4.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
                  [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])


class Planted(nn.Module):
    """src: 8 copies of the grey input; dst = W @ src (1 x 1 convs, no bias)."""

    def __init__(self):
        super().__init__()
        self.src = nn.Conv2d(1, 8, 1, bias=False)
        self.dst = nn.Conv2d(8, 3, 1, bias=False)
        with torch.no_grad():
            self.src.weight.fill_(1.0)
            self.dst.weight.copy_(W[:, :, None, None])

    def forward(self, x):
        return self.dst(self.src(x))


@pytest.fixture
def images():
    return torch.rand(6, 1, 5, 5, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def chunks(monkeypatch):
    """How many mask rows went through the network (the segment's real work)."""
    seen = {"rows": 0}
    real = segment._chunk

    def counting(hm, x, src, dst, m, value, position):
        seen["rows"] += len(m)
        return real(hm, x, src, dst, m, value, position)

    monkeypatch.setattr(segment, "_chunk", counting)
    return seen


def hand_effect(images, dst: int, chans) -> float:
    return -float(W[dst, list(chans)].sum() / W[dst].sum())


def test_one_family_test_serves_every_dst_channel_of_the_layer(images, chunks):
    plain = [fv.circuits.ablation_test(Planted(), "src:0,1", f"dst:{d}", images, n_random=9, seed=0)
             for d in range(3)]
    rows_plain = chunks["rows"]
    assert rows_plain == 3 * (2 + 9)                       # base, the set, 9 random sets, per dst channel
    chunks["rows"] = 0
    net = Planted()
    with reusing():
        reused = [fv.circuits.ablation_test(net, "src:0,1", f"dst:{d}", images, n_random=9, seed=0)
                  for d in range(3)]
    distinct = {frozenset(), frozenset({0, 1})} | {frozenset(r.tolist()) for r in reused[0].random_channels}
    assert chunks["rows"] == len(distinct) <= 2 + 9        # the dst channels share every row (a repeated
    #                                                        random set runs once)
    for d, (a, b) in enumerate(zip(plain, reused, strict=True)):
        assert b.effect == pytest.approx(hand_effect(images, d, [0, 1]), rel=1e-5)
        torch.testing.assert_close(b.random_effects, a.random_effects)
        expected = torch.tensor([hand_effect(images, d, s.tolist()) for s in b.random_channels],
                                dtype=torch.float64)
        torch.testing.assert_close(b.random_effects, expected, rtol=1e-5, atol=1e-9)


def test_only_the_new_set_runs_when_the_random_sets_are_shared(images, chunks):
    net = Planted()
    with reusing():
        first = fv.circuits.ablation_test(net, "src:0,1", "dst:0", images, n_random=9, seed=0)
        drawn = {frozenset(r.tolist()) for r in first.random_channels} | {frozenset({0, 1})}
        pairs = ([i, j] for i in range(8) for j in range(i + 1, 8))
        new = next(p for p in pairs if frozenset(p) not in drawn)
        chunks["rows"] = 0
        t = fv.circuits.ablation_test(net, f"src:{new[0]},{new[1]}", "dst:1", images, n_random=9, seed=0)
    assert chunks["rows"] == 1                             # base and the random sets of two: already there
    assert t.effect == pytest.approx(hand_effect(images, 1, new), rel=1e-5)


def test_an_in_place_weight_edit_or_other_photos_are_never_served_an_old_result(images, chunks):
    net = Planted()
    with reusing():
        before = fv.circuits.ablation_test(net, "src:0", "dst:2", images, n_random=4, seed=0)
        with torch.no_grad():
            net.dst.weight[2, 0] = 9.0                     # dst 2 now reads src 0 with 9, the rest with 1
        after = fv.circuits.ablation_test(net, "src:0", "dst:2", images, n_random=4, seed=0)
        other = fv.circuits.ablation_test(net, "src:0", "dst:2", images * 0.5, n_random=4, seed=0)
    assert before.effect == pytest.approx(-1 / 8, rel=1e-5)
    assert after.effect == pytest.approx(-9 / 16, rel=1e-5)
    assert other.base == pytest.approx(0.5 * after.base, rel=1e-5)


def test_layer_responses_are_reused_as_copies(images):
    hm = fv.hooked(Planted())
    with reusing() as store:
        a = layer_responses(hm, "dst", images, "mean")
        a.zero_()                                          # a caller edits its result in place ...
        b = layer_responses(hm, "dst", images, "mean")
    assert sum(len(v) for v in store.values()) == 1
    expected = images.mean((1, 2, 3))[:, None] * W.sum(1)[None]
    torch.testing.assert_close(b, expected)                # ... and the store is unharmed


def test_outside_a_block_nothing_is_remembered(images, chunks):
    net = Planted()
    for _ in range(2):
        fv.circuits.ablation_test(net, "src:0", "dst:0", images, n_random=4, seed=0)
    assert chunks["rows"] == 2 * (2 + 4)
