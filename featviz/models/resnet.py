"""ResNet-18 in featviz layers with torchvision's module names: (B, 3, 224, 224) normalised -> (B, 1000).

A state dict saved from ``torchvision.models.resnet18`` loads directly (``weights=PATH``).
Blocks are ``layer1.0`` ... ``layer4.1``; each has ``conv1, bn1, relu1, conv2, bn2`` and
``downsample`` (``downsample.0`` conv 1x1, ``downsample.1`` BN) where stride or width change,
then ``relu2`` after the residual add (torchvision reuses one ``relu`` for both; parameter
names are unaffected). Outputs at 224 px: ``relu``/``maxpool`` 64 x 112 / 56, ``layer1``
64 x 56, ``layer2`` 128 x 28, ``layer3`` 256 x 14, ``layer4`` 512 x 7.
"""
from __future__ import annotations

import os

from torch import Tensor, nn

import featviz.nn as fnn
from featviz.data import Normalize, imagenet_labels
from featviz.models._meta import attach, load_file

__all__ = ["BasicBlock", "ResNet18", "resnet18", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel RGB mean of ImageNet, subtracted by ``model.preprocess``."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel RGB standard deviation of ImageNet, divided by in ``model.preprocess``."""


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a shortcut: relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x)).

    Example:
        >>> import torch
        >>> BasicBlock(64, 128, stride=2)(torch.rand(1, 64, 56, 56)).shape
        torch.Size([1, 128, 28, 28])
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = fnn.Conv2d(c_in, c_out, 3, stride, padding=1)
        self.bn1 = fnn.BatchNorm2d(c_out)
        self.relu1 = fnn.ReLU()
        self.conv2 = fnn.Conv2d(c_out, c_out, 3, 1, padding=1)
        self.bn2 = fnn.BatchNorm2d(c_out)
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(fnn.Conv2d(c_in, c_out, 1, stride), fnn.BatchNorm2d(c_out))
        self.relu2 = fnn.ReLU()

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, H, W) -> (B, C_out, H/stride, W/stride)
        h = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        shortcut = self.downsample(x) if hasattr(self, "downsample") else x
        return self.relu2(h + shortcut)


class ResNet18(nn.Module):
    """ResNet-18: ``conv1, bn1, relu, maxpool, layer1..layer4, avgpool, fc``.

    Example:
        >>> import torch
        >>> ResNet18().eval()(torch.rand(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = fnn.Conv2d(3, 64, 7, 2, padding=3)
        self.bn1 = fnn.BatchNorm2d(64)
        self.relu = fnn.ReLU()
        self.maxpool = fnn.MaxPool2d(3, stride=2, padding=1)
        widths = (64, 128, 256, 512)
        for i, width in enumerate(widths):
            c_in, stride = (64, 1) if i == 0 else (widths[i - 1], 2)
            self.add_module(f"layer{i + 1}", nn.Sequential(BasicBlock(c_in, width, stride),
                                                           BasicBlock(width, width)))
        self.avgpool = fnn.AdaptiveAvgPool2d(1)
        self.fc = fnn.Linear(512, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # (B, 3, H, W) -> (B, num_classes)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


INTERESTING_LAYERS = ["relu", "layer1.0", "layer1", "layer2.0", "layer2", "layer3.0", "layer3", "layer4.0",
                      "layer4"]


def resnet18(weights: str | os.PathLike | None = None) -> ResNet18:
    """ResNet-18 in eval mode; random init unless ``weights`` names a torchvision ``resnet18`` state dict.

    Loading is strict; nothing is downloaded. ``model.preprocess`` is the ImageNet
    normalisation torchvision's weights expect.

    Example:
        >>> import torch
        >>> model = resnet18()                     # random weights
        >>> model(model.preprocess(torch.rand(1, 3, 224, 224))).shape
        torch.Size([1, 1000])
    """
    model = ResNet18()
    if weights is not None:
        model.load_state_dict(load_file(weights), strict=True)
    return attach(model, Normalize(IMAGENET_MEAN, IMAGENET_STD), 224, imagenet_labels(), INTERESTING_LAYERS)
