"""from_torch: torchvision models rebuilt from featviz layers give the same outputs on both backends."""
import pytest
import torch
import torchvision
from torch import nn

import featviz as fv


def _resnet18():
    return torchvision.models.resnet18().eval()


def _googlenet():
    return torchvision.models.googlenet(init_weights=False, aux_logits=False).eval()


@pytest.mark.parametrize("backend", ["torch", "strided"])
@pytest.mark.parametrize("build", [_resnet18, _googlenet])
def test_converted_torchvision_models_give_the_same_outputs(build, backend):
    original = build()
    converted = fv.nn.from_torch(original, backend=backend)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = original(x), converted(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_every_supported_layer_is_swapped():
    converted = fv.nn.from_torch(_googlenet())
    torch_types = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.BatchNorm2d, nn.Linear,
                   nn.ReLU)
    assert not any(type(m) in torch_types for m in converted.modules())
    assert sum(isinstance(m, fv.nn.Conv2d) for m in converted.modules()) == 57
    assert any(isinstance(m, fv.nn.MaxPool2d) and m.ceil_mode for m in converted.modules())


def test_gradients_through_the_strided_backend_match_torch():
    original = _resnet18()
    converted = fv.nn.from_torch(original, backend="strided")
    x = torch.rand(1, 3, 48, 48, requires_grad=True)
    (grad_ours,) = torch.autograd.grad(converted(x)[0, 3], x)
    (grad_ref,) = torch.autograd.grad(original(x)[0, 3], x)
    torch.testing.assert_close(grad_ours, grad_ref, atol=1e-5, rtol=1e-4)


def test_copy_true_copies_and_leaves_the_original_alone():
    original = _resnet18()
    converted = fv.nn.from_torch(original)
    assert type(original.conv1) is nn.Conv2d
    with torch.no_grad():
        converted.conv1.weight.zero_()
    assert original.conv1.weight.abs().sum() > 0


def test_copy_false_shares_parameters_and_buffers():
    original = _resnet18()
    converted = fv.nn.from_torch(original, copy=False)
    assert converted is not original and type(original.conv1) is nn.Conv2d
    assert converted.conv1.weight is original.conv1.weight
    assert converted.bn1.running_mean is original.bn1.running_mean


def test_mode_and_same_padding_are_kept():
    model = nn.Sequential(nn.Conv2d(3, 4, (3, 4), padding="same", dilation=2), nn.BatchNorm2d(4)).train()
    converted = fv.nn.from_torch(model)
    assert converted.training and converted[1].training
    x = torch.rand(2, 3, 9, 9)
    torch.testing.assert_close(converted(x), model(x))


def test_a_single_layer_converts_to_its_twin():
    conv = nn.Conv2d(3, 4, 3, bias=True)
    twin = fv.nn.from_torch(conv)
    assert type(twin) is fv.nn.Conv2d and twin.bias is not None


@pytest.mark.slow
@pytest.mark.parametrize("build", [_resnet18, _googlenet])
def test_converted_models_match_at_full_size_with_the_strided_backend(build):
    original = build()
    converted = fv.nn.from_torch(original, backend="strided")
    x = torch.rand(4, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), original(x), atol=1e-5, rtol=1e-4)
