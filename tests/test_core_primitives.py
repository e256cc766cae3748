"""The one-home primitives of featviz.core / featviz.hooks: evaluating, as_images, the elementwise table,
HookedModel.unit / layer / stream (issue 19)."""
import warnings

import pytest
import torch
from torch import nn

import featviz as fv
from featviz import errors
from featviz.core import ACTIVATIONS, ELEMENTWISE, PASS_THROUGH, as_images, evaluating, module_layout


def _bn_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))


# -- evaluating ----------------------------------------------------------------------------------------
def test_evaluating_freezes_and_restores_grads_modes_and_buffers_on_error():
    net = _bn_net().train()
    net[3].weight.requires_grad_(False)  # a mixed starting state must come back as it was
    before = [p.requires_grad for p in net.parameters()]
    mean = net[1].running_mean.clone()
    with pytest.raises(RuntimeError, match="boom"):
        with evaluating(net, freeze_grads=True):
            assert not net.training and not net[1].training
            assert not any(p.requires_grad for p in net.parameters())
            net[1].running_mean.add_(5.0)  # something writes the buffers inside the block
            raise RuntimeError("boom")
    assert net.training and net[1].training
    assert [p.requires_grad for p in net.parameters()] == before
    assert torch.equal(net[1].running_mean, mean)


def test_evaluating_leaves_grads_alone_by_default():
    net = _bn_net()
    with evaluating(net):
        assert all(p.requires_grad for p in net.parameters())
        loss = net(torch.rand(1, 3, 6, 6)).sum()
    loss.backward()
    assert net[0].weight.grad is not None


def test_frozen_is_a_deprecated_alias_of_evaluating_with_frozen_grads():
    from featviz.optvis.render import frozen

    net = _bn_net().train()
    with pytest.warns(DeprecationWarning, match="evaluating"):
        with frozen(net):
            assert not net.training and not any(p.requires_grad for p in net.parameters())
            net(torch.rand(2, 3, 6, 6))  # eval mode: BatchNorm buffers are not updated ...
    assert net.training and all(p.requires_grad for p in net.parameters())


# -- as_images: one rule where three disagreed -------------------------------------------------------
def test_as_images_uint8_and_single_image():
    u8 = torch.randint(0, 256, (3, 5, 4), dtype=torch.uint8)
    out = as_images(u8)
    assert out.shape == (1, 3, 5, 4) and out.dtype == torch.float32
    torch.testing.assert_close(out[0], u8.double().div(255).float())  # independent: x / 255


def test_as_images_float_passes_unchanged():
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    assert as_images(x) is x  # no copy, dtype kept


@pytest.mark.parametrize("bad, error, says", [
    ([[0.0]], errors.BadType, "tensor"),
    (torch.rand(2, 4, 4, 3), errors.BadValue, "permute"),
    (torch.rand(2, 1, 4, 4), errors.BadValue, "(B, 3, H, W)"),
    (torch.rand(0, 3, 4, 4), errors.BadValue, "empty"),
    (torch.zeros(1, 3, 2, 2, dtype=torch.int64), errors.BadType, "uint8"),
    (torch.full((1, 3, 2, 2), 200.0), errors.BadValue, "divide by 255"),
    (torch.full((1, 3, 2, 2), float("nan")), errors.BadValue, "NaN"),
])
def test_as_images_says_what_is_wrong(bad, error, says):
    with pytest.raises(error, match=says.replace("(", r"\(").replace(")", r"\)")):
        as_images(bad)


def test_as_images_options_keep_any_channel_count_and_scale_only_uint8():
    """as_images(channels=None, unit=False) (the rule circuits applies): any channel count, no [0, 1] check,
    uint8 divided by 255, float passed through unchanged; checked against the arithmetic done by hand."""
    u = torch.randint(0, 256, (2, 1, 3, 3), dtype=torch.uint8)
    torch.testing.assert_close(as_images(u, channels=None, unit=False), u.double().div(255).float())
    f = torch.randn(2, 5, 3, 3) * 10
    torch.testing.assert_close(as_images(f, channels=None, unit=False), f)


def test_old_image_helpers_are_the_one_rule():
    from featviz.data import preprocess
    from featviz.optvis import _layer

    assert _layer.as_images is as_images and preprocess.as_images is as_images
    from featviz import core
    assert preprocess.as_float_images is core.as_float_images and preprocess.check_pixels is core.check_pixels
    # what optvis's as_images refused before and now accepts: uint8 images, read as x / 255
    u8 = torch.full((1, 3, 2, 2), 51, dtype=torch.uint8)
    assert torch.allclose(_layer.as_images(u8), torch.full((1, 3, 2, 2), 0.2))


# -- the elementwise table ---------------------------------------------------------------------------
def test_elementwise_table_is_the_union_of_the_old_two():
    old_core = {"ReLU", "ReLU6", "GELU", "SiLU", "Hardswish", "Hardsigmoid", "Sigmoid", "Tanh", "LeakyReLU",
                "ELU", "Mish", "Identity", "Dropout", "Dropout2d", "DropPath", "StochasticDepth"}
    old_circuits_act = {"ReLU", "ReLU6", "Hardtanh", "LeakyReLU", "ELU", "GELU", "SiLU", "Hardswish", "Mish",
                        "Tanh"}
    old_circuits_pass = {"Identity", "Dropout", "Dropout2d", "Dropout1d", "AlphaDropout"}
    assert ELEMENTWISE == old_core | old_circuits_act | old_circuits_pass
    assert old_circuits_act <= ACTIVATIONS and old_circuits_pass <= PASS_THROUGH
    assert not ACTIVATIONS & PASS_THROUGH


@pytest.mark.parametrize("name", sorted(n for n in ELEMENTWISE if hasattr(nn, n)))
def test_every_torch_member_is_elementwise(name):
    """Changing one input value changes only that output value (pass-throughs: nothing at all)."""
    module = getattr(nn, name)().eval()
    x = torch.randn(2, 3, 4, 4)[..., 0] * 3 if name.endswith("1d") else torch.randn(2, 3, 4, 4) * 3
    at = (1, 2, 3, 0)[:x.dim()]
    y = x.clone()
    y[at] += 1.5
    fx, fy = module(x), module(y)
    assert fx.shape == x.shape
    changed = (fx != fy)
    changed[at] = False
    assert not changed.any()
    if name in PASS_THROUGH:
        assert torch.equal(fx, x)


def test_module_layout_follows_a_newly_listed_elementwise_module():
    block = nn.Sequential(nn.Linear(4, 6), nn.Hardtanh(), nn.Linear(6, 4))  # Hardtanh: from circuits' table
    assert module_layout(block, "1", torch.zeros(1, 5, 5, 6)) == "channels_last"


# -- HookedModel.unit / layer ------------------------------------------------------------------------
def test_unit_and_layer():
    hm = fv.hooked(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    assert hm.unit("1:-1") == ("1", 3)  # width found by a probe pass
    assert hm.unit("0:2", n_channels=4) == ("0", 2)
    assert hm.layer("1") == "1"
    with pytest.raises(ValueError, match="needs one channel, e.g. '0:3'"):
        hm.unit("0")
    with pytest.raises(ValueError, match="needs one channel"):
        hm.unit("0:1,2")
    with pytest.raises(IndexError, match="has 4 channels"):
        hm.unit("0:4")
    with pytest.raises(ValueError, match="drop the ':c'"):
        hm.layer("0:1")
    with pytest.raises(KeyError, match="unknown layer"):
        hm.unit("conv:1")


def test_n_channels_of_a_channels_last_layer():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), Permute(), nn.Linear(4, 7))
    assert fv.hooked(net).n_channels("2") == 7
    assert fv.hooked(net).unit("2:-1") == ("2", 6)


class Permute(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1)


# -- HookedModel.stream ------------------------------------------------------------------------------
def test_stream_equals_one_pass_and_reads_uint8():
    net = _bn_net()
    hm = fv.hooked(net)
    u8 = torch.randint(0, 256, (5, 3, 6, 6), dtype=torch.uint8)
    parts = [(x, c["1"]) for x, c in hm.stream(u8, ["1"], batch_size=2, preprocess=False, progress=False)]
    assert [len(x) for x, _ in parts] == [2, 2, 1]
    with torch.no_grad():
        ref = net.eval()[:2](u8.float() / 255)
    torch.testing.assert_close(torch.cat([a for _, a in parts]), ref)
    torch.testing.assert_close(torch.cat([x for x, _ in parts]), u8.float() / 255)


def test_stream_takes_an_iterable_of_batches_and_applies_preprocess():
    hm = fv.hooked(nn.Sequential(nn.Identity()))
    batches = (torch.rand(k, 3, 2, 2) for k in (1, 3))
    outs = [c["0"] for _, c in hm.stream(batches, ["0"], preprocess=lambda x: x * 2, progress=False)]
    assert [len(a) for a in outs] == [1, 3]
    assert all(a.max() <= 2 and a.max() > 1 for a in outs)  # doubled: the preprocess ran


def test_stream_leaks_no_state_into_the_loop_body_nor_after_an_early_stop():
    net = _bn_net().train()
    mean = net[1].running_mean.clone()
    for _, cache in fv.hooked(net).stream(torch.rand(6, 3, 6, 6), ["3"], batch_size=2, progress=False):
        assert torch.is_grad_enabled() and net.training  # between batches: the caller's own state
        assert not cache["3"].requires_grad
        break
    assert net.training and torch.equal(net[1].running_mean, mean)


def test_stream_refuses_bad_input_before_running():
    hm = fv.hooked(_bn_net())
    with pytest.raises(errors.BadType, match=r"names=\['1'\]"):
        next(hm.stream(torch.rand(2, 3, 6, 6), "1"))
    with pytest.raises(errors.BadValue, match="batch_size"):
        next(hm.stream(torch.rand(2, 3, 6, 6), ["1"], batch_size=0))
    with pytest.raises(errors.BadType, match="uint8"):
        next(hm.stream(torch.zeros(2, 3, 6, 6, dtype=torch.int32), ["1"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(hm.stream(torch.rand(3, 6, 6), ["1"], progress=False))) == 1  # one (C, H, W) image
