"""Redirected ReLU: hand-computed gradients, unchanged forward values, scoped hooks, dead channels revived."""
import doctest

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import featviz as fv
import featviz.nn as fnn
from featviz.optvis import redirect
from featviz.optvis.redirect import redirected_grad, redirected_relus


def planted():
    """Channel 0 = ReLU(10 R - 7): off for every pixel with R < 0.7, and the render starts at R ~ 0.5.
    Channel 1 = ReLU(G): alive from the start."""
    net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU(inplace=True))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.zero_()
        net[0].weight[0, 0] = 10.0
        net[0].bias[0] = -7.0
        net[0].weight[1, 1] = 1.0
    return net.eval()


def render(net, ref="1:0", **kw):
    return fv.render(net, ref, size=16, steps=32, transforms=[], progress=False, **kw)


def test_redirected_grad_by_hand():
    x, g = torch.tensor([[-1.0], [2.0]]), torch.tensor([[-1.0], [-1.0]])
    # two items: item 0 is dead (ordinary grad 0), and g=-1 pushes x=-1 up -> passes; item 1 ordinary
    assert redirected_grad(x, g).flatten().tolist() == [-1.0, -1.0]
    # one item holding both: x=2 lets gradient through, so the item keeps the ordinary [0, -1]
    assert redirected_grad(x.T, g.T).flatten().tolist() == [0.0, -1.0]
    # a dead input pushed further down (g > 0) gets nothing
    x, g = torch.tensor([[-1.0, -3.0]]), torch.tensor([[1.0, -2.0]])
    assert redirected_grad(x, g).tolist() == [[0.0, -2.0]]


def test_redirected_relu6_passes_gradient_that_brings_a_capped_input_down():
    x = torch.tensor([[7.0, 8.0, -1.0]])
    g = torch.tensor([[1.0, -1.0, -0.5]])  # x=7 pushed down: pass; x=8 pushed up: block; x=-1 up: pass
    assert redirected_grad(x, g, 0.0, 6.0).tolist() == [[1.0, 0.0, -0.5]]
    # plain ReLU: 7 and 8 are active, so the item keeps its ordinary gradient and x=-1 gets none
    assert redirected_grad(x, g).tolist() == [[1.0, -1.0, 0.0]]


@pytest.mark.parametrize("module", [nn.ReLU(), nn.ReLU(inplace=True), nn.ReLU6(), fnn.ReLU(), fnn.ReLU6()])
def test_module_backward_in_scope_is_the_redirected_gradient(module):
    hi = 6.0 if "6" in type(module).__name__ else None
    x = torch.tensor([[-1.0, -2.0, 7.0], [-1.0, 0.5, 3.0]], requires_grad=True)
    g = torch.tensor([[-1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]])
    with redirected_relus(nn.Sequential(module)):
        module(x * 1.0).backward(g)
    assert torch.equal(x.grad, redirected_grad(x.detach(), g, 0.0, hi))
    x.grad = None
    module(x * 1.0).backward(g)  # out of scope: the ordinary gradient again
    assert x.grad[0].abs().sum() == (0.0 if hi else 1.0)


def test_forward_values_are_exactly_the_plain_forward():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), fnn.Conv2d(4, 4, 3), fnn.ReLU6(),
                        nn.Conv2d(4, 4, 1), nn.ReLU6(inplace=True), fnn.ReLU())
    x = torch.randn(2, 3, 12, 12) * 4
    plain = net(x)
    with redirected_relus(net) as names:
        redirected = net(x.requires_grad_())
    assert names == ["1", "3", "5", "6"] and torch.equal(redirected, plain)
    assert redirected.grad_fn is not None


def test_hooks_removed_and_inplace_restored_when_render_raises_mid_run():
    class Boom(nn.Module):
        calls = 0

        def forward(self, x):
            Boom.calls += 1
            if Boom.calls == 3:
                raise RuntimeError("boom at step 3")
            return x

    net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU(inplace=True), nn.ReLU6(inplace=True), Boom())
    with pytest.raises(RuntimeError, match="boom"):
        fv.render(net, "3:0", size=8, steps=10, transforms=[], progress=False, redirect_steps=16)
    for m in net.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
    assert net[1].inplace is True and net[2].inplace is True


def test_without_redirect_the_dead_channel_stays_flat_and_is_flagged():
    r = render(planted(), redirect_steps=0)
    assert r.activations.tolist() == [0.0] and float(r.losses.abs().max()) == 0.0
    assert float(r.images.std()) < 0.01 and r.dead.tolist() == [True]


def test_redirect_revives_the_dead_channel_and_it_is_not_flagged():
    r = render(planted())  # default redirect_steps
    assert float(r.losses[0]) == 0.0 and float(r.activations) > 0.05  # dead at step 1, alive at the end
    assert float(r.images[:, 0].max()) > 0.7 and r.dead.tolist() == [False]


def test_render_layer_flags_only_the_dead_channel_and_redirect_fixes_it():
    kw = dict(size=16, steps=32, transforms=[], progress=False)
    before = fv.render_layer(planted(), "1", redirect_steps=0, **kw)
    after = fv.render_layer(planted(), "1", **kw)
    assert before.dead.tolist() == [True, False] and after.dead.tolist() == [False, False]


def test_a_functional_relu_is_not_redirected():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.out = planted()[0], nn.Identity()

        def forward(self, x):
            return self.out(F.relu(self.conv(x)))

    net = Functional()
    with redirected_relus(net) as names:
        assert names == []
    assert render(net, "out:0").dead.tolist() == [True]


def test_redirect_steps_must_be_a_non_negative_int():
    with pytest.raises(ValueError, match="redirect_steps"):
        render(planted(), redirect_steps=-1)


def test_docstring_examples_run():
    result = doctest.testmod(redirect, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


def test_a_constant_response_from_an_image_that_never_moved_is_dead():
    # output = ReLU(10 R - 7) + 1: 1.0 for the start image whatever it is, and no gradient reaches it
    net = nn.Sequential(*planted(), nn.Conv2d(2, 1, 1))
    with torch.no_grad():
        net[2].weight.zero_()
        net[2].weight[0, 0] = 1.0
        net[2].bias.fill_(1.0)
    stuck = render(net, "2:0", redirect_steps=0)
    assert stuck.activations.tolist() == [1.0] and stuck.dead.tolist() == [True]
    revived = render(net, "2:0")
    assert float(revived.activations) > 1.05 and revived.dead.tolist() == [False]
