"""Polyphase input gradient of strided stem convolutions: equal to autograd's, scoped, forward unchanged."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from featviz.optvis._polyphase import conv2d_input_grad, polyphase_stems


@pytest.mark.parametrize("k, stride, pad, size", [
    ((7, 7), (2, 2), 3, (17, 16)), ((5, 4), (3, 2), 1, (13, 11)), ((11, 11), (4, 4), 2, (31, 31)),
    ((2, 2), (2, 2), 0, (9, 8)),
])
def test_input_grad_equals_autograds(k, stride, pad, size):
    torch.manual_seed(0)
    w, x = torch.randn(5, 3, *k), torch.randn(2, 3, *size, requires_grad=True)
    y = F.conv2d(x, w, stride=stride, padding=pad)
    g = torch.randn_like(y)
    want = torch.autograd.grad(y, x, g)[0]
    torch.testing.assert_close(conv2d_input_grad(g, w, size, stride, (pad, pad)), want, atol=1e-5, rtol=1e-5)


def test_stem_with_inplace_relu_same_values_and_gradient_and_forward_restored():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 7, stride=2, padding=3), nn.ReLU(inplace=True)).requires_grad_(False)
    x = torch.rand(2, 3, 21, 21, requires_grad=True)
    y = net(x)
    want = torch.autograd.grad(y.square().sum(), x)[0]
    with polyphase_stems(net) as names:
        y2 = net(x)
        got = torch.autograd.grad(y2.square().sum(), x)[0]
    assert names == ["0"] and torch.equal(y2, y) and "forward" not in net[0].__dict__
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
