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
    t = fv.circuits.ablation_test(model, "src:3", "dst:0", images, n_random=20, seed=0, batch_size=4)
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
    a = fv.circuits.ablation_test(Planted(), "src:3,5,-1", "dst:0", images, n_random=30, seed=4)
    assert a.src == "src:3,5,15" and a.random_channels.shape == (30, 3)
    assert not torch.isin(a.random_channels, torch.tensor([3, 5, 15])).any()
    assert all(len(set(row.tolist())) == 3 for row in a.random_channels)  # no channel twice in a set
    b = fv.circuits.ablation_test(Planted(), "src:3,5,-1", "dst:0", images, n_random=30, seed=4)
    c = fv.circuits.ablation_test(Planted(), "src:3,5,-1", "dst:0", images, n_random=30, seed=5)
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
    assert t.summary() == ("Zeroing a:1,2 changes b:0 by -25.0 % (random sets of 2 channels: 0.0 ± 15.8 %, "
                           "z = -1.58, p = 0.17): not distinguishable from chance (with 5 random sets the "
                           "smallest possible p is 0.17: use n_random >= 19).")


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
        fv.circuits.ablation_test(Planted(), "src:" + ",".join(map(str, range(9))), "dst:0", images)
    with pytest.raises(IndexError, match="16 channels"):
        fv.circuits.ablation_test(Planted(), "src:16", "dst:0", images)
