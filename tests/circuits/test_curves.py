"""find_curve_detectors on a planted net: curve units named with their directions, decoys never."""
import math

import pytest
import torch
from torch import nn

import featviz as fv
from featviz.circuits import control_counts, curve_scan, find_curve_detectors

S, K, C, SHIFT, RADII, WIDTH = 64, 31, 32.0, 2.0, [4.0, 6.0], 2.0
ARC_LEN = [r * 2 * math.pi / 3 for r in RADII]
CENTRES = [(C, C), (C - SHIFT, C), (C + SHIFT, C), (C, C - SHIFT), (C, C + SHIFT)]


def crop(images):
    """(N, 3, S, S) -> (N, K*K): the grey window a K x K unit centred at pixel (32, 32) reads."""
    h = K // 2
    return images[:, 0, 32 - h:32 + h + 1, 32 - h:32 + h + 1].reshape(len(images), -1)


def arcs(direction, centre):
    return torch.cat([fv.data.curves([direction], S / r, size=S, length=ln / S, width=WIDTH, center=centre)
                      for r, ln in zip(RADII, ARC_LEN)])


def decoy_stimuli(centre):
    lines = fv.data.lines(range(0, 180, 15), [-SHIFT, -SHIFT / 2, 0, SHIFT / 2, SHIFT], size=S,
                          length=max(ARC_LEN) / S, width=WIDTH, center=centre)
    return torch.cat([lines, fv.data.circles(RADII, size=S, width=WIDTH, center=centre),
                      fv.data.circles(RADII, size=S, filled=True, center=centre)])


def curve_unit(direction):
    """Least-squares weights that answer 1 to arcs bulging toward ``direction`` (every radius, at the centre
    and shifted) and 0 to every line, ring, disc and to arcs bulging 90 degrees or more away."""
    pos = torch.cat([crop(arcs(direction, c)) for c in CENTRES])
    neg = torch.cat([crop(decoy_stimuli(c)) for c in CENTRES]
                    + [crop(arcs(direction + o, c)) for c in CENTRES for o in range(90, 271, 15)])
    a = torch.cat([pos, neg]).double()
    b = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).double()[:, None]
    return torch.linalg.lstsq(a, b, driver="gelsd").solution[:, 0].float().reshape(K, K)


def matched(image):
    t = crop(image)[0]
    t = t - t.mean()
    return (t / t.norm()).reshape(K, K)


@pytest.fixture(scope="module")
def planted():
    """Units 0-3: curve detectors bulging 0, 90, 180, 270; 4: a line unit; 5: a ring unit; 6: a blob unit."""
    units = [curve_unit(d) for d in (0, 90, 180, 270)]
    units.append(matched(fv.data.lines([90], size=S, length=max(ARC_LEN) / S, width=WIDTH, center=(C, C))))
    units.append(matched(fv.data.circles([5.0], size=S, width=WIDTH, center=(C, C))))
    units.append(matched(fv.data.circles([5.0], size=S, filled=True, center=(C, C))))
    conv = nn.Conv2d(3, len(units), K, padding=K // 2, bias=False)
    with torch.no_grad():
        for k, w in enumerate(units):
            conv.weight[k] = w / 3
    return nn.Sequential(conv, nn.ReLU()).eval()


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
    line, ring, blob = (scan.summary(c) for c in (4, 5, 6))
    assert line["line"] > line["arc"]  # a line unit: its best line beats its best arc
    assert ring["ring"] > ring["arc"] and blob["disc"] > blob["arc"]
    assert scan.arcs.shape == (5, 24, 2, 7) and scan.lines.shape == (5, 12, 5, 7)


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
    assert scan.summary(0)["drift"] > 90


def test_random_weights_give_no_curve_detectors(planted):
    counts = control_counts(find_curve_detectors, planted, "1", size=S, radii=RADII, shift=SHIFT, width=WIDTH)
    assert counts.trained == 4 and counts.randomized == [0, 0, 0] and counts.ratio == float("inf")


def test_bad_arguments(planted):
    with pytest.raises(ValueError, match="without a channel"):
        curve_scan(planted, "1:0", size=S)
    with pytest.raises(ValueError, match="radii"):
        curve_scan(planted, "1", size=S, radii=[0.0])
    with pytest.raises(KeyError):
        curve_scan(planted, "relu", size=S)
