"""Causal checks: (model, src channels, dst channel, images) -> drop in dst's mean activation on ablation.

Where attribution says "src channel c feeds dst channel o", ablating c (setting it to zero, or to its
mean) and watching dst fall confirms it causally.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from featviz.circuits._common import as_hooked, check_channels, check_images, preprocess_fn, resolve_ref

__all__ = ["ablation_effect"]


def ablation_effect(model: nn.Module, src: str, dst: str, inputs: torch.Tensor, *,
                    value: float | str = 0.0, relative: bool = False,
                    preprocess: Callable | bool | None = None) -> float:
    """How much the dst channel's mean activation drops when the src channels are ablated.

    ``src`` is ``"layer:c1,c2"`` (the channels to ablate, through ``HookedModel.ablate`` with
    ``value``: a number or ``"mean"``), ``dst`` is ``"layer:channel"``. Returns
    ``mean(dst) - mean(dst | ablated)`` over ``inputs`` (images as ``model.preprocess`` expects; it is
    applied) and space: positive when the src channels excite dst, ~0 when they do not reach it.
    ``relative=True`` divides by ``mean(dst)``.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
        >>> drop = ablation_effect(net, "1:0,3", "2:1", torch.rand(2, 3, 8, 8))
        >>> isinstance(drop, float)
        True
    """
    hm = as_hooked(model)
    x = preprocess_fn(hm, preprocess)(check_images(inputs))
    src_name, src_channels = resolve_ref(hm, src)
    dst_name, dst_channels = resolve_ref(hm, dst)
    if not src_channels:
        raise ValueError(f"src must name the channels to ablate, as in '{src_name}:3' or '{src_name}:1,4'")
    if not dst_channels or len(dst_channels) != 1:
        raise ValueError(f"dst must name one channel, as in '{dst_name}:0'; got {dst!r}")
    with torch.no_grad():
        _, cache = hm.run_with_cache(x, names=[src_name, dst_name], stop_at_last=True)
        check_channels(hm, src_name, src_channels, cache[src_name].shape[1])
        (d,) = check_channels(hm, dst_name, dst_channels, cache[dst_name].shape[1])
        base = cache[dst_name][:, d].mean()
        with hm.ablate(src_name, src_channels, value=value):
            _, ablated = hm.run_with_cache(x, names=[dst_name], stop_at_last=True)
        drop = base - ablated[dst_name][:, d].mean()
    return float(drop / base) if relative else float(drop)
