"""featviz.nn layers: lesson example, init statistics, repr, torch-compatible state dicts, BatchNorm."""
import math

import pytest
import torch
from torch import nn

import featviz as fv


@pytest.mark.parametrize("backend", ["torch", "strided"])
def test_lesson_worked_example_shape_and_values(backend):
    conv = fv.nn.Conv2d(3, 5, kernel_size=3, stride=2, padding=1, backend=backend)
    x = torch.rand(1, 3, 28, 28)
    y = conv(x)
    assert y.shape == (1, 5, 14, 14)  # floor((28 + 2 - 3)/2 + 1) = 14
    ref = nn.functional.conv2d(x, conv.weight, conv.bias, stride=2, padding=1)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    # one output pixel by hand: the window of output (3, 5) starts at padded (6, 10) = input (5, 9)
    by_hand = (x[0, :, 5:8, 9:12] * conv.weight[2]).sum() + (0 if conv.bias is None else conv.bias[2])
    torch.testing.assert_close(y[0, 2, 3, 5], by_hand, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups, bound", [(1, 1 / math.sqrt(64 * 9)), (64, 1 / 3)])
def test_conv_init_is_uniform_within_kaiming_bound(groups, bound):
    torch.manual_seed(0)
    w = torch.cat([fv.nn.Conv2d(64, 128, 3, groups=groups).weight.detach().flatten() for _ in range(4)])
    assert w.max() <= bound and w.min() >= -bound
    assert w.max() > 0.99 * bound and w.min() < -0.99 * bound      # fills the whole range
    assert abs(w.mean()) < 0.02 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.03)  # std of U(-b, b)


def test_bias_and_linear_init_use_the_same_bound():
    torch.manual_seed(0)
    conv, lin = fv.nn.Conv2d(8, 4096, 2, bias=True), fv.nn.Linear(16, 4096)
    for tensor, bound in ((conv.bias, 1 / math.sqrt(32)), (lin.weight, 0.25), (lin.bias, 0.25)):
        tensor = tensor.detach()
        assert tensor.abs().max() <= bound and tensor.abs().max() > 0.99 * bound
        assert abs(tensor.mean()) < 0.05 * bound


def test_conv_bias_is_off_by_default_as_in_the_lesson():
    assert fv.nn.Conv2d(3, 5, 3).bias is None
    assert list(fv.nn.Conv2d(3, 5, 3).state_dict()) == ["weight"]


def test_reprs_are_informative():
    assert repr(fv.nn.Conv2d(24, 12, 3, stride=2, padding=1)) == (
        "Conv2d(in_channels=24, out_channels=12, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
        "bias=False)")
    assert repr(fv.nn.Conv2d(8, 8, 3, padding=(0, 1, 0, 1), groups=8, bias=True, backend="strided")) == (
        "Conv2d(in_channels=8, out_channels=8, kernel_size=(3, 3), stride=(1, 1), padding=(0, 1, 0, 1), "
        "groups=8, bias=True, backend='strided')")
    assert repr(fv.nn.MaxPool2d(3, 2)) == "MaxPool2d(kernel_size=3, stride=2, padding=1)"
    assert repr(fv.nn.Linear(4, 2)) == "Linear(in_features=4, out_features=2, bias=True)"


@pytest.mark.parametrize("bias", [False, True])
def test_conv_state_dict_round_trips_with_torch(bias):
    ours = fv.nn.Conv2d(6, 4, (3, 2), stride=2, padding=1, groups=2, bias=bias)
    theirs = nn.Conv2d(6, 4, (3, 2), stride=2, padding=1, groups=2, bias=bias)
    ours.load_state_dict(theirs.state_dict())
    x = torch.rand(2, 6, 9, 9)
    torch.testing.assert_close(ours(x), theirs(x))
    fresh = nn.Conv2d(6, 4, (3, 2), stride=2, padding=1, groups=2, bias=bias)
    fresh.load_state_dict(ours.state_dict())
    torch.testing.assert_close(fresh(x), theirs(x))


def test_batchnorm_and_linear_state_dicts_are_torchs():
    for ours, theirs in ((fv.nn.BatchNorm2d(5), nn.BatchNorm2d(5)), (fv.nn.Linear(5, 3), nn.Linear(5, 3))):
        assert list(ours.state_dict()) == list(theirs.state_dict())
        theirs.load_state_dict(ours.state_dict())  # and back
        ours.load_state_dict(theirs.state_dict())


@pytest.mark.parametrize("backend", ["torch", "strided"])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_training_updates_like_torch(backend, momentum):
    ours = fv.nn.BatchNorm2d(3, momentum=momentum, backend=backend)
    theirs = nn.BatchNorm2d(3, momentum=momentum)
    for step in range(3):
        x = torch.randn(4, 3, 5, 5) * (step + 1) + step
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.state_dict(), theirs.state_dict())
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "strided"])
def test_asymmetric_padding_is_tf_same_at_stride_2(backend):
    # padding (left, right, top, bottom): nothing before, one row/column after
    conv = fv.nn.Conv2d(3, 4, 3, stride=2, padding=(0, 1, 0, 1), backend=backend)
    x = torch.rand(1, 3, 8, 8)
    padded = torch.cat([torch.cat([x, torch.zeros(1, 3, 8, 1)], 3), torch.zeros(1, 3, 1, 9)], 2)
    expected = nn.functional.conv2d(padded, conv.weight, stride=2)
    torch.testing.assert_close(conv(x), expected)
    assert conv(x).shape == (1, 4, 4, 4)  # TF "SAME": ceil(8 / 2)


@pytest.mark.parametrize("backend", ["torch", "strided"])
def test_pool_layers_match_torch_layers(backend):
    x = torch.randn(2, 3, 11, 11)
    pairs = [(fv.nn.MaxPool2d(3, 2, ceil_mode=True), nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)),
             (fv.nn.AvgPool2d(3, 2, 1), nn.AvgPool2d(3, 2, 1)),
             (fv.nn.AdaptiveAvgPool2d((3, 4)), nn.AdaptiveAvgPool2d((3, 4)))]
    for ours, theirs in pairs:
        ours.backend = backend
        torch.testing.assert_close(ours(x), theirs(x))


def test_flatten_relu_relu6_layers():
    x = torch.tensor([[-1.0, 3.0, 8.0]])
    with fv.nn.use_backend("strided"):
        assert torch.equal(fv.nn.ReLU()(x), torch.tensor([[0.0, 3.0, 8.0]]))
        assert torch.equal(fv.nn.ReLU6()(x), torch.tensor([[0.0, 3.0, 6.0]]))
    assert fv.nn.Flatten()(torch.rand(2, 3, 4, 5)).shape == (2, 60)
