"""fv.models.randomized: a re-initialised deep copy, original and global RNG untouched."""
import pytest
import torch
import torchvision
from torch import nn

import featviz as fv


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _pretrained_like(model: nn.Module, seed: int = 1) -> nn.Module:
    """Move every parameter and BN statistic away from its init, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in [*model.parameters(), *(b for b in model.buffers() if b.is_floating_point())]:
            t.add_(0.1 * torch.randn(t.shape, generator=g)).abs_()
    return model


class Custom(nn.Module):
    """Parameters no module knows how to re-initialise, beside a torch layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.scale = nn.Parameter(torch.full((4,), 3.0))
        self.proj = nn.Parameter(torch.randn(4, 4))

    def forward(self, x):
        return torch.einsum("oc,bchw->bohw", self.proj, self.conv(x) * self.scale[:, None, None])


def test_every_resnet18_parameter_is_redrawn_and_bn_stats_reset():
    orig = _pretrained_like(torchvision.models.resnet18()).eval()
    before = _state(orig)
    rand = fv.models.randomized(orig, seed=0)
    for (name, p), q in zip(orig.named_parameters(), rand.parameters()):
        assert not torch.equal(p, q), name
    bn = rand.layer1[0].bn1
    assert torch.equal(bn.running_mean, torch.zeros(64)) and torch.equal(bn.running_var, torch.ones(64))
    assert torch.equal(bn.weight, torch.ones(64)) and int(bn.num_batches_tracked) == 0
    bound = 1 / (64 * 9) ** 0.5                             # torch's conv init: U(-1/sqrt(fan_in), ...)
    assert float(rand.layer1[0].conv1.weight.detach().abs().max()) <= bound
    assert all(torch.equal(v, orig.state_dict()[k]) for k, v in before.items())   # original untouched
    assert not rand.training


def test_default_featviz_model_every_parameter_and_prediction_differ():
    model = fv.models.efficientnet_lite0()
    before = _state(model)
    rand = fv.models.randomized(fv.hooked(model), seed=3)    # a HookedModel gives a plain module
    assert isinstance(rand, nn.Module) and not isinstance(rand, fv.HookedModel)
    for (name, p), q in zip(model.named_parameters(), rand.parameters()):
        assert not torch.equal(p, q), name
    assert rand.preprocess is not None and rand.input_size == model.input_size
    assert rand.labels == model.labels and rand.interesting_layers == model.interesting_layers
    x = model.preprocess(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        assert not torch.allclose(model(x), rand(x), atol=1e-3)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_same_seed_same_weights_other_seed_other_weights():
    net = _pretrained_like(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Linear(8, 2)))
    a, b, c = (fv.models.randomized(net, seed=s) for s in (5, 5, 6))
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
        if not bool((pa == pa.flatten()[0]).all()):         # BN's constant 1 / 0 init is the same for all
            assert not torch.equal(pa, pc)


def test_global_rng_state_is_left_alone():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(4, 4))  # built first: building draws numbers
    torch.manual_seed(123)
    state = torch.get_rng_state()
    fv.models.randomized(net, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fv.models.randomized(net, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_modules_without_reset_parameters_get_a_generic_init():
    net = Custom().train()
    net.note = "kept"
    rand = fv.models.randomized(net, seed=0)
    assert rand.training and rand.note == "kept"
    assert not torch.equal(rand.scale, net.scale) and not torch.equal(rand.proj, net.proj)
    assert float(rand.proj.detach().abs().max()) <= 0.5               # Kaiming-uniform, fan_in 4: bound 1/2
    assert torch.equal(net.scale, torch.full((4,), 3.0))     # the original is untouched


def test_featviz_layers_reinit_with_their_own_rule():
    net = nn.Sequential(fv.nn.Conv2d(2, 3, 3, bias=True), fv.nn.BatchNorm2d(3), fv.nn.Linear(5, 4))
    _pretrained_like(net)
    rand = fv.models.randomized(net, seed=0)
    assert float(rand[0].weight.detach().abs().max()) <= 1 / 18**0.5  # featviz Conv2d.reset_parameters bound
    assert torch.equal(rand[1].weight, torch.ones(3)) and torch.equal(rand[1].bias, torch.zeros(3))
    assert torch.equal(rand[1].running_var, torch.ones(3))
    assert torch.equal(rand[1].running_mean, torch.zeros(3))
    assert float(rand[2].weight.detach().abs().max()) <= 1 / 5**0.5    # featviz Linear: generic, same rule
    assert not torch.equal(rand[2].weight, net[2].weight)


def test_not_a_module_is_a_type_error():
    with pytest.raises(TypeError, match="nn.Module"):
        fv.models.randomized("resnet18")


def test_bn_stats_from_photos_are_the_batch_statistics_of_those_photos():
    net = _pretrained_like(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())).eval()
    net[1].momentum = 0.3
    images = torch.rand(10, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    rand = fv.models.randomized(net, seed=0, images=images)          # "auto" with images: re-estimated
    h = torch.nn.functional.conv2d(images, rand[0].weight, rand[0].bias)  # (10, 4, 10, 10), one batch of 10
    bn = rand[1]
    torch.testing.assert_close(bn.running_mean, h.mean((0, 2, 3)), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(bn.running_var, h.var((0, 2, 3), unbiased=True), rtol=1e-4, atol=1e-6)
    assert bn.momentum == 0.3 and not rand.training and not bn.training          # modes and momentum restored
    reset = fv.models.randomized(net, seed=0, bn_stats="reset", images=images)
    assert torch.equal(reset[1].running_var, torch.ones(4)) and torch.equal(reset[0].weight, rand[0].weight)


def test_the_default_control_of_a_zoo_model_responds_at_the_trained_scale():
    model = fv.models.efficientnet_lite0()
    photos = fv.data.sample_images(size=224).images[:4]
    layer = "blocks.6.depthwise_relu"
    trained = fv.models.activation_scale(model, layer, photos)
    silent = fv.models.activation_scale(fv.models.randomized(model, seed=0, bn_stats="reset"), layer, photos)
    control = fv.models.activation_scale(fv.models.randomized(model, seed=0), layer, photos)
    assert silent < 1e-3 * trained                                   # the reset control is nearly silent ...
    assert trained / 3 < control < 3 * trained                      # ... the default one answers at scale


def test_bad_bn_stats_and_images_are_refused():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="bn_stats must be one of"):
        fv.models.randomized(net, bn_stats="train")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        fv.models.randomized(net, bn_stats="photos", images=torch.rand(3, 8, 8))
