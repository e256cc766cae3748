"""InceptionV1 (GoogLeNet, torchvision's BatchNorm variant) in featviz layers: (B, 3, 224, 224) -> (B, 1000).

Module names are torchvision's, so a state dict saved from ``torchvision.models.googlenet``
loads directly (``weights=PATH``; the auxiliary classifiers ``aux1.*`` / ``aux2.*`` of the
downloadable file are dropped: they are training-only and, per torchvision, not pretrained).
Each conv unit is ``conv``, ``bn``, ``relu`` (the ReLU is a module here, so it is hookable).

Names in Distill's *Zoom In* / lucid (which used the original TensorFlow InceptionV1, without
BatchNorm, so unit indices do **not** carry over to these weights) against these modules
(lucid's local-response-norm layers have no counterpart):

=================  ===============  ==============
Zoom In / lucid    featviz          output at 224
=================  ===============  ==============
conv2d0            ``conv1``        64 x 112 x 112
maxpool0           ``maxpool1``     64 x 56 x 56
conv2d1            ``conv2``        64 x 56 x 56
conv2d2            ``conv3``        192 x 56 x 56
maxpool1           ``maxpool2``     192 x 28 x 28
mixed3a            ``inception3a``  256 x 28 x 28
mixed3b            ``inception3b``  480 x 28 x 28
maxpool4           ``maxpool3``     480 x 14 x 14
mixed4a            ``inception4a``  512 x 14 x 14
mixed4b            ``inception4b``  512 x 14 x 14
mixed4c            ``inception4c``  512 x 14 x 14
mixed4d            ``inception4d``  528 x 14 x 14
mixed4e            ``inception4e``  832 x 14 x 14
maxpool10          ``maxpool4``     832 x 7 x 7
mixed5a            ``inception5a``  832 x 7 x 7
mixed5b            ``inception5b``  1024 x 7 x 7
softmax2 (logits)  ``fc``           1000
=================  ===============  ==============

Inside ``inceptionNx``: ``branch1`` (1x1), ``branch2`` (1x1 -> 3x3), ``branch3`` (1x1 -> 3x3;
a 5x5 in the paper, 3x3 in torchvision's port), ``branch4`` (3x3 max-pool -> 1x1); the
module's output is the four concatenated in that order.
"""
from __future__ import annotations

import os
from collections import OrderedDict

import torch
from torch import Tensor, nn

import featviz.nn as fnn
from featviz.data import Normalize, imagenet_labels
from featviz.models._meta import attach, load_file

__all__ = ["InceptionV1", "Inception", "inception_v1"]


def _conv_unit(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Sequential:
    """conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU, named ``conv``, ``bn``, ``relu``."""
    return nn.Sequential(OrderedDict(
        conv=fnn.Conv2d(c_in, c_out, kernel, stride, padding=padding),
        bn=fnn.BatchNorm2d(c_out, eps=1e-3),
        relu=fnn.ReLU(),
    ))


class Inception(nn.Module):
    """Four parallel branches concatenated along channels: c1 + c3 + c5 + pool_proj outputs.

    Example:
        >>> Inception(192, 64, 96, 128, 16, 32, 32)(torch.rand(1, 192, 28, 28)).shape
        torch.Size([1, 256, 28, 28])
    """

    def __init__(self, c_in: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int, pool_proj: int):
        super().__init__()
        self.branch1 = _conv_unit(c_in, c1, 1)
        self.branch2 = nn.Sequential(_conv_unit(c_in, c3_reduce, 1), _conv_unit(c3_reduce, c3, 3, padding=1))
        self.branch3 = nn.Sequential(_conv_unit(c_in, c5_reduce, 1), _conv_unit(c5_reduce, c5, 3, padding=1))
        self.branch4 = nn.Sequential(fnn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     _conv_unit(c_in, pool_proj, 1))

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, H, W) -> (B, c1 + c3 + c5 + pool_proj, H, W)
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class InceptionV1(nn.Module):
    """GoogLeNet without auxiliary heads; forward takes (B, 3, H, W) normalised with mean = std = 0.5.

    Example:
        >>> InceptionV1().eval()(torch.rand(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self.conv1 = _conv_unit(3, 64, 7, stride=2, padding=3)
        self.maxpool1 = fnn.MaxPool2d(3, stride=2, padding=0, ceil_mode=True)
        self.conv2 = _conv_unit(64, 64, 1)
        self.conv3 = _conv_unit(64, 192, 3, padding=1)
        self.maxpool2 = fnn.MaxPool2d(3, stride=2, padding=0, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = fnn.MaxPool2d(3, stride=2, padding=0, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = fnn.MaxPool2d(2, stride=2, padding=0, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = fnn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = fnn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # (B, 3, H, W) -> (B, num_classes)
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4c(self.inception4b(self.inception4a(x)))
        x = self.inception4e(self.inception4d(x))
        x = self.inception5b(self.inception5a(self.maxpool4(x)))
        return self.fc(self.dropout(self.avgpool(x).flatten(1)))


INTERESTING_LAYERS = ["conv1", "conv2", "conv3", "inception3a", "inception3b", "inception4a", "inception4b",
                      "inception4c", "inception4d", "inception4e", "inception5a", "inception5b"]


def inception_v1(weights: str | os.PathLike | None = None) -> InceptionV1:
    """InceptionV1 (GoogLeNet) in eval mode; random init unless ``weights`` names a torchvision state dict.

    ``weights``: a ``.pth`` file saved from ``torchvision.models.googlenet`` (e.g. its
    downloadable ``googlenet-*.pth``), loaded strictly after dropping ``aux1.*`` / ``aux2.*``.
    Nothing is downloaded. ``model.preprocess`` normalises with mean = std = 0.5, which is
    what torchvision's pretrained GoogLeNet sees after its ``transform_input`` step.

    Example:
        >>> model = inception_v1()                 # random weights
        >>> model(model.preprocess(torch.rand(1, 3, 224, 224))).shape
        torch.Size([1, 1000])
    """
    model = InceptionV1()
    if weights is not None:
        state = {k: v for k, v in load_file(weights).items() if not k.startswith(("aux1.", "aux2."))}
        model.load_state_dict(state, strict=True)
    return attach(model, Normalize(0.5, 0.5), 224, imagenet_labels(), INTERESTING_LAYERS)
