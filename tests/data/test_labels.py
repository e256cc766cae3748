"""The bundled ImageNet labels equal torchvision's class list (read from its metadata, no download)."""
from torchvision.models import ResNet18_Weights

import featviz as fv


def test_imagenet_labels_match_torchvision_order():
    labels = fv.data.imagenet_labels()
    assert labels == ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert len(set(labels)) == 1000 and labels[281] == "tabby"


def test_imagenet_labels_returns_a_fresh_list():
    fv.data.imagenet_labels().append("x")
    assert len(fv.data.imagenet_labels()) == 1000
