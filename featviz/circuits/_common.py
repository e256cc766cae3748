"""Shared plumbing for circuits: ``"layer:channels"`` references, input preparation, module kinds.

Nothing here is public; every function takes a model (or a HookedModel) and returns plain values.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from featviz.core import channel_list, device_of, parse_ref, preprocess_fn
from featviz.data.preprocess import as_float_images
from featviz.errors import BadType, BadValue
from featviz.hooks import HookedModel, hooked

__all__ = ["device_of", "preprocess_fn", "kind", "is_depthwise", "bn_scale", "as_hooked", "raw_model",
           "check_images", "split_ref", "resolve_ref", "check_channels"]

ACTIVATIONS = {"ReLU", "ReLU6", "Hardtanh", "LeakyReLU", "ELU", "GELU", "SiLU", "Hardswish", "Mish", "Tanh"}
PASS_THROUGH = {"Identity", "Dropout", "Dropout2d", "Dropout1d", "AlphaDropout"}
PADS = {"ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d"}


def kind(module: nn.Module) -> str:
    """One of "conv", "bn", "act", "pass", "pad", "maxpool", "avgpool", "other" (duck-typed, so featviz
    layers and torch layers both work)."""
    name = type(module).__name__
    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.dim() == 4 and hasattr(module, "stride"):
        return "conv"
    if hasattr(module, "running_var") and hasattr(module, "running_mean"):
        return "bn"
    if name in ACTIVATIONS:
        return "act"
    if name in PASS_THROUGH:
        return "pass"
    if name in PADS:
        return "pad"
    if "MaxPool" in name:
        return "maxpool"
    if "AvgPool" in name:
        return "avgpool"
    return "other"


def is_depthwise(conv: nn.Module) -> bool:
    """True for a conv whose every output channel reads exactly one input channel of its own."""
    w = conv.weight
    groups = int(getattr(conv, "groups", 1))
    return w.shape[1] == 1 and groups > 1 and groups == w.shape[0]


def bn_scale(bn: nn.Module) -> torch.Tensor:
    """Per-channel multiplier of an eval-mode BatchNorm: ``gamma / sqrt(running_var + eps)``, (C,)."""
    scale = 1.0 / torch.sqrt(bn.running_var + bn.eps)
    weight = getattr(bn, "weight", None)
    return scale * weight if weight is not None else scale


def as_hooked(model: nn.Module) -> HookedModel:
    """``fv.hooked(model)``; a HookedModel passes through unchanged."""
    return hooked(model)


def raw_model(model: nn.Module) -> nn.Module:
    """The user's module behind a HookedModel (where attributes such as ``preprocess`` live)."""
    return model.model if isinstance(model, HookedModel) else model


def check_images(images: torch.Tensor, what: str = "inputs") -> torch.Tensor:
    """``images`` if it is a float (B, C, H, W) tensor, else a TypeError/ValueError saying what is wanted."""
    if not isinstance(images, torch.Tensor):
        raise BadType(f"{what} must be a (B, C, H, W) float tensor, got {type(images).__name__}")
    if images.dim() != 4:
        raise BadValue(f"{what} must have shape (B, C, H, W), got {tuple(images.shape)}")
    return as_float_images(images, what).float()  # the one uint8 rule: uint8 / 255


def split_ref(ref: str) -> tuple[str, list[int] | None]:
    """``"layer"`` -> ("layer", None); ``"layer:3"`` -> ("layer", [3]);
    ``"layer#2:1,4"`` -> ("layer#2", [1, 4]) (``featviz.core.parse_ref``)."""
    r = parse_ref(ref)
    return r.key, (list(r.channels) if r.channels is not None else None)


def resolve_ref(hm: HookedModel, ref: str) -> tuple[str, list[int] | None]:
    """Split ``ref`` and check that the name exists (KeyError listing close names otherwise)."""
    r = hm.ref(ref)
    return r.key, (list(r.channels) if r.channels is not None else None)


def check_channels(hm: HookedModel, name: str, channels: Sequence[int], n_channels: int) -> list[int]:
    """``channels`` as non-negative ints, each checked against the layer's channel count."""
    return channel_list(channels, n_channels, name)
