"""Many ablations at once: (photos, src layer, S channel masks, dst) -> dst responses per photo (S, N, C).

The network runs up to ``src`` once per chunk of masks; a hook there replaces src's output by S masked copies
stacked along the batch, so the segment src -> dst runs on all of them in one pass and the rest of the network
is never run (``stop_at_last``). Where something computed before ``src`` joins the segment later (a residual
branch that cannot broadcast to S copies), the photos themselves are repeated S times instead: slower, same
numbers. ``wiring`` says which src channels a dst channel reads at all, from gradients at noisy inputs.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from featviz.core import reuse_store, tensor_key
from featviz.errors import BadType, BadValue
from featviz.hooks import HookedModel

__all__ = ["segment_responses", "wiring"]


def _reduce(a: torch.Tensor, position: str | tuple[int, int]) -> torch.Tensor:
    """(B, C, ...) -> (B, C): the spatial mean, the map centre unit, or unit (i, j)."""
    if a.dim() <= 2:
        return a
    if position == "mean":
        return a.reshape(*a.shape[:2], -1).mean(-1)
    if a.dim() != 4:
        raise BadValue(f"position={position!r} needs a spatial map, got shape {tuple(a.shape)}; "
                         "use position='mean'")
    i, j = (a.shape[-2] // 2, a.shape[-1] // 2) if position == "center" else position
    return a[:, :, i, j]


def _masked(a: torch.Tensor, masks: torch.Tensor, value: float | str, repeated: bool) -> torch.Tensor:
    """S copies of src's output ``a`` with the masked channels replaced, stacked: (S * b, C, ...).
    ``repeated``: ``a`` already holds the S copies (the photos were repeated)."""
    s, c = masks.shape
    b = len(a) // s if repeated else len(a)
    a = a.reshape(s, b, *a.shape[1:]) if repeated else a.unsqueeze(0)  # (S or 1, b, C, ...)
    keep = (~masks).to(a.dtype).reshape(s, 1, c, *[1] * (a.dim() - 3))
    if isinstance(value, str):  # "mean": each channel's mean over the photos and space
        dims = [1] + list(range(3, a.dim()))
        fill = a[:1].mean(dim=dims, keepdim=True)
    else:
        fill = torch.full((1,) * a.dim(), float(value), dtype=a.dtype, device=a.device)
    out = a * keep + fill * (1 - keep)
    return out.reshape(s * b, *out.shape[2:])


def segment_responses(hm: HookedModel, batches: list[torch.Tensor], prep: Callable, src: str, dst: str,
                      masks: torch.Tensor, *, value: float | str = 0.0, position: str | tuple = "mean",
                      max_batch: int = 512) -> torch.Tensor:
    """dst's per-photo responses with each mask's src channels ablated: (S, N, C_dst), float64.

    ``masks`` (S, C_src) bool, True = ablate (an all-False row: no ablation). ``batches``: the photos, as
    given to the model before ``prep``. Runs without gradients. Within ``fv.core.reusing`` each mask row's
    responses to the same photos are computed once (and rows repeated within ``masks`` run once): a layer's
    family test and its random sets serve all of its dst channels.
    """
    device = next((p.device for p in hm.model.parameters()), torch.device("cpu"))
    masks = masks.bool()
    memo = reuse_store("segment_responses", hm.model)  # within fv.core.reusing: each mask row once
    where = tuple(int(v) for v in position) if isinstance(position, tuple) else position
    out = []
    with torch.no_grad():
        for photos in batches:
            x = prep(photos.to(device))
            b = len(x)
            keys, todo = None, list(range(len(masks)))
            if memo is not None:
                base = (src, dst, str(value), where, tensor_key(x))
                keys = [base + (bytes(row.cpu().numpy()),) for row in masks]
                first: dict = {}
                for i, k in enumerate(keys):
                    if k not in memo:
                        first.setdefault(k, i)
                todo = list(first.values())
            per = max(1, int(max_batch) // b)
            rows = [_chunk(hm, x, src, dst, masks[todo[k:k + per]].to(device), value, position)
                    for k in range(0, len(todo), per)]
            if keys is None:
                out.append(torch.cat(rows))  # (S, b, C_dst)
                continue
            for i, r in zip(todo, (r for chunk in rows for r in chunk), strict=True):
                memo[keys[i]] = r
            out.append(torch.stack([memo[k] for k in keys]))
    return torch.cat(out, 1)


def _chunk(hm: HookedModel, x: torch.Tensor, src: str, dst: str, m: torch.Tensor, value, position
           ) -> torch.Tensor:
    s, b = len(m), len(x)
    state = {"repeated": False}

    def hook(module, inputs, output):
        if not isinstance(output, torch.Tensor) or output.dim() < 2 or output.shape[1] != m.shape[1]:
            raise BadType(f"cannot ablate channels of {src!r}: its output is not a (B, {m.shape[1]}, ...) "
                            "tensor")
        return _masked(output, m, value, state["repeated"])

    with hm.hooks([(src, hook)]):
        try:
            _, cache = hm.run_with_cache(x, names=[dst], stop_at_last=True)
        except RuntimeError:
            if s == 1:
                raise
            state["repeated"] = True  # a branch from before src joins later: repeat the photos instead
            _, cache = hm.run_with_cache(x.repeat(s, *[1] * (x.dim() - 1)), names=[dst], stop_at_last=True)
    d = cache[dst]
    if len(d) != s * b:
        raise RuntimeError(f"{dst!r} does not follow {src!r} batch for batch (got {len(d)} rows for "
                           f"{s} x {b})")
    return _reduce(d, position).double().reshape(s, b, -1)


def wiring(hm: HookedModel, x: torch.Tensor, src: str, dst: str, dst_channels: list[int], *, draws: int = 2,
           seed: int = 0) -> torch.Tensor:
    """(len(dst_channels), C_src) bool: True where a dst channel's response depends on a src channel at all.

    src's output is replaced by itself plus noise of each channel's own scale (so ReLUs between src and dst
    open), and the gradient of each dst channel's sum with respect to it is taken; a channel whose gradient
    is exactly 0 in every draw is not wired to that dst channel (depthwise and grouped convs read only their
    own channels).
    """
    g = torch.Generator().manual_seed(int(seed))
    reads = None
    for _ in range(int(draws)):
        leaf: dict[str, torch.Tensor] = {}

        def hook(module, inputs, output, leaf=leaf):
            a = output.detach()
            dims = [0] + list(range(2, a.dim()))
            scale = a.std(dim=dims, keepdim=True) + a.abs().mean() + 1e-3
            noise = torch.randn(a.shape, generator=g).to(a) * scale
            z = (a + noise).requires_grad_(True)
            leaf["z"] = z
            return z

        with torch.enable_grad(), hm.hooks([(src, hook)]):
            _, cache = hm.run_with_cache(x, names=[dst], stop_at_last=True, detach=False)
            out = _reduce(cache[dst], "mean")  # (B, C_dst)
            grads = []
            for j, d in enumerate(dst_channels):
                (gz,) = torch.autograd.grad(out[:, d].sum(), leaf["z"], allow_unused=True,
                                            retain_graph=j < len(dst_channels) - 1)
                dims = [0] + list(range(2, leaf["z"].dim()))
                grads.append(torch.zeros(leaf["z"].shape[1], dtype=torch.bool) if gz is None
                             else (gz.abs().sum(dim=dims) > 0).cpu())
        r = torch.stack(grads)
        reads = r if reads is None else reads | r
    return reads
