"""Tests for featviz.hooks: caching, editing, ablation, early stop, and hooks that never leak."""
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import featviz as fv


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.ReLU())


def _all_hooks_empty(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_cache_matches_functional_reference():
    net, x = _net(), torch.randn(2, 3, 8, 8)
    out, cache = fv.hooked(net).run_with_cache(x)
    conv0 = F.conv2d(x, net[0].weight, net[0].bias, padding=1)
    torch.testing.assert_close(cache["0"], conv0)
    torch.testing.assert_close(cache["1"], conv0.relu())
    torch.testing.assert_close(out, F.conv2d(conv0.relu(), net[2].weight, net[2].bias).relu())
    assert list(cache.keys()) == ["0", "1", "2", "3"] and "2" in cache and len(cache) == 4
    assert not cache["0"].requires_grad


def test_hook_names_are_qualified_module_names():
    hm = fv.hooked(torchvision.models.resnet18())
    assert hm.hook_names[:2] == ["conv1", "bn1"]
    assert "layer1.0.conv1" in hm.hook_names and "" not in hm.hook_names
    assert fv.hooked(hm) is hm


def test_stop_at_last_skips_later_modules():
    calls = []
    net = _net()
    net[2].register_forward_pre_hook(lambda m, i: calls.append("ran"))
    try:
        out, cache = fv.hooked(net).run_with_cache(torch.randn(1, 3, 8, 8), names=["1"], stop_at_last=True)
    finally:
        net[2]._forward_pre_hooks.clear()
    assert out is None and calls == [] and list(cache) == ["1"]


def test_detach_false_keeps_graph_for_gradients():
    net, x = _net(), torch.randn(1, 3, 8, 8)
    _, cache = fv.hooked(net).run_with_cache(x, names=["0", "1"], detach=False)
    (g,) = torch.autograd.grad(cache["1"].sum(), cache["0"])
    torch.testing.assert_close(g, (cache["0"] > 0).float())


def test_inplace_relu_does_not_corrupt_cached_conv_output_resnet18():
    model = torchvision.models.resnet18().eval()
    x = torch.randn(1, 3, 64, 64)
    _, cache = fv.hooked(model).run_with_cache(x, names=["bn1", "layer1.0.bn2"])
    with torch.no_grad():
        bn1 = model.bn1(model.conv1(x))
        h = model.maxpool(bn1.relu())
        blk = model.layer1[0]
        bn2 = blk.bn2(blk.conv2(blk.relu(blk.bn1(blk.conv1(h)))))
    assert (cache["bn1"] < 0).any()  # ReLU(inplace=True) came after and did not overwrite it
    torch.testing.assert_close(cache["bn1"], bn1)
    torch.testing.assert_close(cache["layer1.0.bn2"], bn2)  # `out += identity` did not touch it either


def test_output_unchanged_by_caching():
    model = torchvision.models.resnet18().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        out, _ = fv.hooked(model).run_with_cache(x)
    torch.testing.assert_close(out, ref)


def test_hooks_replace_output_and_are_removed():
    net, x = _net(), torch.randn(1, 3, 8, 8)
    hm = fv.hooked(net)
    with hm.hooks([("3", lambda m, i, o: torch.zeros_like(o) + 7)]):
        assert torch.all(hm(x) == 7)
    assert _all_hooks_empty(net)
    assert not torch.all(hm(x) == 7)


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_hooks_removed_after_exception_in_forward(exc):
    net = _net()
    hm = fv.hooked(net)

    def boom(m, i, o):
        raise exc("inside forward")

    with pytest.raises(exc):
        with hm.hooks([("0", lambda m, i, o: None), ("2", boom)]):
            hm(torch.randn(1, 3, 8, 8))
    assert _all_hooks_empty(net)
    with pytest.raises(exc):
        with hm.ablate("0", [1]), hm.hooks([("2", boom)]):
            hm.run_with_cache(torch.randn(1, 3, 8, 8), names=["1", "3"])
    assert _all_hooks_empty(net)


def test_keyboard_interrupt_in_body_removes_hooks():
    net = _net()
    with pytest.raises(KeyboardInterrupt):
        with fv.hooked(net).hooks([("1", lambda m, i, o: None)]):
            raise KeyboardInterrupt
    assert _all_hooks_empty(net)


def test_users_own_hooks_survive():
    net = _net()
    seen = []
    handle = net[1].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    hm = fv.hooked(net)
    hm.run_with_cache(torch.randn(1, 3, 8, 8), names=["1"], stop_at_last=True)
    with hm.ablate("1", 0):
        hm(torch.randn(1, 3, 8, 8))
    assert len(net[1]._forward_hooks) == 1
    hm(torch.randn(1, 3, 8, 8))
    assert len(seen) == 3
    handle.remove()


def test_ablate_zero_mean_and_tensor():
    net, x = _net(), torch.randn(2, 3, 8, 8)
    hm = fv.hooked(net)
    ref_conv = F.conv2d(x, net[0].weight, net[0].bias, padding=1)
    with hm.ablate("0", [1, 3]):
        _, c = hm.run_with_cache(x, names=["0"])
    assert torch.all(c["0"][:, [1, 3]] == 0)
    torch.testing.assert_close(c["0"][:, [0, 2]], ref_conv[:, [0, 2]])
    with hm.ablate("0", 2, value="mean"):
        _, c = hm.run_with_cache(x, names=["0"])
    torch.testing.assert_close(c["0"][:, 2], torch.full_like(c["0"][:, 2], ref_conv[:, 2].mean().item()))
    with hm.ablate("0", [0, 1], value=torch.tensor([5.0, -1.0])):
        _, c = hm.run_with_cache(x, names=["0"])
    assert torch.all(c["0"][:, 0] == 5) and torch.all(c["0"][:, 1] == -1)


def test_ablation_changes_downstream_and_prediction():
    model = torchvision.models.resnet18().eval()
    x = torch.randn(1, 3, 64, 64)
    hm = fv.hooked(model)
    with torch.no_grad():
        base = hm(x)
        with hm.ablate("layer4.1.bn2", list(range(512))):
            ablated = hm(x)
    assert not torch.allclose(base, ablated)
    assert _all_hooks_empty(model)


def test_unknown_name_lists_closest():
    hm = fv.hooked(torchvision.models.resnet18())
    with pytest.raises(KeyError, match="layer1.0.conv1"):
        hm.run_with_cache(torch.randn(1, 3, 32, 32), names=["layer1.0.conv"])
    with pytest.raises(KeyError, match="layer2.0.bn1"):
        hm.parse("layer2.0.bnn1:3")
    _, cache = hm.run_with_cache(torch.randn(1, 3, 32, 32), names=["conv1"], stop_at_last=True)
    with pytest.raises(KeyError, match="conv1"):
        cache["conv"]


def test_channel_out_of_range_states_count():
    hm = fv.hooked(_net())
    with pytest.raises(IndexError, match="has 4 channels"):
        with hm.ablate("0", [9]):
            hm(torch.randn(1, 3, 8, 8))
    with pytest.raises(IndexError, match="has 4 channels"):
        hm.check_channel("0", 4, 4)
    with pytest.raises(ValueError, match="channel index"):
        hm.parse("0:x")


def test_not_a_module_is_a_type_error():
    with pytest.raises(TypeError, match="nn.Module"):
        fv.hooked("resnet")


def test_docstring_examples_run():
    import doctest

    import featviz.hooks

    result = doctest.testmod(featviz.hooks, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0
