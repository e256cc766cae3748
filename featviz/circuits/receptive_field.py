"""Receptive fields: (model, "layer:channel", input size, map position) -> where in the image a unit looks.

A unit at map position (i, j) of a conv layer sees a window of the input. Its centre is *not* the image
centre in general: with an even map the "central" unit ``(H // 2, W // 2)`` sits half a stride off, and
TensorFlow "SAME" padding (asymmetric at stride 2) moves it further. Every stimulus-based tool in
featviz places its stimuli at ``receptive_field(...).center``.

How it is found:

- ``method="exact"``: the geometry is read by running a *geometric surrogate* of the model — a copy
  whose convolutions and linear layers average their inputs (all weights ``1 / fan_in``, no bias),
  whose BatchNorms are the identity and whose max-pools are average pools of the same window. In that
  surrogate every input pixel inside the theoretical receptive field has a strictly positive gradient
  and every pixel outside has exactly zero, so the support of the gradient *is* the theoretical field,
  through any stack of strided / padded / TF-SAME convolutions, pools and branches (a residual branch's
  field is the union). When the field is larger than the image the surrogate is run on a larger image
  and the centre is extrapolated from the stride (``center = position * stride + offset``), which holds
  for fixed padding.
- ``method="measured"``: for models with layers whose geometry cannot be read that way (LayerNorm,
  GroupNorm, attention, dilated max-pools, ...), the gradient of the real unit is measured on random
  images: ``center`` is the centroid of ``|grad|`` and ``size`` the extent of its support.

Example:
    >>> import featviz as fv
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.ReLU())
    >>> rf = receptive_field(net, "1:0", size=16)   # map 7x7, unit (3, 3) reads pixels 6..8
    >>> rf.position, rf.center, rf.size
    ((3, 3), (7.0, 7.0), (3, 3))
"""
from __future__ import annotations

import copy
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from featviz.circuits._graph import kind
from featviz.core import evaluating, input_channels, input_size_of, probe_input
from featviz.errors import BadValue, OutOfRange
from featviz.hooks import hooked

__all__ = ["ReceptiveField", "receptive_field"]

_MAX_PROBE = 1024  # the largest image the surrogate is run on to see a whole field (px per side)
# A small constant input keeps every activation of the surrogate strictly inside (0, 6) — the open
# region of ReLU / ReLU6 — even where residual additions double it block after block.
_PROBE_VALUE = 1e-3


@dataclass(frozen=True)
class ReceptiveField:
    """Where unit ``position`` of ``node`` looks, in input pixels (row, col), for an input of ``input_size``.

    Attributes:
        node: the ``"layer:channel"`` (or ``"layer"``) it was computed for.
        position: (i, j), the unit in the layer's map (default: the map centre ``(H // 2, W // 2)``).
        center: (row, col) in input pixels, floats (pixel ``(r, c)`` covers ``r - 0.5 .. r + 0.5``).
        size: (rows, cols), the theoretical extent in pixels (may exceed the image).
        stride: (rows, cols) input pixels between neighbouring units.
        map_size: (H, W) of the layer's map for this input size.
        input_size: (H, W) of the input.
        method: ``"exact"`` (geometry read through a surrogate) or ``"measured"`` (gradient centroid).
    """

    node: str
    position: tuple[int, int]
    center: tuple[float, float]
    size: tuple[int, int]
    stride: tuple[float, float]
    map_size: tuple[int, int]
    input_size: tuple[int, int]
    method: str

    @property
    def offset(self) -> tuple[float, float]:
        """(rows, cols) from the image centre ``((H - 1) / 2, (W - 1) / 2)`` to the field's centre."""
        return (self.center[0] - (self.input_size[0] - 1) / 2, self.center[1] - (self.input_size[1] - 1) / 2)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(top, left, bottom, right) pixel edges of the theoretical field (may lie outside the image)."""
        (r, c), (h, w) = self.center, self.size
        return (r - h / 2, c - w / 2, r + h / 2, c + w / 2)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, float)) else (int(v[0]), int(v[1]))


class _Unreadable(Exception):
    """The model holds a layer whose geometry the surrogate cannot stand in for."""


def _surrogate(model: nn.Module) -> nn.Module:
    """A geometric copy of ``model``: averaging convs/linears, identity BatchNorms, max-pools as avg-pools."""
    m = copy.deepcopy(model).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    replace: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in m.modules():
        for child_name, mod in parent.named_children():
            k = kind(mod)
            name = type(mod).__name__
            if k == "maxpool":
                if "Adaptive" in name:
                    replace.append((parent, child_name, nn.AdaptiveAvgPool2d(mod.output_size)))
                    continue
                if _pair(getattr(mod, "dilation", 1)) != (1, 1):
                    raise _Unreadable(f"dilated max-pool {child_name!r}")
                ceil = bool(getattr(mod, "ceil_mode", False))
                replace.append((parent, child_name, nn.AvgPool2d(
                    mod.kernel_size, mod.stride, mod.padding, ceil_mode=ceil, count_include_pad=True)))
    for parent, child_name, new in replace:
        setattr(parent, child_name, new)
    with torch.no_grad():
        for mod in m.modules():
            k = kind(mod)
            own = [t for t in (*mod.parameters(recurse=False), *mod.buffers(recurse=False))]
            weight = getattr(mod, "weight", None)
            if k == "conv":
                weight.fill_(1.0 / weight[0].numel())
            elif k == "bn":
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0 - float(getattr(mod, "eps", 0.0)))
                if weight is not None:
                    weight.fill_(1.0)
            elif isinstance(weight, torch.Tensor) and weight.dim() == 2:  # Linear-like
                weight.fill_(1.0 / weight.shape[1])
            elif own and k not in ("act", "pass", "pad", "avgpool"):
                raise _Unreadable(f"{type(mod).__name__} has parameters or buffers")
            bias = getattr(mod, "bias", None)
            if isinstance(bias, torch.Tensor):
                bias.zero_()
    return m


def _grad_maps(model: nn.Module, layer: str, channel: int | None, size: tuple[int, int],
               positions: Sequence[tuple[int, int]] | None, x: torch.Tensor
               ) -> tuple[torch.Tensor, tuple[int, int], list[tuple[int, int]]]:
    """|d unit / d input| summed over input channels, one (H, W) map per position (default: the centre).

    Also records the layer's channel count in ``_grad_maps.channels`` for the caller's node name."""
    hm = hooked(model)
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        _, cache = hm.run_with_cache(x, names=[layer], stop_at_last=True, detach=False)
        a = cache[layer]
        if not isinstance(a, torch.Tensor) or a.dim() != 4:
            shape = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
            raise BadValue(f"receptive_field needs a layer with a spatial (B, C, H, W) output; "
                             f"{layer!r} gives {shape}")
        hw = (int(a.shape[-2]), int(a.shape[-1]))
        _grad_maps.channels = int(a.shape[1])
        if channel is not None:
            hm.check_channel(layer, channel, int(a.shape[1]))
        if positions is None:
            positions = [(hw[0] // 2, hw[1] // 2)] * x.shape[0]
        for i, j in positions:
            if not (0 <= i < hw[0] and 0 <= j < hw[1]):
                raise OutOfRange(f"position {(i, j)} is outside {layer!r}'s {hw[0]}x{hw[1]} map at input "
                                 f"size {tuple(size)}; positions are (row, col) with 0 <= row < {hw[0]}")
        total = 0
        for b, (i, j) in enumerate(positions):
            unit = a[b, :, i, j] if channel is None else a[b, channel, i, j]
            total = total + unit.sum()
        (g,) = torch.autograd.grad(total, x)
    return g.abs().sum(1), hw, list(positions)


def _extent(support: torch.Tensor) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) inclusive indices of the non-zero pixels of a (H, W) mask."""
    rows = torch.nonzero(support.any(1)).flatten()
    cols = torch.nonzero(support.any(0)).flatten()
    if len(rows) == 0:
        raise _Unreadable("no input pixel reaches the unit")
    return int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])


def _inside(center: tuple[float, float], size: tuple[int, int]) -> bool:
    """Whether a field centre lies on the image (pixel ``r`` covers ``r - 0.5 .. r + 0.5``)."""
    return all(-0.5 <= float(c) <= n - 0.5 for c, n in zip(center, size))


def _clipped(box: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    return box[0] == 0 or box[1] == 0 or box[2] == size[0] - 1 or box[3] == size[1] - 1


def _probe_geometry(sur: nn.Module, layer: str, channel: int | None, start: int, c_in: int
                    ) -> tuple[tuple[float, float], tuple[float, float], tuple[int, int]]:
    """(stride, offset, extent) of the layer's fields, read on an image large enough to hold one whole:
    ``center = position * stride + offset``."""
    probe = 64
    while probe <= start:
        probe *= 2
    while probe <= _MAX_PROBE:
        with torch.no_grad():
            _, cache = hooked(sur).run_with_cache(torch.full((1, c_in, probe, probe), _PROBE_VALUE),
                                                     names=[layer], stop_at_last=True)
        hw = tuple(cache[layer].shape[-2:])
        p = (hw[0] // 2, hw[1] // 2)
        exact_stride = probe % hw[0] == 0 and probe % hw[1] == 0
        positions = [p] if exact_stride else [p, (min(p[0] + 1, hw[0] - 1), min(p[1] + 1, hw[1] - 1))]
        g, _, _ = _grad_maps(sur, layer, channel, (probe, probe), positions,
                             torch.full((len(positions), c_in, probe, probe), _PROBE_VALUE))
        boxes = [_extent(g[b] > 0) for b in range(len(positions))]
        if not any(_clipped(b, (probe, probe)) for b in boxes):
            t0, l0, b0, r0 = boxes[0]
            if exact_stride:
                stride = (probe / hw[0], probe / hw[1])
            else:
                stride = (float(boxes[1][0] - t0), float(boxes[1][1] - l0))
            offset = ((t0 + b0) / 2 - p[0] * stride[0], (l0 + r0) / 2 - p[1] * stride[1])
            return stride, offset, (b0 - t0 + 1, r0 - l0 + 1)
        probe *= 2
    raise _Unreadable(f"the field is larger than a {_MAX_PROBE} px image")


def _exact(model: nn.Module, layer: str, channel: int | None, size: tuple[int, int],
           position: tuple[int, int] | None, geometry: dict):
    sur = _surrogate(model)
    c_in = input_channels(sur)
    g, hw, (pos,) = _grad_maps(sur, layer, channel, size, None if position is None else [position],
                               torch.full((1, c_in, *size), _PROBE_VALUE))
    box = _extent(g[0] > 0)
    divisible = size[0] % hw[0] == 0 and size[1] % hw[1] == 0
    if not _clipped(box, size) and divisible:
        top, left, bottom, right = box
        center = ((top + bottom) / 2, (left + right) / 2)
        return pos, center, (bottom - top + 1, right - left + 1), (size[0] / hw[0], size[1] / hw[1]), hw
    if layer not in geometry:
        geometry[layer] = _probe_geometry(sur, layer, channel, max(size), c_in)
    stride, offset, ext = geometry[layer]
    if not _clipped(box, size):
        top, left, bottom, right = box
        return pos, ((top + bottom) / 2, (left + right) / 2), (bottom - top + 1, right - left + 1), stride, hw
    center = (pos[0] * stride[0] + offset[0], pos[1] * stride[1] + offset[1])
    # the extrapolated field, cut to the image, must be the support seen at this size: a head that resizes
    # small maps to a fixed size (timm's vgg ConvMlp) has another geometry at the larger probe
    cut = [(max(0, round(c - (e - 1) / 2)), min(n - 1, round(c + (e - 1) / 2)))
           for c, e, n in zip(center, ext, size)]
    seen = [(box[0], box[2]), (box[1], box[3])]
    if any(abs(a - b) > 1 for want, got in zip(cut, seen) for a, b in zip(want, got)):
        raise _Unreadable(f"the field read on a larger probe ({ext[0]}x{ext[1]} px around "
                          f"{tuple(round(v, 1) for v in center)}) does not match the pixels that reach the "
                          f"unit at {size[0]}x{size[1]}: the layer's geometry changes with the input size")
    return pos, center, ext, stride, hw


def _measured(model: nn.Module, layer: str, channel: int | None, size: tuple[int, int],
              position: tuple[int, int] | None, n: int = 8, seed: int = 0):
    x = probe_input(model, size, seed=seed, batch=n)  # (n, C, H, W): noise through the preprocess
    at = None if position is None else [position] * n
    g, hw, ps = _grad_maps(model, layer, channel, size, at, x)
    g = g.sum(0).cpu()
    if float(g.max()) <= 0:
        raise BadValue(f"no gradient reaches {layer!r} from the input: cannot measure its receptive field")
    top, left, bottom, right = _extent(g > 1e-6 * float(g.max()))
    w = g / g.sum()
    rows = torch.arange(size[0], dtype=g.dtype)
    cols = torch.arange(size[1], dtype=g.dtype)
    center = (float((w.sum(1) * rows).sum()), float((w.sum(0) * cols).sum()))
    return ps[0], center, (bottom - top + 1, right - left + 1), (size[0] / hw[0], size[1] / hw[1]), hw


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def receptive_field(model: nn.Module, ref: str, size: int | tuple[int, int] | None = None,
                    position: tuple[int, int] | None = None, *, method: str = "auto") -> ReceptiveField:
    """The receptive field of unit ``position`` of ``ref`` (``"layer"`` or ``"layer:channel"``).

    This is the *theoretical* receptive field: every input pixel that can change the unit at all. How
    much each pixel matters (the *effective* receptive field) falls off from the centre and is usually
    much smaller. The model is not changed (the exact method works on a copy; the measured one runs the
    model in eval mode and restores its mode).

    Args:
        model: any ``nn.Module`` (or ``fv.hooked`` model).
        ref: the layer, ``"layer"`` or ``"layer:channel"`` (the channel does not change the geometry).
        size: the input image size (int or (H, W)); default ``model.input_size`` or 224.
        position: the unit's (i, j) in the layer's map; default the map centre ``(H // 2, W // 2)``.
        method: ``"auto"`` (exact where the geometry can be read, else measured), ``"exact"``
            (from the kernel sizes, strides and paddings) or ``"measured"`` (the extent and centroid of
            the unit's gradient with respect to the input; see the module docstring).

    Returns:
        A ``ReceptiveField``: ``position``, ``center`` (row, col in input pixels, may be a half pixel),
        ``size`` (rows, cols; may exceed the image), ``stride`` (px between neighbouring units),
        ``offset`` from the image centre and ``box()``.

    Example:
        >>> model = fv.models.efficientnet_lite0()
        >>> rf = fv.circuits.receptive_field(model, "blocks.4:36", size=128)
        >>> rf.position, rf.center, rf.offset, rf.size
        ((8, 8), (71.0, 71.0), (7.5, 7.5), (67, 67))
    """
    if method not in ("auto", "exact", "measured"):
        raise BadValue(f"method must be 'auto', 'exact' or 'measured', got {method!r}")
    hm = hooked(model)
    net = hm.model
    ref_ = hm.ref(ref)
    layer, channels = ref_.key, ref_.channels
    if channels is not None and len(channels) != 1:
        raise BadValue(f"a receptive field is one unit's: give 'layer' or 'layer:channel', got {ref!r}")
    if size is None:
        size = int(input_size_of(model, 224))
    hw_in = _pair(size)
    if min(hw_in) < 1:
        raise BadValue(f"size must be a positive number of pixels, got {size}")
    if position is not None:
        position = (int(position[0]), int(position[1]))
    channel = None if channels is None else channels[0]
    key = (layer, channel, hw_in, position, method)
    per_model = _CACHE.setdefault(net, {})
    if key in per_model:
        return per_model[key]
    result = None
    used = method
    if method in ("auto", "exact"):
        try:
            result = _exact(net, layer, channel, hw_in, position, per_model.setdefault("geometry", {}))
            used = "exact"
            if not _inside(result[1], hw_in):  # e.g. a head that resizes small maps to a fixed size:
                # its geometry at a larger probe is not the geometry at this size
                raise _Unreadable(f"the extrapolated centre {tuple(round(float(c), 1) for c in result[1])} "
                                  f"lies outside the {hw_in[0]}x{hw_in[1]} image (the layer's geometry "
                                  f"changes with the input size)")
        except _Unreadable as e:
            result = None
            if method == "exact":
                raise BadValue(f"cannot read the geometry of {layer!r} exactly ({e}); "
                                 "use method='measured' (a gradient centroid)") from None
    if result is None:
        with evaluating(net):
            result = _measured(net, layer, channel, hw_in, position)
        used = "measured"
    pos, center, ext, stride, hw = result
    node = layer if channel is None else f"{layer}:{channel % _grad_maps.channels}"
    rf = ReceptiveField(node, pos, (float(center[0]), float(center[1])), (int(ext[0]), int(ext[1])),
                        (float(stride[0]), float(stride[1])), hw, hw_in, used)
    per_model[key] = rf
    return rf

