"""receptive_field: centres against hand arithmetic and against gradient centroids of positive nets."""
import pytest
import torch
from torch import nn

import featviz as fv
from featviz.circuits import receptive_field


def chain_center(layers, position):
    """Centre of unit ``position`` through (kernel, stride, pad_before) convs, last layer first:
    a unit at index i of a layer's output is centred on input index i*s - p + (k-1)/2."""
    c = float(position)
    for k, s, p in reversed(layers):
        c = c * s - p + (k - 1) / 2
    return c


def gradient_centroid(net, layer_index, size, position):
    """The centroid of |d unit / d input| of a net with positive weights (an independent measurement)."""
    x = torch.rand(1, 3, size, size, requires_grad=True)
    a = net[: layer_index + 1](x)
    a[0, 0, position[0], position[1]].backward()
    g = x.grad.abs().sum((0, 1))
    w = g / g.sum()
    idx = torch.arange(size, dtype=torch.float32)
    return float((w.sum(1) * idx).sum()), float((w.sum(0) * idx).sum())


def positive_stack(specs):
    """Convs with all-positive symmetric weights and identity activations (pads given per conv)."""
    layers = []
    c_in = 3
    for k, s, pad in specs:
        if isinstance(pad, tuple):  # TF "SAME": (left, right, top, bottom) zero padding before the conv
            layers.append(nn.ZeroPad2d(pad))
            pad = 0
        conv = nn.Conv2d(c_in, 4, k, stride=s, padding=pad, bias=False)
        nn.init.constant_(conv.weight, 1.0)
        layers.append(conv)
        c_in = 4
    return nn.Sequential(*layers)


def test_single_strided_conv_by_hand():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU())
    rf = receptive_field(net, "1:0", size=16)  # 7x7 map; unit (3, 3) reads rows/cols 6..8
    assert rf.map_size == (7, 7) and rf.position == (3, 3)
    assert rf.center == (7.0, 7.0) and rf.size == (3, 3) and rf.stride == (2.0, 2.0)
    assert rf.offset == (-0.5, -0.5)  # the image centre is 7.5


@pytest.mark.parametrize("size", [32, 33, 40])
def test_strided_padded_stack_matches_chain_rule_and_gradient_centroid(size):
    specs = [(3, 2, 1), (5, 1, 2), (3, 2, 1), (3, 1, 1)]
    net = positive_stack(specs)
    rf = receptive_field(net, f"{len(net) - 1}:0", size=size)
    i, j = rf.position
    assert rf.center == (chain_center(specs, i), chain_center(specs, j))
    assert rf.size == (23, 23)  # 1 + sum of (k - 1) * (product of the strides before): 1 + 2 + 8 + 4 + 8
    cr, cc = gradient_centroid(net, len(net) - 1, size, rf.position)
    assert abs(cr - rf.center[0]) < 0.05 and abs(cc - rf.center[1]) < 0.05


def test_tf_same_stack_matches_chain_rule_and_gradient_centroid():
    # TF "SAME" at stride 2 on an even input pads 0 before and 1 after: the field leans down-right
    specs = [(3, 2, (0, 1, 0, 1)), (3, 1, 1), (3, 2, (0, 1, 0, 1)), (5, 2, (1, 2, 1, 2))]
    net = positive_stack(specs)
    chain = [(3, 2, 0), (3, 1, 1), (3, 2, 0), (5, 2, 1)]
    rf = receptive_field(net, f"{len(net) - 1}:1", size=64)  # 8x8 map, unit (4, 4)
    assert rf.position == (4, 4)
    assert rf.center == (chain_center(chain, 4),) * 2 == (39.0, 39.0)
    assert rf.offset == (7.5, 7.5)
    cr, cc = gradient_centroid(net, len(net) - 1, 64, (4, 4))
    assert abs(cr - 39.0) < 0.05 and abs(cc - 39.0) < 0.05


def test_field_larger_than_the_image_is_extrapolated():
    specs = [(7, 1, 3)] * 6  # a 37 px field on a 16 px image
    net = positive_stack(specs)
    rf = receptive_field(net, "5:0", size=16, position=(3, 12))
    assert rf.method == "exact" and rf.size == (37, 37)
    assert rf.center == (3.0, 12.0)


def test_efficientnet_offsets_follow_tf_same_padding(effnet):
    # stem 3x3/2 (pad 0 before), blocks.0 dw 3x3/1, blocks.1 dw 3x3/2 (pad 0 before): by hand
    chain = [(3, 2, 0), (3, 1, 1), (1, 1, 0), (3, 2, 0)]
    rf = receptive_field(effnet, "blocks.1.depthwise_relu:5", size=64)
    assert rf.position == (8, 8) and rf.center == (chain_center(chain, 8),) * 2
    assert rf.offset == (3.5, 3.5)
    rf4 = receptive_field(effnet, "blocks.4:36", size=128)
    assert rf4.stride == (8.0, 8.0) and rf4.offset == (7.5, 7.5)
    assert rf4.center[0] == 8 * 8 + 7.0


def test_measured_fallback_for_layernorm_agrees_with_exact_geometry():
    class ChannelNorm(nn.Module):  # a parametrised layer the surrogate cannot stand in for
        def __init__(self):
            super().__init__()
            self.norm = nn.GroupNorm(1, 4)

        def forward(self, x):
            return self.norm(x)

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 5, stride=2, padding=2), ChannelNorm(), nn.Conv2d(4, 4, 3, padding=1))
    with torch.no_grad():
        net[0].weight.abs_()
        net[2].weight.abs_()
    rf = receptive_field(net, "2:0", size=32)
    assert rf.method == "measured"
    # GroupNorm mixes the whole map, so the measured centroid sits near (not exactly on) the unit's centre
    assert abs(rf.center[0] - chain_center([(5, 2, 2), (3, 1, 1)], 8)) < 2.0
    with pytest.raises(ValueError, match="method='measured'"):
        receptive_field(net, "2:0", size=32, method="exact")


def test_bad_references():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())
    with pytest.raises(IndexError, match="4 channels"):
        receptive_field(net, "0:9", size=8)
    with pytest.raises(ValueError, match="spatial"):
        receptive_field(net, "1", size=8)
    with pytest.raises(IndexError, match="outside"):
        receptive_field(net, "0:1", size=8, position=(6, 0))
    with pytest.raises(ValueError, match="one unit"):
        receptive_field(net, "0:1,2", size=8)
    with pytest.raises(KeyError):
        receptive_field(net, "conv", size=8)


def test_model_untouched_and_mode_restored():
    net = fv.models.toy.edges_and_curves().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rf = receptive_field(net, "relu2:0", size=31)
    assert rf.center == (15.0, 15.0) and rf.size == (15, 15)  # 7x7 then 9x9, stride 1
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
