"""attribute: batched path vs captum, and the planted wiring ranked first."""
import captum.attr as ca
import pytest
import torch
from circuit_models import WIRING
from torch import nn

import featviz as fv
from featviz.circuits import DstMeans, attribute


@pytest.fixture
def small():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(5, 4, 3), nn.ReLU()).eval()


def captum_loop(cls, model, x, src, dst, n_dst, **kwargs):
    """What a user writes: one captum call per dst channel, dst = that channel's spatial mean."""
    method = cls(DstMeans(fv.hooked(model), dst), fv.hooked(model).module(src))
    return torch.stack([method.attribute(x, target=o, **kwargs).sum(0) for o in range(n_dst)]).detach()


def test_grad_x_act_equals_captum(small, noise):
    ref = captum_loop(ca.LayerGradientXActivation, small, noise, "1", "5", 4).sum((-2, -1))
    assert torch.allclose(attribute(small, "1", "5", noise), ref, atol=1e-6)


def test_keep_space_equals_captum_maps(small, noise):
    ref = captum_loop(ca.LayerGradientXActivation, small, noise, "1", "5", 4)
    assert torch.allclose(attribute(small, "1", "5", noise, keep_space=True), ref, atol=1e-6)


def test_integrated_gradients_equal_captum(small, noise):
    ref = captum_loop(ca.LayerIntegratedGradients, small, noise, "1", "5", 4, n_steps=20).sum((-2, -1))
    got = attribute(small, "1", "5", noise, method="integrated_gradients", steps=20, batch_size=16)
    assert torch.allclose(got, ref, atol=1e-5, rtol=1e-4)


def test_captum_method_by_name_runs_captum(small, noise):
    ref = captum_loop(ca.LayerConductance, small, noise, "1", "5", 4, n_steps=10).sum((-2, -1))
    got = attribute(small, "1", "5", noise, method="captum:LayerConductance", captum_kwargs={"n_steps": 10})
    assert torch.allclose(got, ref, atol=1e-6)


def test_unknown_method_lists_captum_methods(small, noise):
    with pytest.raises(ValueError, match="LayerConductance"):
        attribute(small, "1", "5", noise, method="captum:LayerMagic")


def test_dst_channel_out_of_range_states_count(small, noise):
    with pytest.raises(IndexError, match="4 channels"):
        attribute(small, "1", "5", noise, dst_channels=[4])


def test_wired_sources_rank_first_and_unwired_get_nothing(wired, noise):
    contrib = attribute(wired, "relu1", "relu2", noise)  # (4, 8)
    for o, links in WIRING.items():
        sources = {c for c, _, _ in links}
        assert set(contrib[o].argsort(descending=True)[:2].tolist()) == sources
        assert contrib[o, [c for c in range(8) if c not in sources]].abs().max() == 0


def test_vmap_backward_used_on_gpu_equals_the_cpu_loop(small, noise):
    from featviz.circuits._linear import run_cut
    from featviz.circuits.attribution import _attributions

    got, w = [], torch.rand(len(noise))
    for vmap in (True, False):
        a, d = run_cut(fv.hooked(small), noise, "1", "5", lambda out: out.detach().requires_grad_(True))
        got.append(_attributions(d.mean((-2, -1)), a, a.detach(), lambda t: t.sum(0), w, vmap=vmap))
    a, d = run_cut(fv.hooked(small), noise, "1", "5", lambda out: out.detach().requires_grad_(True))
    means = d.mean((-2, -1))  # by hand: one backward per dst channel of the row-weighted sum
    ref = torch.stack([(torch.autograd.grad((means[:, k] * w).sum(), a, retain_graph=True)[0] * a).sum(0)
                       for k in range(4)])
    assert got[0].shape == (4, 6, 32, 32)
    assert torch.allclose(got[0], ref, atol=1e-7) and torch.allclose(got[1], ref, atol=1e-7)


class Skip(nn.Module):
    """A skip from before src ("relu") joins after it; ``reshape_like_h`` also takes the batch from it."""

    def __init__(self, reshape_like_h: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.relu = nn.Conv2d(3, 6, 3), nn.ReLU()
        self.conv2, self.conv3 = nn.Conv2d(6, 6, 3, padding=1), nn.Conv2d(6, 4, 3)
        self.reshape_like_h = reshape_like_h

    def forward(self, x):
        h = self.conv1(x)
        y = torch.tanh(self.conv2(self.relu(h))) + h
        return self.conv3(y.reshape(len(h), -1, *y.shape[2:]) if self.reshape_like_h else y)


@pytest.mark.parametrize("reshape_like_h", [False, True])
def test_integrated_gradients_across_a_skip_around_src_equal_captum(noise, reshape_like_h):
    model = Skip(reshape_like_h).eval()
    ref = captum_loop(ca.LayerIntegratedGradients, model, noise, "relu", "conv3", 4, n_steps=6).sum((-2, -1))
    got = attribute(model, "relu", "conv3", noise, method="integrated_gradients", steps=6, batch_size=4)
    assert torch.allclose(got, ref, atol=1e-5, rtol=1e-4)


def test_grad_x_act_with_an_inplace_op_after_src_equals_captum(noise):
    """The first image's pass is shared with the execution-graph pass (src's output replaced by a leaf
    there): an in-place ReLU right after src must act on a copy, so every image's numbers match captum on
    the same net with an out-of-place ReLU."""
    torch.manual_seed(1)
    convs = [nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 5, 3), nn.Conv2d(5, 4, 3)]
    inplace = nn.Sequential(convs[0], nn.ReLU(), convs[1], nn.ReLU(inplace=True), convs[2]).eval()
    plain = nn.Sequential(convs[0], nn.ReLU(), convs[1], nn.ReLU(), convs[2]).eval()
    ref = captum_loop(ca.LayerGradientXActivation, plain, noise, "2", "4", 4).sum((-2, -1))
    got = attribute(inplace, "2", "4", noise)
    assert torch.allclose(got, ref, atol=1e-5, rtol=1e-4)


def test_src_after_dst_is_refused_by_name(small, noise):
    with pytest.raises(fv.errors.BadValue, match="runs before"):
        attribute(small, "4", "2", noise)


def test_one_function_per_method_gives_the_dispatchers_numbers(small, noise):
    gxa = fv.circuits.attribute_grad_x_act(small, "1", "5:0,2", noise)
    assert torch.equal(gxa, attribute(small, "1", "5", noise, dst_channels=[0, 2]))
    ig = fv.circuits.attribute_integrated_gradients(small, "1", "5", noise, steps=8, baseline=0.2)
    assert torch.equal(ig, attribute(small, "1", "5", noise, method="integrated_gradients", steps=8,
                                     baseline=0.2))
    cap = fv.circuits.attribute_captum(small, "1", "5:1", noise, "LayerGradientXActivation")
    ref = captum_loop(ca.LayerGradientXActivation, small, noise, "1", "5", 4)[1:2].sum((-2, -1))
    assert torch.allclose(cap, ref, atol=1e-6)
    assert torch.equal(cap, attribute(small, "1", "5:1", noise, method="captum:LayerGradientXActivation"))


def test_the_old_call_with_integrated_gradients_options_still_runs_grad_x_act(small, noise):
    old = attribute(small, "1", "5", noise, None, "grad_x_act", steps=7, batch_size=3)
    assert torch.equal(old, fv.circuits.attribute_grad_x_act(small, "1", "5", noise))
    with pytest.raises(TypeError, match="stepz"):
        attribute(small, "1", "5", noise, stepz=7)


def test_attribution_leaves_the_parameters_as_it_found_them(small, noise):
    small[0].weight.requires_grad_(False)  # a user's frozen layer stays frozen, the others trainable
    small.train()
    for method in ("grad_x_act", "integrated_gradients"):
        attribute(small, "1", "5", noise, method=method, steps=4)
        assert [p.requires_grad for p in small.parameters()] == [False] + [True] * 5
        assert all(p.grad is None for p in small.parameters())  # no weight gradient was computed
        assert small.training and all(m.training for m in small.modules())


def test_the_old_inputs_keyword_warns_and_gives_the_same_numbers(small, noise):
    with pytest.warns(DeprecationWarning, match="images="):
        old = attribute(small, "1", "5", inputs=noise)
    assert torch.equal(old, attribute(small, "1", "5", images=noise))
