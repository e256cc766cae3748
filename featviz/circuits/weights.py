"""Weights between layers as (C_dst, C_src, kh, kw) kernels: adjacent convs (BN folded) and expanded weights.

Layer names may name a conv or the BatchNorm / activation right after it: both mean the conv's
"unit" (conv -> BN -> activation). ``src`` is that unit's output, ``dst`` its conv with the BN
folded in (``w * gamma / sqrt(running_var + eps)`` per output channel). Kernels are
cross-correlation kernels, as torch applies them: entry ``[o, c, u, v]`` multiplies src position
``(i * stride - pad + u, j * stride - pad + v)`` for dst position ``(i, j)``. No flip.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

from featviz.circuits._graph import ModuleGraph, NotConnectedError
from featviz.circuits._linear import centre_rows, support_box
from featviz.core import channel_list, evaluating, parse_ref, probe_input
from featviz.errors import BadValue
from featviz.hooks import hooked

__all__ = ["weights", "expanded_weights", "full_weight"]


def bn_scale(bn: nn.Module) -> torch.Tensor:
    """Per-channel multiplier of an eval-mode BatchNorm: ``gamma / sqrt(running_var + eps)``, (C,)."""
    scale = 1.0 / torch.sqrt(bn.running_var + bn.eps)
    weight = getattr(bn, "weight", None)
    return scale * weight if weight is not None else scale


def full_weight(conv: nn.Module) -> torch.Tensor:
    """A conv's weight with groups spelled out: (C_out, C_in, kh, kw), zero where groups do not connect.

    Example:
        >>> full_weight(torch.nn.Conv2d(4, 4, 3, groups=4)).shape
        torch.Size([4, 4, 3, 3])
    """
    w = conv.weight.detach()  # (C_out, C_in / groups, kh, kw)
    groups = int(getattr(conv, "groups", 1))
    if groups == 1:
        return w.clone()
    c_out, per_group, kh, kw = w.shape
    group = torch.arange(c_out, device=w.device) // (c_out // groups)  # (C_out,)
    idx = group[:, None] * per_group + torch.arange(per_group, device=w.device)  # (C_out, per_group)
    out = w.new_zeros(c_out, per_group * groups, kh, kw)
    return out.scatter_(1, idx[:, :, None, None].expand(-1, -1, kh, kw), w)


def weights(model: nn.Module, src: str, dst: str, *, size: int | None = None) -> torch.Tensor:
    """The weights connecting two adjacent conv layers, (C_dst, C_src, kh, kw), dst's BatchNorm folded in.

    Between ``src``'s unit output and ``dst``'s conv only BatchNorm (its scale is folded in),
    activations (passed through, modules or functional), padding/identity layers, depthwise convs
    and concatenations (dst reads src's slice of the concatenated channels) may lie. Grouped convs
    come back with zeros where groups do not connect. A depthwise conv or a concatenation *between*
    the two is handled by the linearised path of :func:`expanded_weights` (its crop is then the
    combined kernel). Anything else between (pooling, a residual add, a dense conv, a gate, a
    LayerNorm) raises a ``NotConnectedError`` (a ValueError) naming it; use :func:`expanded_weights`
    then. The model runs in eval mode (modes and BatchNorm statistics restored).

    Args:
        model: any ``nn.Module`` (or ``fv.hooked`` model).
        src: the earlier layer, ``"layer"`` or ``"layer:channels"`` (its unit output: the conv, or an
            activation after it).
        dst: the later layer whose conv reads ``src``, ``"layer"`` or ``"layer:channels"``. Channels
            in the references are honoured: ``weights(m, "relu1:3", "relu2:0")`` is (1, 1, kh, kw).
        size: the input size of the one forward pass used to find the connections; default the
            model's ``input_size`` or 224.

    Returns:
        (C_dst, C_src, kh, kw): entry [o, c, i, j] is what one unit of source activation at kernel
        offset (i, j) adds to destination channel o (positive = excitatory, negative = inhibitory).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3))
        >>> weights(net, "0", "2").shape                      # src may also be written "1" (the ReLU)
        torch.Size([4, 8, 3, 3])
        >>> weights(net, "1:-1", "2:0,1").shape
        torch.Size([2, 1, 3, 3])
    """
    hm = hooked(model)
    sref, dref = parse_ref(src), parse_ref(dst)
    with evaluating(hm.model):
        graph = ModuleGraph(hm, probe_input(hm, size))
        su, du = graph.unit(sref.key), graph.unit(dref.key)
        if du.conv is None:
            convs = [u.conv for u in graph.conv_units()][:12]
            raise NotConnectedError(f"dst {dst!r} is not a conv layer (or the BatchNorm/activation right "
                                    f"after one); conv layers are e.g. {convs}")
        n_src, n_dst = graph.channels(su.end), graph.channels(du.end)
        src_ch = channel_list(sref.channels, n_src, su.end)
        dst_ch = channel_list(dref.channels, n_dst, du.end)
        path = _adjacent_path(graph, su, du.conv)
        analytic = all(graph.producer(n) is not None and graph.describe(n)[0] in ("bn", "act", "pass", "pad")
                       for n in path) and graph.calls[du.conv].inputs[0] is not None
        if not analytic:  # depthwise, concatenation or functional ops between: the linearised path
            w = expanded_weights(hm, su.end, du.end, dst_channels=dst_ch, size=size, progress=False)
            return w[:, src_ch]
        w = full_weight(graph.calls[du.conv].module)  # (C_dst, C_src, kh, kw)
        for node in path:
            c = graph.calls[graph.producer(node)]
            if c.kind == "bn":  # a BatchNorm before dst's conv scales its input channels
                w = w * bn_scale(c.module).detach()[None, :, None, None]
        bns = [n for n in du.members if graph.calls[n].kind == "bn"]
        if bns:
            w = w * bn_scale(graph.calls[bns[0]].module).detach()[:, None, None, None]
        if w.shape[1] != n_src:
            raise NotConnectedError(f"{dst!r} reads {w.shape[1]} channels but {su.end!r} has {n_src}")
        return w[dst_ch][:, src_ch]


def _adjacent_path(graph: ModuleGraph, su, conv: str) -> list:
    """The autograd nodes between src's unit output and ``conv``'s input, or NotConnectedError naming what
    is in the way (only BatchNorm, activations, padding, identity, depthwise convs, concatenation)."""
    path = graph.between(su.end, graph.calls[conv].inputs[0])
    if path is None:
        raise NotConnectedError(f"{conv!r} does not read {su.end!r} at all (no path from one to the other); "
                                f"pick a src layer upstream of dst")
    for node in path:
        k, what = graph.describe(node)
        if k not in ("bn", "act", "pass", "pad", "dwconv", "cat"):
            seen = [graph.describe(n)[1] for n in path[:path.index(node)]]
            after = f" (after {', '.join(seen)})" if seen else ""
            raise NotConnectedError(
                f"{su.end!r} and {conv!r} are not directly connected: walking back from {conv!r}, the input "
                f"comes through {what}{after}. weights() needs adjacent conv layers (only BatchNorm, "
                f"activations, padding, depthwise convs and concatenation between); use expanded_weights() "
                f"for layers further apart.")
    return path


def expanded_weights(model: nn.Module, src: str, dst: str, dst_channels: Sequence[int] | None = None, *,
                     size: int | None = None, batch_size: int = 32, progress: bool = True) -> torch.Tensor:
    """The linearised path from every src channel to each dst channel, (n_dst, C_src, kh, kw).

    The network between ``src`` and ``dst`` is made linear (activations -> identity, max pooling ->
    average pooling with the same window, gates such as squeeze-excite's sigmoid and LayerNorm /
    GroupNorm statistics held at their values on the probe input; BatchNorm keeps its scale, biases
    and shifts drop out of gradients), whether written as modules or as functional calls in
    ``forward``. Autograd gives the gradient of each dst channel at the central position of the dst
    map with respect to the src activation, one backward pass per ``batch_size`` dst channels. That
    gradient is cropped to the combined receptive field of the central position (found the same way
    with all weights set to one), so for adjacent layers it equals :func:`weights`. Channels-last
    layers (ConvNeXt's LayerNorm/Linear) are read as (C, H, W) maps; a layer with no (B, C, H, W)
    maps (tokens, vectors, tuples) is refused naming what it outputs.
    ``dst`` may carry channels (``"relu3:2,5"``) instead of ``dst_channels``; channels on ``src`` select
    columns. Default: all channels. ``size``: input size (default: the model's ``input_size`` or
    224); make it larger if a warning says the receptive field reaches the edge of the src map.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        ...                           torch.nn.Conv2d(8, 4, 3))
        >>> expanded_weights(net, "0", "3", size=32).shape    # 3x3 conv after a 2x2 pool: 6x6 window
        torch.Size([4, 8, 6, 6])
    """
    hm = hooked(model)
    sref, dref = parse_ref(src), parse_ref(dst)
    with evaluating(hm.model):
        x = probe_input(hm, size)
        graph = ModuleGraph(hm, x)
        src_end, dst_end = graph.unit(sref.key).end, graph.unit(dref.key).end
        n_src, n_dst = graph.channels(src_end), graph.channels(dst_end)
        if not graph.runs_before(src_end, dst_end):
            raise BadValue(f"{dst_end!r} runs before {src_end!r}; src must be the earlier layer")
        if graph.between(src_end, graph.calls[dst_end].output) is None:
            raise NotConnectedError(f"{dst_end!r} does not depend on {src_end!r}: no path leads from one to "
                                    f"the other (parallel branches?); pick a src layer upstream of dst")
        wanted = dst_channels if dst_channels is not None else dref.channels
        channels = channel_list(wanted, n_dst, dst_end)
        src_ch = channel_list(sref.channels, n_src, src_end)
        r0, r1, c0, c1 = support_box(hm, graph, x, src_end, dst_end)
        shape = graph.call(src_end).out_shape
        hs, ws = shape[1:3] if graph.calls[src_end].layout == "channels_last" else shape[-2:]
        if r0 == 0 or c0 == 0 or r1 == hs - 1 or c1 == ws - 1:
            warnings.warn(f"the receptive field of {dst_end!r} reaches the edge of {src_end!r}'s {hs}x{ws} "
                          f"map; the expanded weights are cut off there (pass a larger size=)", stacklevel=2)
        rows = centre_rows(hm, graph, x, src_end, dst_end, channels, batch_size, progress)
    return rows[:, src_ch, r0:r1 + 1, c0:c1 + 1].detach()
