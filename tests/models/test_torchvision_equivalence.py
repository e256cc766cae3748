"""inception_v1 / resnet18 load torchvision state dicts strictly and compute what torchvision computes."""
import pytest
import torch
import torchvision

import featviz as fv


def _randomise_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics and affine terms, so a misplaced BN cannot go unnoticed."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=g))
    return model.eval()


def test_resnet18_equals_torchvision_on_the_same_weights(tmp_path):
    reference = _randomise_bn(torchvision.models.resnet18(weights=None))
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    model = fv.models.resnet18(weights=tmp_path / "resnet18.pth")
    x = torch.randn(2, 3, 97, 113)  # odd sizes exercise padding and pooling arithmetic
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-4)


def test_inception_v1_equals_torchvision_on_the_same_weights(tmp_path):
    reference = _randomise_bn(torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True))
    torch.save(reference.state_dict(), tmp_path / "googlenet.pth")  # with aux1/aux2, as the download
    model = fv.models.inception_v1(weights=tmp_path / "googlenet.pth")
    x = torch.randn(1, 3, 131, 131)  # odd: ceil-mode pooling differs from floor here
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-4)


def test_inception_preprocess_equals_torchvision_transform_input(tmp_path):
    reference = _randomise_bn(torchvision.models.googlenet(weights=None, transform_input=True,
                                                           aux_logits=False, init_weights=True))
    torch.save(reference.state_dict(), tmp_path / "googlenet.pth")
    model = fv.models.inception_v1(weights=tmp_path / "googlenet.pth")
    x = torch.rand(1, 3, 96, 96)  # RGB in [0, 1]
    imagenet = torchvision.transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    with torch.no_grad():
        torch.testing.assert_close(model(model.preprocess(x)), reference(imagenet(x)), rtol=1e-4, atol=1e-4)


def test_resnet18_loading_is_strict(tmp_path):
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["layer5.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(RuntimeError, match="layer5.weight"):
        fv.models.resnet18(weights=tmp_path / "extra.pth")


def test_torchvision_module_names_are_kept():
    names = set(fv.hooked(fv.models.inception_v1()).hook_names)
    assert {"conv1.conv", "inception4a.branch2.1.conv", "inception5b", "fc"} <= names
    names = set(fv.hooked(fv.models.resnet18()).hook_names)
    assert {"layer1.0.relu1", "layer1.0.relu2", "layer2.0.downsample.0", "layer4"} <= names
    assert "layer2.1.downsample" not in names  # only where stride or width change
