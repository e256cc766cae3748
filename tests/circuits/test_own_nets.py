"""Hand-written nets with exactly computable answers: functional ReLUs, in-place adds, concatenation,
a module reused twice, tuple outputs, a replaced submodule, train mode."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import featviz as fv
from featviz.circuits import attribute, expanded_weights, trace, weights


class Functional(nn.Module):  # F.relu between convs, an in-place residual add, a concatenation
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        a = F.relu(self.conv1(x))
        b = self.conv2(a)
        b += a  # in place, after the source
        return self.conv3(torch.cat([a, F.relu(b)], 1))


class Reused(nn.Module):  # one ReLU called twice, with different widths
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.relu = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 6, 3), nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.conv2(self.relu(self.conv1(x))))


class Pair(nn.Module):
    def forward(self, x):
        return x, x.mean()


def test_functional_relu_connects_adjacent_convs():
    net = Functional().eval()
    w = weights(net, "conv1:1", "conv2:0,3", size=8)
    assert torch.equal(w, net.conv2.weight.detach()[[0, 3]][:, [1]])


class Cat(nn.Module):  # two parallel convs, concatenated, read by a third
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 2, 3, padding=1), nn.Conv2d(6, 2, 3)

    def forward(self, x):
        return self.c(torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], 1))


def test_concatenation_gives_the_slice_of_the_reading_conv():
    net = Cat().eval()
    assert torch.allclose(weights(net, "b", "c", size=8), net.c.weight.detach()[:, 4:], atol=1e-6)
    assert trace(net, "c:0", depth=1, top_k=3, size=8, progress=False).layers == ["a", "b", "c"]


def test_a_second_path_through_an_in_place_add_is_named():
    with pytest.raises(ValueError, match="residual add"):
        weights(Functional().eval(), "conv1", "conv3", size=8)


def test_expanded_weights_through_in_place_add_is_conv_plus_skip():
    net = Functional().eval()
    w = expanded_weights(net, "conv1", "conv3:0", size=12, progress=False)[0]  # (4, 3, 3): skip + conv2 path
    skip = net.conv3.weight[0, :4, 0, 0] + net.conv3.weight[0, 4:, 0, 0]  # a reaches conv3 directly and via b
    via = torch.einsum("o,oikl->ikl", net.conv3.weight[0, 4:, 0, 0], net.conv2.weight)
    want = via.clone()
    want[:, 1, 1] += skip
    assert torch.allclose(w, want.detach(), atol=1e-5)


def test_reused_module_calls_have_their_own_names_everywhere():
    net = Reused().eval()
    hm = fv.hooked(net)
    _, cache = hm.run_with_cache(torch.rand(1, 3, 8, 8))
    assert cache["relu"].shape[1] == 4 and cache["relu#2"].shape[1] == 6
    w = weights(net, "relu", "relu#2", size=8)  # relu#2 is conv2's unit
    assert torch.equal(w, net.conv2.weight.detach())
    x = torch.rand(2, 3, 8, 8)
    assert attribute(net, "relu", "relu#2", x).shape == (6, 4)
    c = trace(net, "relu#2:-1", depth=1, top_k=2, size=8, progress=False)
    assert c.root == "relu#2:5" and all(e.src.startswith("relu:") for e in c.edges)


def test_tuple_outputs_are_refused_by_name():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), Pair())
    with pytest.raises(ValueError, match="tuple"):
        attribute(net, "0", "1", torch.rand(1, 3, 8, 8))


def test_ablate_a_replaced_submodule_acts_on_the_new_one():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    hm = fv.hooked(net)
    net[1] = nn.Identity()
    with hm.ablate("1", [0]):
        y = hm(torch.rand(1, 3, 8, 8))
    assert float(y[:, 0].abs().sum()) == 0.0


def test_train_mode_model_is_restored_and_weights_repeat():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3)).train()
    stats = [b.clone() for b in net.buffers()]
    first, second = weights(net, "2", "3", size=8), weights(net, "2", "3", size=8)
    assert torch.equal(first, second) and net.training
    assert all(torch.equal(a, b) for a, b in zip(stats, net.buffers()))


def test_run_with_cache_copies_only_outputs_written_in_place():
    net = Reused().eval()
    hm = fv.hooked(net)
    _, cache = hm.run_with_cache(torch.randn(1, 3, 8, 8), names=["conv1", "conv2"])
    assert (cache["conv1"] < 0).any() and hm._written == {"conv1", "conv2"}
    hm2 = fv.hooked(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    hm2.run_with_cache(torch.randn(1, 3, 8, 8), names=["0"])
    assert hm2._written == set()


class Only32(nn.Module):
    """Runs on 32x32 images only (as a ViT built for one size), and declares no input_size."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.relu = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()

    def forward(self, x):
        if tuple(x.shape[-2:]) != (32, 32):
            raise ValueError(f"Only32 takes 32x32 images, got {tuple(x.shape[-2:])}")
        return self.relu(self.conv(x))


def test_unit_references_are_checked_on_the_images_given_not_a_default_size_probe():
    net, x = Only32().eval(), torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ex = fv.circuits.dataset_examples(net, "relu:-1", x, k=2, progress=False)
    curve = fv.circuits.tuning_curve(net, "relu:-1", x, angles=[0, 30, 60, 90, 120, 150])
    test = fv.circuits.ablation_test(net, "conv:0,1", "relu:-1", x, n_random=3)
    assert ex.node == curve.node == test.dst == "relu:3"  # -1 resolved against the width the images gave
    assert float(fv.circuits.ablation_effect(net, "conv:3", "relu:3", x)) > 0
    assert trace(net, "relu:3", depth=1, top_k=1, size=32, progress=False).root == "relu:3"
    with pytest.raises(ValueError, match="needs one channel"):
        fv.circuits.ablation_test(net, "conv:0", "relu", x)
