"""Weights between layers as (C_dst, C_src, kh, kw) kernels: adjacent convs (BN folded) and expanded weights.

Layer names may name a conv or the BatchNorm / activation right after it: both mean the conv's
"unit" (conv -> BN -> activation). ``src`` is that unit's output, ``dst`` its conv with the BN
folded in (``w * gamma / sqrt(running_var + eps)`` per output channel). Kernels are
cross-correlation kernels, as torch applies them: entry ``[o, c, u, v]`` multiplies src position
``(i * stride - pad + u, j * stride - pad + v)`` for dst position ``(i, j)``. No flip.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from featviz.circuits._common import as_hooked, bn_scale, check_channels, split_ref
from featviz.circuits._graph import ModuleGraph
from featviz.circuits._linear import centre_rows, example_input, support_box

__all__ = ["weights", "expanded_weights", "full_weight"]


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
    ReLU/ReLU6 (passed through), padding/identity layers and depthwise convs may lie. Grouped convs
    come back with zeros where groups do not connect. A depthwise conv *between* the two is composed
    with dst's kernel (the path is linearised as in :func:`expanded_weights`), so the result spans the
    combined kernel. Anything else between (pooling, a residual add, a dense conv) raises a
    ValueError naming it; use :func:`expanded_weights` then. ``size``: the input size of the one
    forward pass used to find the connections (default: the model's ``input_size`` or 224).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3))
        >>> weights(net, "0", "2").shape                      # src may also be written "1" (the ReLU)
        torch.Size([4, 8, 3, 3])
    """
    hm = as_hooked(model)
    graph = ModuleGraph(hm, example_input(hm, size))
    su, du = graph.unit(split_ref(src)[0]), graph.unit(split_ref(dst)[0])
    if du.conv is None:
        convs = [u.conv for u in graph.conv_units()][:12]
        raise ValueError(f"dst {dst!r} is not a conv layer (or the BatchNorm/activation right after one); "
                         f"conv layers are e.g. {convs}")
    path = graph.path_to(su, du.conv)
    if any(graph.calls[n].kind == "conv" for n in path):  # depthwise between: compose by autograd
        return expanded_weights(hm, su.end, du.end, size=size, progress=False)
    w = full_weight(graph.calls[du.conv].module)  # (C_dst, C_src, kh, kw)
    for n in path:
        if graph.calls[n].kind == "bn":  # a BatchNorm before dst's conv scales its input channels
            w = w * bn_scale(graph.calls[n].module).detach()[None, :, None, None]
    bns = [n for n in du.members if graph.calls[n].kind == "bn"]
    if bns:
        w = w * bn_scale(graph.calls[bns[0]].module).detach()[:, None, None, None]
    return w


def expanded_weights(model: nn.Module, src: str, dst: str, dst_channels: Sequence[int] | None = None, *,
                     size: int | None = None, batch_size: int = 32, progress: bool = True) -> torch.Tensor:
    """The linearised path from every src channel to each dst channel, (n_dst, C_src, kh, kw).

    The network between ``src`` and ``dst`` is made linear (activations -> identity, max pooling ->
    average pooling with the same window; BatchNorm keeps its scale, biases and shifts drop out of
    gradients), and autograd gives the gradient of each dst channel at the central position of the
    dst map with respect to the src activation, one backward pass per ``batch_size`` dst channels.
    That gradient is cropped to the combined receptive field of the central position (found the
    same way with all weights set to one), so for adjacent layers it equals :func:`weights`.
    ``dst`` may carry channels (``"relu3:2,5"``) instead of ``dst_channels``; default: all channels.
    ``size``: input size (default: the model's ``input_size`` or 224); make it larger if a warning
    says the receptive field reaches the edge of the src map.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        ...                           torch.nn.Conv2d(8, 4, 3))
        >>> expanded_weights(net, "0", "3", size=32).shape    # 3x3 conv after a 2x2 pool: 6x6 window
        torch.Size([4, 8, 6, 6])
    """
    import warnings

    hm = as_hooked(model)
    x = example_input(hm, size)
    graph = ModuleGraph(hm, x)
    (src_name, _), (dst_name, ref_channels) = split_ref(src), split_ref(dst)
    src_end, dst_end = graph.unit(src_name).end, graph.unit(dst_name).end
    n_dst = graph.channels(dst_end)
    wanted = dst_channels if dst_channels is not None else ref_channels
    channels = check_channels(hm, dst_end, wanted, n_dst) if wanted is not None else list(range(n_dst))
    channels = [c % n_dst for c in channels]
    r0, r1, c0, c1 = support_box(hm, graph, x, src_end, dst_end)
    hs, ws = graph.call(src_end).out_shape[-2:]
    if r0 == 0 or c0 == 0 or r1 == hs - 1 or c1 == ws - 1:
        warnings.warn(f"the receptive field of {dst_end!r} reaches the edge of {src_end!r}'s {hs}x{ws} map; "
                      f"the expanded weights are cut off there (pass a larger size=)", stacklevel=2)
    rows = centre_rows(hm, graph, x, src_end, dst_end, channels, batch_size, progress)
    return rows[:, :, r0:r1 + 1, c0:c1 + 1].detach()
