"""ablation_test: a planted src -> dst weight stands out from random channel sets; hand-checked numbers."""
import json

import pytest
import torch
from torch import nn

import featviz as fv

TINY = 0.01 * torch.arange(1, 17.0)          # dst weight from src channel c: 0.01 (c + 1) ...
TINY_SUM = float(TINY.sum()) - float(TINY[3])  # ... except channel 3, which has 5: 1.32 from the rest


class Planted(nn.Module):
    """src: 16 copies of the (grey) input; dst channel 0 = 5 * src[3] + 0.01 (c + 1) * src[c] (c != 3)."""

    def __init__(self):
        super().__init__()
        self.src = nn.Conv2d(1, 16, 1, bias=False)
        self.drop = nn.Dropout(0.5)          # identity in eval mode only: the test must run in eval
        self.dst = nn.Conv2d(16, 2, 1, bias=False)
        with torch.no_grad():
            self.src.weight.fill_(1.0)
            self.dst.weight.zero_()
            self.dst.weight[0, :, 0, 0] = TINY
            self.dst.weight[0, 3, 0, 0] = 5.0
            self.dst.weight[1, :, 0, 0] = 1.0

    def forward(self, x):
        return self.dst(self.drop(self.src(x)))


@pytest.fixture
def images():
    return torch.rand(10, 1, 9, 9, generator=torch.Generator().manual_seed(0))


def test_planted_channel_effect_matches_hand_value_and_beats_chance(images):
    model = Planted().train()
    t = fv.circuits.ablation_test(model, "src:3", "dst:0", images, n_random=20, seed=0, batch_size=4,
                                  null="others")
    m = float(images.mean())
    assert t.base == pytest.approx(m * (5 + TINY_SUM), rel=1e-5)
    assert t.effect == pytest.approx(-5 / (5 + TINY_SUM), rel=1e-5)        # -0.791: dst loses 5 of 6.32
    assert t.p <= 1 / 21 + 1e-9 and t.z < -20
    assert "stronger than chance" in str(t) and "-79.1 %" in str(t)
    assert model.training and model.drop.training                         # mode restored


def test_random_effects_are_the_hand_values_of_their_channels(images):
    t = fv.circuits.ablation_test(Planted(), "src:3", "dst:0", images, n_random=8, seed=1)
    expected = -TINY[t.random_channels[:, 0]].double() / (5 + TINY_SUM)
    torch.testing.assert_close(t.random_effects, expected, rtol=1e-5, atol=1e-9)


def test_unconnected_channel_is_not_distinguishable_from_chance(images):
    t = fv.circuits.ablation_test(Planted(), "src:7", "dst:0", images, n_random=20, seed=0)
    assert t.effect == pytest.approx(-0.08 / (5 + TINY_SUM), rel=1e-4)
    assert t.p > 0.3 and abs(t.z) < 1.5
    assert str(t).endswith("not distinguishable from chance.")


def test_random_sets_exclude_src_have_its_size_and_follow_the_seed(images):
    a = fv.circuits.ablation_test(Planted(), "src:3,5,-1", "dst:0", images, n_random=30, seed=4,
                                  null="others")
    assert a.src == "src:3,5,15" and a.random_channels.shape == (30, 3)
    assert not torch.isin(a.random_channels, torch.tensor([3, 5, 15])).any()
    assert all(len(set(row.tolist())) == 3 for row in a.random_channels)  # no channel twice in a set
    b = fv.circuits.ablation_test(Planted(), "src:3,5,-1", "dst:0", images, n_random=30, seed=4,
                                  null="others")
    c = fv.circuits.ablation_test(Planted(), "src:3,5,-1", "dst:0", images, n_random=30, seed=5,
                                  null="others")
    assert torch.equal(a.random_channels, b.random_channels)
    assert torch.equal(a.random_effects, b.random_effects)
    assert not torch.equal(a.random_channels, c.random_channels)


def test_center_position_reads_the_map_centre_unit(images):
    t = fv.circuits.ablation_test(Planted(), "src:3", "dst:1", images, n_random=4, position="center")
    assert t.base == pytest.approx(16 * float(images[:, 0, 4, 4].mean()), rel=1e-5)
    assert t.effect == pytest.approx(-1 / 16, rel=1e-5)                   # dst 1 reads 16 channels equally
    torch.testing.assert_close(t.random_effects, torch.full((4,), -1 / 16, dtype=torch.float64))


def test_z_p_and_dict_from_the_numbers():
    t = fv.circuits.AblationTest("a:1,2", "b:0", base=2.0, ablated=1.5, effect=-0.25,
                                 random_effects=torch.tensor([0.0, -0.1, -0.2, 0.1, 0.2]),
                                 random_channels=torch.tensor([[0, 3]] * 5))
    assert t.z == pytest.approx(-0.25 / 0.158113883, rel=1e-6)           # mean 0, std sqrt(0.025)
    assert t.p == pytest.approx((1 + 0) / 6)                              # none as far from the mean as 0.25
    d = json.loads(json.dumps(t.to_dict()))
    assert d["n_random"] == 5 and d["effect"] == -0.25 and d["random_channels"][0] == [0, 3]
    assert t.summary() == ("Zeroing a:1,2 (a set named by the user) changes b:0 by -25.0 %; random sets "
                           "of 2 channels from the rest of the layer: 0.0 ± 15.8 % (5 sets), z = -1.58, "
                           "p = 0.17: not distinguishable from chance (with 5 random sets the smallest "
                           "possible p is 0.17: use n_random >= 99).")


def test_plot_draws_a_line_at_the_effect(tmp_path, images):
    t = fv.circuits.ablation_test(Planted(), "src:3", "dst:0", images, n_random=6)
    fig = t.plot(path=str(tmp_path / "a.png"))
    assert (tmp_path / "a.png").stat().st_size > 0
    assert fig.axes[0].lines[0].get_xdata()[0] == pytest.approx(100 * t.effect)


def test_bad_references_raise_clear_errors(images):
    with pytest.raises(ValueError, match="channels to ablate"):
        fv.circuits.ablation_test(Planted(), "src", "dst:0", images)
    with pytest.raises(ValueError, match="one channel"):
        fv.circuits.ablation_test(Planted(), "src:3", "dst:0,1", images)
    with pytest.raises(ValueError, match="too few"):
        fv.circuits.ablation_test(Planted(), "src:" + ",".join(map(str, range(9))), "dst:0", images,
                                  null="others")
    with pytest.raises(ValueError, match="null must be"):
        fv.circuits.ablation_test(Planted(), "src:3", "dst:0", images, null="everything")
    with pytest.raises(IndexError, match="16 channels"):
        fv.circuits.ablation_test(Planted(), "src:16", "dst:0", images)


def test_default_null_is_the_whole_layer_and_a_singleton_cannot_beat_one_in_sixteen(images):
    # drawn from all 16 channels, about 1 in 16 random singletons IS channel 3: p stays near 1/16, honestly
    t = fv.circuits.ablation_test(Planted(), "src:3", "dst:0", images, n_random=199, seed=0)
    assert t.null == "all 16 channels of src" and bool((t.random_channels == 3).any())
    hits = int((t.random_channels[:, 0] == 3).sum())
    assert t.p == pytest.approx((1 + hits) / 200) and 0.03 < t.p < 0.12


def test_batched_segment_ablations_equal_one_at_a_time_ablations(images):
    class Residual(nn.Module):  # a branch from before src joins after it: the batched path must fall back
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.a = nn.Conv2d(1, 6, 3, padding=1)
            self.src = nn.ReLU()
            self.b = nn.Conv2d(6, 6, 3, padding=1)
            self.dst = nn.ReLU()
            with torch.no_grad():
                for p in self.parameters():
                    p.copy_(torch.randn(p.shape, generator=g))

        def forward(self, x):
            z = self.a(x)
            return self.dst(self.b(self.src(z)) + z)  # z: computed before src, one copy per photo

    for net, dst, value in ((Planted().eval(), "dst:0", 0.0), (Residual(), "dst:2", "mean")):
        mine = fv.circuits.ablation_test(net, "src:1,4", dst, images[:4], n_random=6, seed=2, value=value)
        assert len(set(map(tuple, mine.random_channels.tolist()))) > 1
        for row, eff in zip(mine.random_channels.tolist(), mine.random_effects.tolist()):
            ref = fv.circuits.ablation_effect(net, "src:" + ",".join(map(str, row)), dst, images[:4],
                                              value=value)  # drop = base - ablated, one set at a time
            assert eff == pytest.approx(-ref / abs(mine.base), rel=1e-4, abs=1e-7)


def test_a_depthwise_unit_is_fixed_by_its_wiring_and_gets_no_p_value(images):
    net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8), nn.ReLU())
    torch.manual_seed(0)
    with torch.no_grad():
        net[0].bias.fill_(0.5)
        net[2].weight.abs_()
        net[2].bias.fill_(0.1)
    t = fv.circuits.ablation_test(net, "1:5", "3:5", images, n_random=50)
    assert t.structural and t.reads == [5] and t.p is None and not t.significant
    assert "reads only these channels of 1" in str(t) and "than chance" not in str(t)
    other = fv.circuits.ablation_test(net, "1:2", "3:5", images, n_random=50)  # a channel it never reads
    assert other.structural and other.effect == 0 and "reads none of these channels" in str(other)
    dense = fv.circuits.ablation_test(Planted(), "src:3", "dst:0", images, n_random=20)
    assert not dense.structural and dense.reads == list(range(16))


def test_bootstrap_interval_is_the_effect_when_every_photo_agrees(images):
    # dst 0 is linear in the grey input: every photo (and so every resample) gives the same relative drop
    t = fv.circuits.ablation_test(Planted(), "src:3", "dst:0", images, n_random=20, null="others")
    lo, hi = t.interval
    assert lo == pytest.approx(t.effect, rel=1e-6) and hi == pytest.approx(t.effect, rel=1e-6)
    assert t.n_images == 10 and "95 % CI -79.1 to -79.1 % over 10 photos" in str(t)
    d = json.loads(json.dumps(t.to_dict()))
    assert d["interval"] == pytest.approx([t.effect, t.effect]) and d["null"].startswith("the other 15")


def test_a_descriptive_line_reports_an_effect_and_never_a_verdict(images):
    t = fv.circuits.ablation_test(Planted(), "src:3", "dst:0", images, n_random=20, descriptive=True,
                                  selected_on=5)
    assert t.p is None and not t.significant and "than chance" not in str(t)
    assert "chosen on 5 other photos" in str(t) and "a description, not a test" in str(t)


def test_benjamini_hochberg_matches_the_hand_computed_q_values():
    q, rejected = fv.circuits.benjamini_hochberg([0.01, 0.04, 0.03, 0.5, float("nan")], alpha=0.05)
    # sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.06, 0.0533, 0.5 -> running minimum from the top
    assert q[:4].tolist() == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert rejected.tolist() == [True, False, False, False, False] and q[4] != q[4]


class Fanout(nn.Module):
    """dst channels 0-3 read src channel 3 (weight 2) and every channel a little; dst 4-11 read all evenly."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.src = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU())
        self.dst = nn.Conv2d(16, 12, 1, bias=False)
        with torch.no_grad():
            self.src[0].weight.copy_(torch.randn(16, 1, 3, 3, generator=g))
            self.src[0].bias.fill_(0.3)
            self.dst.weight.copy_(0.1 + 0.02 * torch.rand(12, 16, 1, 1, generator=g))
            self.dst.weight[:4, 3] = 2.0

    def forward(self, x):
        return self.dst(self.src(x))


def test_a_scan_finds_exactly_the_planted_readers_after_bh(images):
    scan = fv.circuits.ablation_scan(Fanout(), "src.1:3", "dst", images, n_random=199, null="others",
                                     alternative="less")
    assert len(scan) == 12 and all(t.q is not None and t.q >= t.p for t in scan.tests)
    assert scan.rejected == [f"dst:{d}" for d in range(4)]


def test_random_nets_say_stronger_than_chance_at_most_at_the_nominal_rate():
    """Calibration: 20 randomly initialised nets x 16 dst units, a random 4-set of src fixed beforehand."""
    hits, tests = 0, 0
    for seed in range(20):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 3), nn.ReLU())
        photos = torch.rand(12, 3, 12, 12, generator=torch.Generator().manual_seed(100 + seed))
        hyp = torch.randperm(16, generator=torch.Generator().manual_seed(200 + seed))[:4].tolist()
        scan = fv.circuits.ablation_scan(net, "1:" + ",".join(map(str, hyp)), "3", photos, n_random=99,
                                         seed=seed)
        ps = [t.p for t in scan.tests]
        hits += sum(p < 0.05 for p in ps)
        tests += len(ps)
    assert tests >= 250
    # nominal 5 %; 2.5 binomial standard deviations of slack for a fixed-seed draw of ~300 correlated units
    assert hits / tests <= 0.05 + 2.5 * (0.05 * 0.95 / tests) ** 0.5, (hits, tests)


def test_the_old_top_k_by_attribution_procedure_fails_that_calibration():
    """Why evidence() calls such a line a description: choosing the set by attribution on the same photos and
    then testing it against random sets says "stronger than chance" on most units of random nets."""
    hits = tests = 0
    for seed in range(10):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 3), nn.ReLU())
        photos = torch.rand(12, 3, 12, 12, generator=torch.Generator().manual_seed(100 + seed))
        for d in (0, 5, 10, 15):
            contrib = fv.circuits.attribute(net, "1", "3", photos, dst_channels=[d])[0]
            top = contrib.argsort(descending=True)[:3]
            try:
                t = fv.circuits.ablation_test(net, "1:" + ",".join(map(str, top.tolist())), f"3:{d}", photos,
                                              n_random=99, null="others", check_wiring=False)
            except ValueError:  # a unit silent on every photo: nothing to test
                continue
            hits, tests = hits + t.significant, tests + 1
    assert tests >= 30 and hits / tests > 0.25  # against a nominal 5 %
