"""evidence(): each line of evidence against a planted answer (the toy's wiring, the planted curve units)."""
import json

import pytest
import torch
from curve_models import RADII, SHIFT, WIDTH, S, planted_curves

import featviz as fv
from featviz.circuits import curve_scan, evidence


@pytest.fixture(scope="module")
def toy():
    return fv.models.toy.edges_and_curves()


def test_upstream_and_ablation_follow_the_toy_wiring(toy):
    ev = evidence(toy, "relu2:1", render=False, n_random=10)
    wired = {c for c, _, _, w in toy.ground_truth["conv2"][1]["inputs"] if w > 0}  # edges 1, 2, 3
    assert ev.upstream == "relu1"
    assert {c for c, _ in ev.excitatory} == wired
    assert all(c == 6 for c, _ in ev.inhibitory)  # the only inhibitory input there is
    # zeroing every excitatory input silences the unit (bias -1): a -100 % change
    assert ev.ablation is not None and ev.ablation.effect == pytest.approx(-1.0)
    assert set(ev.top[0:1]) and ev.top[0][1] >= ev.bottom[0][1]
    d = json.loads(json.dumps(ev.to_dict()))
    assert d["upstream"]["layer"] == "relu1" and d["feature_visualization"]["activation"] is None


def test_verdict_sentences_carry_the_numbers(toy):
    ev = evidence(toy, "relu2:1", render=False, n_random=10)
    text = " ".join(ev.verdict)
    rf = ev.rf
    assert f"{rf.size[0]}x{rf.size[1]} px field" in text
    assert f"ranks {ev.curve_rank} of {ev.n_channels}" in text
    # the toy's curve units read an arc passing 2 px outside their centre: at the centre, none responds
    assert ev.curve["arc"] == 0 and "no arc at the receptive-field centre evokes a response" in text
    assert ev.ablation.summary() in ev.verdict


def test_planted_curve_unit_passes_with_its_direction():
    net = planted_curves()
    scan = curve_scan(net, "1", size=S, radii=RADII, shift=SHIFT, width=WIDTH)
    ev = evidence(net, "1:1", torch.rand(4, 3, S, S), scan=scan, render=False, upstream=None)
    assert ev.curve["passes"] == 1.0 and abs(ev.curve["direction"] - 90) < 5
    assert ev.curve_rank <= 4  # one of the four curve units has the top arc/line ratio
    assert "Curve tests: passes" in " ".join(ev.verdict)
    ev_line = evidence(net, "1:4", torch.rand(4, 3, S, S), scan=scan, render=False, upstream=None)
    assert ev_line.curve["passes"] == 0.0 and "Curve tests: fails" in " ".join(ev_line.verdict)


def test_render_line_and_plot(toy, tmp_path):
    ev = evidence(toy, "relu1:2", render=fv.optvis.RenderSettings(size=24, steps=8), n_random=4)
    assert ev.render_image.shape == (3, 24, 24) and ev.render_activation == ev.render_activation  # not NaN
    fig = ev.plot(path=tmp_path / "ev.png")
    assert (tmp_path / "ev.png").stat().st_size > 1000 and len(fig.axes) >= 8


def test_bad_node(toy):
    with pytest.raises(ValueError, match="one channel"):
        evidence(toy, "relu2", render=False)
    with pytest.raises(IndexError, match="7 channels"):
        evidence(toy, "relu2:9", render=False)


class FamilyNet(torch.nn.Module):
    """dst:0 reads channels 0-5 of src (weight 1) and every other channel a little (0.02); dst:1 only 7."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.src = torch.nn.Sequential(torch.nn.Conv2d(3, 24, 3, padding=1), torch.nn.ReLU())
        self.mix = torch.nn.Conv2d(24, 24, 1, bias=False)
        self.dst = torch.nn.ReLU()
        with torch.no_grad():
            self.src[0].weight.copy_(torch.randn(24, 3, 3, 3, generator=g))
            self.src[0].bias.fill_(0.2)
            self.mix.weight.zero_()
            self.mix.weight[0, :, 0, 0] = 0.02
            self.mix.weight[0, :6, 0, 0] = 1.0
            self.mix.weight[1, 7, 0, 0] = 1.0  # dst:1 reads channel 7 only

    def forward(self, x):
        return self.dst(self.mix(self.src(x)))


@pytest.fixture(scope="module")
def family_net():
    net = FamilyNet()
    photos = torch.rand(12, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    scan = curve_scan(net, "dst", size=32, radii=[4.0], shift=2)
    return net, photos, scan


def test_a_planted_family_is_found_and_an_unwired_one_is_not(family_net):
    net, photos, scan = family_net
    ev = evidence(net, "dst:0", photos, upstream="src.1", scan=scan, random_scan=scan, render=False,
                  hypothesis=("the planted family", range(6)))
    t = ev.family_test
    assert t.hypothesis == "the planted family" and t.null == "all 24 channels of src.1"
    assert t.significant and t.p <= 0.01 and t.effect < -0.5 and "stronger than chance" in ev.verdict[-1]
    assert ev.ablation.descriptive and ev.ablation.n_images == 6 and ev.selected_on == 6
    other = evidence(net, "dst:0", photos, upstream="src.1", scan=scan, random_scan=scan, render=False,
                     hypothesis=list(range(12, 18)))
    assert not other.family_test.significant and "not distinguishable from chance" in other.verdict[-1]
    # only a family test may compare with chance; the attribution-chosen set is a description
    for e in (ev, other):
        assert sum("than chance" in s for s in e.verdict) <= 1 and "than chance" not in e.ablation.summary()
    d = json.loads(json.dumps(ev.to_dict()))
    assert d["family_test"]["hypothesis"] == "the planted family" and d["ablation"]["p"] is None


def test_a_unit_fixed_by_its_wiring_gets_no_p_value_in_evidence(family_net):
    net, photos, scan = family_net
    ev = evidence(net, "dst:1", photos, upstream="src.1", scan=scan, random_scan=scan, render=False,
                  hypothesis=[7])
    assert ev.family_test.structural and ev.family_test.p is None
    assert "fixed by the wiring" in ev.verdict[-1] and not any("than chance" in s for s in ev.verdict)


def test_old_render_keywords_map_onto_render_settings_with_a_warning():
    from featviz.circuits.evidence import _render_settings

    assert _render_settings(True, {}, 224, 3) == fv.optvis.RenderSettings(size=128, steps=128, seed=3)
    with pytest.warns(DeprecationWarning, match="RenderSettings"):
        old = _render_settings(True, {"render_size": 40, "render_steps": 8}, 224, 0)
    assert old == fv.optvis.RenderSettings(size=40, steps=8, seed=0)
    with pytest.raises(TypeError, match="render_stepz"):
        _render_settings(True, {"render_stepz": 8}, 224, 0)
