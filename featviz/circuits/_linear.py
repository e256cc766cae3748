"""Forward passes cut between two layers: (model, x, src, dst) -> (src activation leaf, dst output).

Used by expanded weights (with the network linearised: activations -> identity, max pool -> average
pool), attribution and receptive-field lookups. Every pass stops right after ``dst`` ran.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from featviz.circuits._common import device_of, kind, preprocess_fn, raw_model
from featviz.circuits._graph import ModuleGraph
from featviz.hooks import HookedModel

Hook = tuple[str, Callable]


class _Stop(Exception):
    """Raised by the dst hook to end a forward pass early."""


def example_input(model: nn.Module, size: int | None = None, seed: int = 0) -> torch.Tensor:
    """A (1, C, S, S) model input (uniform noise through the model's preprocess), S = ``size`` or the
    model's ``input_size`` or 224; C = the first conv's input channels."""
    raw = raw_model(model)
    size = int(size or getattr(raw, "input_size", None) or 224)
    first = next((m for m in raw.modules() if kind(m) == "conv"), None)
    channels = first.weight.shape[1] * int(getattr(first, "groups", 1)) if first is not None else 3
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, channels, size, size, generator=gen).to(device_of(raw))
    return preprocess_fn(raw, None)(x)


@contextmanager
def no_inplace(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Turn ``inplace`` off on the given modules for the block (their input must survive)."""
    changed = [m for m in modules if getattr(m, "inplace", False)]
    try:
        for m in changed:
            m.inplace = False
        yield
    finally:
        for m in changed:
            m.inplace = True


def linearising_hooks(graph: ModuleGraph, names: Sequence[str]) -> list[Hook]:
    """Hooks that make the listed modules linear: activations pass their input through, max pooling
    becomes average pooling with the same window (dilated max pools keep their gradient at the input)."""
    hooks: list[Hook] = []
    for n in names:
        c = graph.calls[n]
        if not c.leaf:
            continue
        if c.kind == "act":
            hooks.append((n, lambda m, inputs, out: inputs[0]))
        elif c.kind == "maxpool" and getattr(c.module, "dilation", 1) in (1, (1, 1)):
            hooks.append((n, _avg_like))
    return hooks


def _avg_like(module: nn.Module, inputs: tuple, out: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(inputs[0], module.kernel_size, module.stride or module.kernel_size, module.padding,
                        ceil_mode=bool(getattr(module, "ceil_mode", False)), count_include_pad=False)


def run_cut(hm: HookedModel, x: torch.Tensor, src: str, dst: str,
            src_fn: Callable[[torch.Tensor], torch.Tensor], extra: Sequence[Hook] = (),
            params: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``x`` until ``dst``; ``src``'s output is replaced by ``src_fn(output)`` (e.g. a fresh leaf).
    Returns (the replaced src activation, dst's output). ``params`` runs with those parameters instead."""
    store: dict[str, torch.Tensor] = {}

    def on_src(module, inputs, out):
        store["a"] = src_fn(out)
        return store["a"]

    def on_dst(module, inputs, out):
        store["d"] = out
        raise _Stop

    acts = [hm.module(n) for n, _ in extra]
    with no_inplace(acts), hm.hooks([(src, on_src), *extra, (dst, on_dst)]):
        try:
            if params is None:
                hm.model(x)
            else:
                torch.func.functional_call(hm.model, params, (x,), strict=False)
        except _Stop:
            pass
    if "a" not in store or "d" not in store:
        raise ValueError(f"the forward pass did not run both {src!r} and {dst!r}")
    return store["a"], store["d"]


def leaf_of(out: torch.Tensor, repeat: int = 1) -> torch.Tensor:
    """A detached copy of ``out`` repeated ``repeat`` times along the batch, requiring grad."""
    return out.detach().repeat(repeat, *([1] * (out.dim() - 1))).requires_grad_(True)


def centre(shape: Sequence[int]) -> tuple[int, int]:
    """The central position (row, col) of a (..., H, W) map."""
    return shape[-2] // 2, shape[-1] // 2


def centre_rows(hm: HookedModel, graph: ModuleGraph, x: torch.Tensor, src: str, dst: str,
                channels: Sequence[int], batch_size: int = 32, progress: bool = False) -> torch.Tensor:
    """Gradients of each dst channel at the central position w.r.t. the src activation, through the
    linearised network, (n, C_src, Hs, Ws). One backward pass per chunk of ``batch_size`` channels."""
    from tqdm.auto import tqdm

    extra = linearising_hooks(graph, graph.between(src, dst))
    rows = []
    chunks = [list(channels[i:i + batch_size]) for i in range(0, len(channels), batch_size)]
    for chunk in tqdm(chunks, desc="expanded weights", disable=not progress or len(chunks) < 2):
        n = len(chunk)
        a, d = run_cut(hm, x, src, dst, lambda out, n=n: leaf_of(out, n), extra)
        go = torch.zeros_like(d)
        i0, j0 = centre(d.shape)
        go[torch.arange(len(chunk)), torch.tensor(chunk), i0, j0] = 1.0
        rows.append(_grad(d, a, go, src, dst))
    return torch.cat(rows)


def _grad(d: torch.Tensor, a: torch.Tensor, go: torch.Tensor, src: str, dst: str) -> torch.Tensor:
    (g,) = torch.autograd.grad(d, a, go, allow_unused=True)
    if g is None:
        raise ValueError(f"{dst!r} does not depend on {src!r}; pick a src layer upstream of dst")
    return g


def support_box(hm: HookedModel, graph: ModuleGraph, x: torch.Tensor, src: str, dst: str,
                position: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """Rows/cols (r0, r1, c0, c1), inclusive, of the src positions that can reach dst at ``position``
    (default: the centre): the receptive field, found by autograd with every weight set to one."""
    params = {n: torch.ones_like(p) for n, p in hm.model.named_parameters()}
    params.update({n: torch.ones_like(b) for n, b in hm.model.named_buffers() if n.endswith("running_var")})
    params.update({n: torch.zeros_like(b) for n, b in hm.model.named_buffers() if n.endswith("running_mean")})
    extra = linearising_hooks(graph, graph.between(src, dst))
    a, d = run_cut(hm, x, src, dst, lambda out: torch.zeros_like(out).requires_grad_(True), extra,
                   params=params)
    go = torch.zeros_like(d)
    i0, j0 = position if position is not None else centre(d.shape)
    go[0, :, i0, j0] = 1.0
    hit = _grad(d, a, go, src, dst)[0].abs().sum(0) > 0  # (Hs, Ws)
    rows, cols = hit.any(1).nonzero().flatten(), hit.any(0).nonzero().flatten()
    if len(rows) == 0:
        raise ValueError(f"no position of {src!r} reaches {dst!r}")
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
