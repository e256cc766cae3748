"""find_curve_detectors on a planted net: curve units named with their directions, decoys never."""
import copy

import pytest
import torch
from curve_models import POSITIVE_BLENDS, RADII, SHIFT, WIDTH, S, calibration_net, planted_curves
from torch import nn

import featviz as fv
from featviz.circuits import CurveCriteria, control_counts, curve_scan, find_curve_detectors


@pytest.fixture(scope="module")
def planted():
    return planted_curves()


def test_curve_units_named_with_their_directions_and_decoys_never(planted):
    found = find_curve_detectors(planted, "1", size=S, radii=RADII, shift=SHIFT, width=WIDTH)
    assert sorted(d.channel for d in found) == [0, 1, 2, 3]
    for d in found:
        planted_dir = 90.0 * d.channel
        assert min(abs(d.direction - planted_dir) % 360, 360 - abs(d.direction - planted_dir) % 360) < 5
        assert d.drift < 10 and d.curve_vs_line > 1.25 and d.curve_vs_blob > 1.0 and d.radius in RADII
        assert d.node == f"1:{d.channel}"


def test_decoys_fail_for_the_right_reason(planted):
    scan = curve_scan(planted, "1", size=S, radii=RADII, shift=SHIFT, width=WIDTH)
    line, ring, blob = (scan.stats(c) for c in (4, 5, 6))
    assert line["line"] > line["arc"]  # a line unit: its best line beats its best arc
    assert ring["ring"] > ring["arc"] and blob["disc"] > blob["arc"]
    assert scan.arcs.shape == (5, 24, 2, 7) and scan.lines.shape == (5, 12, 5, 7)
    per_channel = [scan.stats(c)["curve_vs_line"] for c in range(7)]  # the one-channel path agrees
    assert scan.curve_vs_line().tolist() == pytest.approx(per_channel)


def test_a_unit_whose_direction_flips_with_position_is_rejected(planted):
    class Flip(nn.Module):  # the 0-degree unit left of the centre, the 180-degree unit right of it
        def forward(self, x):
            a = planted(x)
            out = a[:, :1].clone()
            out[..., :, 33:] = a[:, 2:3, :, 33:]
            return out

    net = nn.Sequential(Flip(), nn.Identity())
    assert find_curve_detectors(net, "1", size=S, radii=RADII, shift=SHIFT, width=WIDTH) == []
    scan = curve_scan(net, "1", size=S, radii=RADII, shift=SHIFT, width=WIDTH)
    assert scan.stats(0)["drift"] > 90


def test_random_weights_give_no_curve_detectors(planted):
    counts = control_counts(planted, "1", find_curve_detectors, size=S, radii=RADII, shift=SHIFT, width=WIDTH)
    assert counts.trained == 4 and counts.randomized == [0, 0, 0] and counts.ratio == float("inf")


def test_bad_arguments(planted):
    with pytest.raises(ValueError, match="needs a whole layer: drop the ':c'"):
        curve_scan(planted, "1:0", size=S)
    with pytest.raises(ValueError, match="radii"):
        curve_scan(planted, "1", size=S, radii=[0.0])
    with pytest.raises(KeyError):
        curve_scan(planted, "relu", size=S)


def _scaled(planted, factor, act):
    net = copy.deepcopy(planted)
    with torch.no_grad():
        net[0].weight.mul_(factor)
    net[1] = act
    return net


def test_no_response_is_judged_on_the_layers_own_scale(planted):
    # the same curve units a billion times quieter (a silent control's scale): still curve units
    quiet = _scaled(planted, 1e-9, nn.ReLU())
    found = find_curve_detectors(quiet, "1", size=S, radii=RADII, shift=SHIFT, width=WIDTH)
    assert sorted(d.channel for d in found) == [0, 1, 2, 3]
    scan = curve_scan(quiet, "1", size=S, radii=RADII, shift=SHIFT, width=WIDTH)
    assert scan.tiny < 1e-12 and scan.stats(4)["arc"] > scan.tiny


def test_a_saturated_unit_says_so_and_reports_its_ratios_before_the_clamp(planted):
    loud = _scaled(planted, 20.0, nn.ReLU6())   # arcs drive the curve units to ~20 before ReLU6's 6
    scan = curve_scan(loud, "1", size=S, radii=RADII, shift=SHIFT, width=WIDTH)
    free = curve_scan(_scaled(planted, 20.0, nn.ReLU()), "1", size=S, radii=RADII, shift=SHIFT, width=WIDTH)
    assert scan.ceiling == 6.0 and bool(scan.saturated[:4].all())
    for c in range(4):
        s = scan.stats(c)
        assert s["saturated"] == 1.0 and s["arc"] == pytest.approx(6.0, abs=1e-4)
        # before the clamp: the ratios of the same weights under a plain ReLU (the best responses are > 0)
        assert s["pre_curve_vs_line"] == pytest.approx(free.stats(c)["curve_vs_line"], rel=1e-4)
        assert s["pre_curve_vs_line"] >= s["curve_vs_line"]
    found = {d.channel: d for d in find_curve_detectors(loud, "1", size=S, radii=RADII, shift=SHIFT,
                                                        width=WIDTH)}
    assert all(d.saturated for d in found.values())
    assert not bool(curve_scan(planted, "1", size=S, radii=RADII, shift=SHIFT, width=WIDTH).saturated.any())


@pytest.fixture(scope="module")
def calibration():
    net, labels = calibration_net(directions=(90,))
    return net, labels, curve_scan(net, "1", size=S, radii=RADII, shift=SHIFT, width=WIDTH)


def test_calibrated_defaults_find_every_planted_curve_unit_and_no_decoy(calibration):
    net, labels, scan = calibration
    weakest = POSITIVE_BLENDS.index((0.07, 0.0))                 # arcs beat rings by only ~1.09x
    assert 1.05 < scan.stats(weakest)["curve_vs_blob"] < 1.12
    found = {d.channel for d in scan.detectors()}
    assert found == {i for i, positive in enumerate(labels) if positive}
    old = {d.channel for d in scan.detectors(CurveCriteria(1.25, 1.1, 0.2))}
    assert weakest not in old                                        # the round-number margins missed it


def test_calibrated_defaults_name_no_channel_of_randomized_copies(calibration):
    net, _, _ = calibration
    for seed in (0, 1):
        rnd = curve_scan(fv.models.randomized(net, seed=seed), "1", size=S, radii=RADII, shift=SHIFT,
                         width=WIDTH)
        assert rnd.detectors() == []
