"""Forward passes cut between two layers: (model, x, src, dst) -> (src activation leaf, dst output).

Used by expanded weights (with the network after ``src`` linearised: activations -> identity, max
pooling -> average pooling, gates (sigmoid, softmax) and LayerNorm/GroupNorm statistics held at their
values on the probe input), attribution and receptive-field lookups. Linearising works on modules and
on functional calls written in ``forward`` (``F.relu``, ``torch.sigmoid``, ``F.layer_norm``) alike.
Every pass stops right after ``dst`` ran. Names may carry a call index (``"relu#2"``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from tqdm.auto import tqdm

from featviz.circuits._graph import ModuleGraph, kind
from featviz.core import StopForward
from featviz.errors import BadValue
from featviz.hooks import HookedModel

Hook = tuple[str, Callable]

_IDENTITY = {"relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "elu", "elu_",
             "gelu", "silu", "silu_", "hardswish", "hardswish_", "mish", "selu", "selu_", "celu", "celu_",
             "softplus", "tanh", "tanh_", "threshold", "threshold_"}
_GATES = {"sigmoid", "sigmoid_", "hardsigmoid", "hardsigmoid_", "softmax", "_softmax"}
_POOL_ARGS = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")


class Linearised(TorchFunctionMode):
    """While ``on``: elementwise activations pass their input through, max pooling becomes average
    pooling with the same window, gates and normalisation statistics are held (detached)."""

    def __init__(self):
        super().__init__()
        self.on = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.on:
            name = getattr(func, "__name__", "")
            if name in _IDENTITY and args:
                return args[0]
            if name in _GATES:
                return func(*args, **kwargs).detach()
            if name in ("max_pool2d", "max_pool2d_with_indices", "_max_pool2d"):
                return _max_as_avg(func, args, kwargs)
            if name == "adaptive_max_pool2d":
                size = kwargs.get("output_size", args[1] if len(args) > 1 else 1)
                out = F.adaptive_avg_pool2d(args[0], size)
                return (out, func(*args, **kwargs)[1]) if kwargs.get("return_indices") else out
            if name == "layer_norm":
                return _held_layer_norm(*args, **kwargs)
            if name == "group_norm":
                return _held_group_norm(*args, **kwargs)
        return func(*args, **kwargs)


def _max_as_avg(func: Callable, args: tuple, kwargs: dict) -> object:
    a = dict(zip(_POOL_ARGS, args), **kwargs)
    dil = a.get("dilation", 1)
    if dil not in (1, (1, 1), [1, 1]):  # a dilated max pool keeps its gradient at the input
        return func(*args, **kwargs)
    out = F.avg_pool2d(a["input"], a["kernel_size"], a.get("stride") or a["kernel_size"], a.get("padding", 0),
                       ceil_mode=bool(a.get("ceil_mode", False)), count_include_pad=False)
    if a.get("return_indices") or getattr(func, "__name__", "") == "max_pool2d_with_indices":
        return out, func(*args, **kwargs)[1]
    return out


def _held_layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    dims = tuple(range(-len(normalized_shape), 0))
    mean = x.mean(dims, keepdim=True).detach()
    std = torch.sqrt(x.var(dims, unbiased=False, keepdim=True) + eps).detach()
    y = (x - mean) / std
    return y * weight + (bias if bias is not None else 0) if weight is not None else y


def _held_group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    g = x.reshape(x.shape[0], num_groups, -1)
    mean = g.mean(-1, keepdim=True).detach()
    std = torch.sqrt(g.var(-1, unbiased=False, keepdim=True) + eps).detach()
    y = ((g - mean) / std).reshape(x.shape)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    return y + bias.reshape(shape) if bias is not None else y


def _module_hooks(hm: HookedModel, mode: Linearised) -> tuple[list[Hook], list[nn.Module]]:
    """Hooks linearising activation and max-pool *modules* (featviz's from-scratch layers do not call
    ``torch.nn.functional``), and the modules whose ``inplace`` must be off meanwhile."""
    hooks: list[Hook] = []
    inplace = []
    for name in hm.hook_names:
        m = hm.module(name)
        k = kind(m)
        if len(list(m.children())) == 0 and k == "act":
            hooks.append((name, lambda mod, inputs, out: inputs[0] if mode.on else None))
        elif k == "maxpool" and getattr(m, "dilation", 1) in (1, (1, 1)):
            hooks.append((name, lambda mod, inputs, out: _avg_like(mod, inputs, out) if mode.on else None))
        if getattr(m, "inplace", False) is True:
            inplace.append(m)
    return hooks, inplace


def _avg_like(module: nn.Module, inputs: tuple, out: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(inputs[0], module.kernel_size, module.stride or module.kernel_size, module.padding,
                        ceil_mode=bool(getattr(module, "ceil_mode", False)), count_include_pad=False)


class _NoInplace:
    def __init__(self, modules: Sequence[nn.Module]):
        self.modules = list(modules)

    def __enter__(self):
        for m in self.modules:
            m.inplace = False

    def __exit__(self, *exc):
        for m in self.modules:
            m.inplace = True


def run_cut(hm: HookedModel, x: torch.Tensor | None, src: str | None, dst: str,
            src_fn: Callable[[torch.Tensor], torch.Tensor], linear: bool = False,
            params: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``x`` until ``dst``; ``src``'s output is replaced by ``src_fn(output)`` (e.g. a fresh leaf).

    ``linear``: linearise everything after ``src`` (from the input when ``src`` is ``None``: then
    ``x`` itself plays the src activation). Returns (the replaced src activation, dst's output);
    ``params`` runs with those parameters instead. In-place ops after ``src`` act on a copy of the
    replacement, never on the leaf itself.
    """
    store: dict[str, torch.Tensor] = {}
    mode = Linearised()

    def on_src(module, inputs, out):
        store["a"] = src_fn(out)
        mode.on = linear
        return store["a"].clone() if store["a"].is_leaf and store["a"].requires_grad else store["a"]

    def on_dst(module, inputs, out):
        store["d"] = out
        raise StopForward

    with ExitStack() as stack:  # "name" is the first call only (as everywhere an activation is named)
        hooks: list[Hook] = [(_one_call(dst), on_dst)]
        if src is not None:
            hooks.insert(0, (_one_call(src), on_src))
        if linear:  # before src's hook: a linearising hook must not replace the src leaf
            extra, inplace = _module_hooks(hm, mode)
            hooks[0:0] = extra
            stack.enter_context(_NoInplace(inplace))
            stack.enter_context(mode)
        stack.enter_context(hm.hooks(hooks))
        if src is None:
            store["a"] = x
            mode.on = linear
        try:
            if params is None:
                hm.model(x)
            else:
                torch.func.functional_call(hm.model, params, (x,), strict=False)
        except StopForward:
            pass
    if "a" not in store or "d" not in store:
        raise BadValue(f"the forward pass did not run both {src!r} and {dst!r}")
    return store["a"], store["d"]


def _one_call(name: str) -> str:
    """An activation name as a hook name: ``"relu"`` is the first call (``"relu#1"``), not every call."""
    return name if "#" in name else f"{name}#1"


def leaf_of(out: torch.Tensor, repeat: int = 1) -> torch.Tensor:
    """A detached copy of ``out`` repeated ``repeat`` times along the batch, requiring grad."""
    return out.detach().repeat(repeat, *([1] * (out.dim() - 1))).requires_grad_(True)


def centre(shape: Sequence[int]) -> tuple[int, int]:
    """The central position (row, col) of a (..., H, W) map."""
    return shape[-2] // 2, shape[-1] // 2


def maps(t: torch.Tensor, lay: str) -> torch.Tensor:
    """A channels-last (B, H, W, C) tensor as (B, C, H, W); maps as they are."""
    return t.permute(0, 3, 1, 2) if lay == "channels_last" else t


def centre_rows(hm: HookedModel, graph: ModuleGraph, x: torch.Tensor, src: str, dst: str,
                channels: Sequence[int], batch_size: int = 32, progress: bool = False) -> torch.Tensor:
    """Gradients of each dst channel at the central position w.r.t. the src activation, through the
    linearised network, (n, C_src, Hs, Ws). One backward pass per chunk of ``batch_size`` channels."""
    rows = []
    chunks = [list(channels[i:i + batch_size]) for i in range(0, len(channels), batch_size)]
    for chunk in tqdm(chunks, desc="expanded weights", disable=not progress or len(chunks) < 2):
        xs = x.repeat(len(chunk), *([1] * (x.dim() - 1)))  # the whole batch: parallel branches match it
        a, d = run_cut(hm, xs, src, dst, leaf_of, linear=True)
        d = maps(d, graph.calls[dst].layout)
        go = torch.zeros_like(d)
        i0, j0 = centre(d.shape)
        go[torch.arange(len(chunk)), torch.tensor(chunk), i0, j0] = 1.0
        rows.append(maps(_grad(d, a, go, src, dst), graph.calls[src].layout))
    return torch.cat(rows)


def _grad(d: torch.Tensor, a: torch.Tensor, go: torch.Tensor, src: str, dst: str) -> torch.Tensor:
    if not d.requires_grad:
        raise BadValue(f"{dst!r} does not depend on {src!r}; pick a src layer upstream of dst")
    (g,) = torch.autograd.grad(d, a, go, allow_unused=True)
    if g is None:
        raise BadValue(f"{dst!r} does not depend on {src!r}; pick a src layer upstream of dst")
    return g


def ones_params(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every weight set to one, BatchNorm statistics to (0, 1): a pass where any connection shows."""
    params = {n: torch.ones_like(p) for n, p in model.named_parameters()}
    params.update({n: torch.ones_like(b) for n, b in model.named_buffers() if n.endswith("running_var")})
    params.update({n: torch.zeros_like(b) for n, b in model.named_buffers() if n.endswith("running_mean")})
    return params


def support_box(hm: HookedModel, graph: ModuleGraph, x: torch.Tensor, src: str, dst: str,
                position: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """Rows/cols (r0, r1, c0, c1), inclusive, of the src positions that can reach dst at ``position``
    (default: the centre): the receptive field, found by autograd with every weight set to one."""
    def start(out: torch.Tensor) -> torch.Tensor:
        # a positive, varying src (not zeros): a LayerNorm / GroupNorm held at its statistics would divide
        # a constant by sqrt(0 + eps) and, over a dozen norms (PoolFormer), overflow to inf and NaN
        gen = torch.Generator().manual_seed(0)
        return (0.5 + torch.rand(out.shape, generator=gen)).to(out).requires_grad_(True)

    a, d = run_cut(hm, x, src, dst, start, linear=True, params=ones_params(hm.model))
    d = maps(d, graph.calls[dst].layout)
    go = torch.zeros_like(d)
    i0, j0 = position if position is not None else centre(d.shape)
    go[0, :, i0, j0] = 1.0
    hit = maps(_grad(d, a, go, src, dst), graph.calls[src].layout)[0].abs().sum(0) > 0  # (Hs, Ws)
    rows, cols = hit.any(1).nonzero().flatten(), hit.any(0).nonzero().flatten()
    if len(rows) == 0:
        hs, ws = hit.shape
        raise BadValue(f"no position of {src!r} ({hs}x{ws} map) reaches {dst!r} in the linearised network: "
                       f"at this input size the map is too small for the probe (or the path cancels); try a "
                       f"larger size= (e.g. {2 * max(int(x.shape[-1]), 32)})")
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
