"""weights / expanded_weights against the planted wiring and hand-built linear maps."""
import pytest
import torch
import torch.nn.functional as F
from circuit_models import planted
from torch import nn

from featviz.circuits import expanded_weights, weights


def bn2_scale(model):
    bn = model.bn2
    return bn.weight / torch.sqrt(bn.running_var + bn.eps)


def test_weights_return_planted_wiring_with_bn_folded(wired):
    expected = planted() * bn2_scale(wired)[:, None, None, None]
    assert torch.allclose(weights(wired, "relu1", "relu2", size=32), expected, atol=1e-6)


def test_expanded_weights_equal_planted_wiring_for_adjacent_layers(wired):
    expected = planted() * bn2_scale(wired)[:, None, None, None]
    got = expanded_weights(wired, "conv1", "bn2", size=32, progress=False)
    assert torch.allclose(got, expected, atol=1e-6)


def test_expanded_weights_through_maxpool_match_hand_linear_map(wired):
    w2 = (planted() * bn2_scale(wired)[:, None, None, None]).detach()
    w3 = wired.conv3.weight.detach()

    def linear(a):  # relu1 -> conv2 (BN folded) -> avg pool (max pool linearised) -> conv3, no biases
        return F.conv2d(F.avg_pool2d(F.conv2d(a, w2, padding=2), 2), w3)

    a = torch.zeros(1, 8, 32, 32, requires_grad=True)
    out = linear(a)  # (1, 3, 14, 14), centre (7, 7) reads relu1 rows/cols 12..21
    rows = torch.stack([torch.autograd.grad(out[0, o, 7, 7], a, retain_graph=True)[0][0] for o in range(3)])
    got = expanded_weights(wired, "relu1", "conv3", size=32, progress=False)
    assert got.shape == (3, 8, 10, 10)
    assert torch.allclose(got, rows[:, :, 12:22, 12:22], atol=1e-5)


def test_weights_refuse_layers_with_pooling_between(wired):
    with pytest.raises(ValueError, match="not directly connected.*MaxPool2d"):
        weights(wired, "relu2", "conv3", size=32)


def _mbconv_like():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU6(), nn.Conv2d(4, 4, 3, padding=1, groups=4),
                        nn.BatchNorm2d(4), nn.ReLU6(), nn.Conv2d(4, 5, 1)).eval()
    net[3].weight.data.uniform_(0.5, 2)
    net[3].running_var.uniform_(0.5, 2)
    return net


def test_weights_compose_through_a_depthwise_conv():
    net = _mbconv_like()
    dw, pw, bn = net[2].weight[:, 0], net[5].weight[:, :, 0, 0], net[3]
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    expected = pw[:, :, None, None] * (scale[:, None, None] * dw)[None]  # (5, 4, 3, 3)
    assert torch.allclose(weights(net, "1", "5", size=16), expected.detach(), atol=1e-6)


def test_weights_of_a_depthwise_dst_are_diagonal():
    net = _mbconv_like()
    bn = net[3]
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    w = weights(net, "0", "4", size=16)
    expected = torch.zeros(4, 4, 3, 3)
    expected[range(4), range(4)] = net[2].weight[:, 0].detach() * scale[:, None, None]
    assert torch.allclose(w, expected, atol=1e-6)


def test_effnet_residual_add_is_named_in_the_error(effnet):
    with pytest.raises(ValueError, match="residual add"):
        weights(effnet, "blocks.2.project_bn", "blocks.3.expand_conv")


def test_effnet_block_output_to_next_expand_conv_is_the_folded_kernel(effnet):
    conv, bn = effnet.blocks[3].expand_conv, effnet.blocks[3].expand_bn
    expected = conv.weight * (bn.weight / torch.sqrt(bn.running_var + bn.eps))[:, None, None, None]
    assert torch.allclose(weights(effnet, "blocks.2", "blocks.3.expand_relu"), expected.detach(), atol=1e-6)
