"""Attribution on data: (model, src, dst, images) -> (n_dst, C_src) contribution of each src channel.

One function per method (``attribute_grad_x_act``, ``attribute_integrated_gradients``, ``attribute_captum``)
behind the thin dispatcher ``attribute(..., method=)``.

A dst channel's value is its spatial mean per image. ``"grad_x_act"`` and ``"integrated_gradients"``
run on featviz's batched path: one forward pass (stopping at dst) serves every dst channel; the
backward passes for all channels run batched (``is_grads_batched=True``) on a GPU, and one per
channel over the retained graph on a CPU, where that measured faster. ``"captum:<ClassName>"`` runs any captum
Layer*/Neuron* attribution class once per dst channel. Results are summed over images (and space,
unless ``keep_space=True``, which gives (n_dst, C_src, H, W)).

Where the time goes, and what avoids it (bench/README.md): the layers before src run with no parameter
requiring grad (``featviz.core.evaluating(freeze_grads=True)``), so they build no autograd graph and no
backward pass computes weight gradients. On a CPU the images (integrated gradients: the interpolation steps)
go through in chunks small enough that the 16-odd backward passes over one chunk's graph stay in cache (2-4x
faster per row than over a 32-row graph). Integrated gradients run one image up to src once per chunk and
continue from src with that image's chunk of interpolated activations in its place, instead of re-running
the image once per step; a skip from before src then meets a batch of 1, which broadcasts to the values a
repeated image gives (if it fails or changes the batch, the image is repeated instead).
"""
from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from featviz.circuits._graph import ModuleGraph
from featviz.circuits._keywords import images_keyword
from featviz.circuits._linear import _one_call, run_cut
from featviz.core import Ref, as_images, channel_list, channel_values, evaluating, format_ref, preprocess_fn
from featviz.errors import BadType, BadValue
from featviz.hooks import HookedModel, hooked

__all__ = ["attribute", "attribute_captum", "attribute_grad_x_act", "attribute_integrated_gradients",
           "METHODS", "captum_methods"]

METHODS = ("grad_x_act", "integrated_gradients")
"""The ``method=`` values :func:`attribute` implements itself (captum's methods: :func:`captum_methods`)."""


def captum_methods() -> list[str]:
    """Names usable as ``"captum:<name>"``: captum's layer and neuron attribution classes.

    Example:
        >>> "LayerConductance" in captum_methods()
        True
    """
    import captum.attr as ca

    bases = (ca.LayerAttribution, ca.NeuronAttribution)
    return sorted(n for n in dir(ca) if isinstance(getattr(ca, n), type) and issubclass(getattr(ca, n), bases)
                  and getattr(ca, n) not in bases)


_OLD_ORDER = ("images", "src", "dst", "dst_channels", "method")


def _first_wave_order(fn):
    """``attribute`` also accepts the first-wave order attribute(model, images, src, dst, ...) -- positional
    or with src=/dst= as keywords -- with a DeprecationWarning; the package order is model, references, data.
    (A decorator, so that ``attribute`` itself keeps its signature and docstring for the API reference;
    it runs inside ``images_keyword``, hence ``stacklevel=3``.)"""
    @functools.wraps(fn)
    def attribute(model: nn.Module, *args, **kwargs) -> torch.Tensor:
        if args and not isinstance(args[0], (str, Ref)) and "images" not in kwargs:
            warnings.warn("attribute(model, images, src, dst) is deprecated: write attribute(model, src, "
                          "dst, images) (model, references, data)", DeprecationWarning, stacklevel=3)
            if len(args) > len(_OLD_ORDER):
                raise BadType(f"attribute() takes at most {len(_OLD_ORDER) + 1} positional arguments")
            for name, value in zip(_OLD_ORDER, args):
                if name in kwargs:
                    raise BadType(f"attribute() got two values for {name!r}")
                kwargs[name] = value
            args = ()
        return fn(model, *args, **kwargs)

    return attribute


# attribute()'s keyword options -> the method that reads them ("all": every method)
_OPTIONS = {"keep_space": "all", "preprocess": "all", "steps": "integrated_gradients",
            "baseline": "integrated_gradients", "batch_size": "integrated_gradients",
            "captum_kwargs": "captum"}


@images_keyword("inputs")
@_first_wave_order
def attribute(model: nn.Module, src: str, dst: str, images: torch.Tensor,
              dst_channels: Sequence[int] | None = None, method: str = "grad_x_act",
              **options) -> torch.Tensor:
    """How much each channel of ``src`` contributes to each dst channel on ``images``: (n_dst, C_src).

    A thin dispatcher over one function per method (the same numbers as calling it directly):
    ``"grad_x_act"`` -> :func:`attribute_grad_x_act`, ``"integrated_gradients"`` ->
    :func:`attribute_integrated_gradients`, ``"captum:<ClassName>"`` -> :func:`attribute_captum`.
    ``options`` are that function's keywords (``keep_space``, ``preprocess``; ``steps``, ``baseline``,
    ``batch_size`` for integrated gradients; ``captum_kwargs`` for captum). ``dst_channels`` picks dst
    channels (as ``"dst:3,7"`` does; it wins over channels on ``dst``). Arguments follow the package order
    (model, references, data); the first-wave order ``attribute(model, images, src, dst)`` and the old
    keyword ``inputs=`` still work with a ``DeprecationWarning``.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3))
        >>> attribute(net, "1", "2", torch.rand(2, 3, 16, 16), dst_channels=[0, 3]).shape
        torch.Size([2, 8])
    """
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise BadType(f"attribute() got unexpected keyword arguments {sorted(unknown)}")
    if dst_channels is not None:
        if len(dst_channels) == 0:
            raise BadValue("dst_channels is empty: give at least one channel, or None for every channel")
        dst = format_ref(hooked(model).ref(dst).key, [int(c) for c in dst_channels])
    shared = {k: v for k, v in options.items() if _OPTIONS[k] == "all"}  # the others' options: ignored
    if method == "grad_x_act":
        return attribute_grad_x_act(model, src, dst, images, **shared)
    if method == "integrated_gradients":
        ig = {k: v for k, v in options.items() if _OPTIONS[k] in ("all", "integrated_gradients")}
        return attribute_integrated_gradients(model, src, dst, images, **ig)
    if isinstance(method, str) and method.startswith("captum:"):
        kwargs = options.get("captum_kwargs") or {}
        return attribute_captum(model, src, dst, images, method.partition(":")[2], **shared, **kwargs)
    raise BadValue(f"unknown attribution method {method!r}; use one of {list(METHODS)} or "
                   f"'captum:<name>' with a name from {captum_methods()}")


def attribute_grad_x_act(model: nn.Module, src: str, dst: str, images: torch.Tensor, *,
                         keep_space: bool = False, preprocess: Callable | bool | None = None) -> torch.Tensor:
    """Gradient times activation: for each dst channel (its spatial mean), ``sum over images of
    d dst / d src * src``, per src channel: (n_dst, C_src).

    Args:
        src: the layer whose channels get the credit (``"name"``, ``"name#2"`` for a module's second
            call); channels on it (``"relu1:0,3"``) select columns.
        dst: the layer explained, optionally with channels (``"blocks.4:3,7"``, negative ones count from
            the end; default every channel). A dst channel's value is its mean over positions (or tokens).
        images: (B, C, H, W) as the model's ``preprocess`` expects them (e.g. in [0, 1]); ``preprocess``
            is applied (``preprocess=False`` to skip it, or pass a callable).
        keep_space: return (n_dst, C_src, H, W) instead of summing over space (feature-map layers only).

    One forward pass (stopping at dst) serves every dst channel. The model runs in eval mode (modes and
    BatchNorm statistics restored); channels-last layers count their last dimension as channels.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3))
        >>> attribute_grad_x_act(net, "1", "2:0,3", torch.rand(2, 3, 16, 16)).shape
        torch.Size([2, 8])
    """
    return _attribute(model, src, dst, images, preprocess, keep_space, _grad_x_act, "grad_x_act")


def attribute_integrated_gradients(model: nn.Module, src: str, dst: str, images: torch.Tensor, *,
                                   steps: int = 50, baseline: torch.Tensor | float = 0.0,
                                   batch_size: int = 64, keep_space: bool = False,
                                   preprocess: Callable | bool | None = None) -> torch.Tensor:
    """Integrated gradients at src: the src activation moves on a straight line from its value on
    ``baseline`` images (a value, or images) to its value on ``images``; the gradients of each dst
    channel's spatial mean along it are integrated with the Gauss-Legendre rule of ``steps`` nodes (as
    captum's default). (n_dst, C_src); arguments as :func:`attribute_grad_x_act`.

    ``batch_size``: at most this many interpolation steps (of one image) per forward pass; on a CPU chunks
    are smaller, sized to stay in cache.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3))
        >>> attribute_integrated_gradients(net, "1", "2", torch.rand(2, 3, 16, 16), steps=8).shape
        torch.Size([4, 8])
    """
    def compute(hm, x, src, dst, resolve, lay_dst, first, reduce):
        return _integrated_gradients(hm, x, src, dst, resolve, steps, baseline, preprocess, batch_size,
                                     lay_dst, reduce)

    return _attribute(model, src, dst, images, preprocess, keep_space, compute, "integrated_gradients")


def attribute_captum(model: nn.Module, src: str, dst: str, images: torch.Tensor, method: str, *,
                     keep_space: bool = False, preprocess: Callable | bool | None = None,
                     **captum_kwargs) -> torch.Tensor:
    """Any captum Layer*/Neuron* attribution class (``method``, a name from :func:`captum_methods`), once
    per dst channel, summed over images: (n_dst, C_src). Layer classes attribute dst's spatial mean to
    src; Neuron classes attribute to src with dst's mean as the neuron. ``captum_kwargs`` go to the
    class's ``attribute``; other arguments as :func:`attribute_grad_x_act`.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3))
        >>> attribute_captum(net, "1", "2:0", torch.rand(2, 3, 16, 16), "LayerGradientXActivation").shape
        torch.Size([1, 8])
    """
    def compute(hm, x, src, dst, resolve, lay_dst, first, reduce):
        return torch.stack([reduce(r) for r in _captum(hm, x, src, dst, resolve, method, captum_kwargs)])

    return _attribute(model, src, dst, images, preprocess, keep_space, compute, "captum")


def _attribute(model: nn.Module, src: str, dst: str, images: torch.Tensor, preprocess, keep_space: bool,
               compute: Callable, method: str) -> torch.Tensor:
    """What every method shares: references and channels, eval mode, the execution graph (src before dst,
    feature maps or tokens), then ``compute(hm, x, src, dst, resolve, lay_dst, first, reduce)`` -> (n, ...):
    per dst channel, ``reduce`` of its (b, *src item) attributions, which sums them over the rows and (unless
    ``keep_space``) space, and the src channel selection. For ``"grad_x_act"`` the
    graph pass is also its first chunk; except for captum (whose classes need the model as it is) no
    parameter requires grad while ``compute`` runs (the layers before src build no autograd graph, no weight
    gradients are computed)."""
    hm = hooked(model)
    x = preprocess_fn(hm, preprocess)(as_images(images, "images", channels=None, unit=False))
    sref, dref = hm.ref(src), hm.ref(dst)
    src, dst = sref.key, dref.key
    with evaluating(hm.model):
        graph, first = _graph_and_first_chunk(hm, x, src, dst, method == "grad_x_act")
        lay_src, lay_dst = (graph.call(n).layout for n in (src, dst))
        for name, lay in ((src, lay_src), (dst, lay_dst)):
            if lay == "other":
                raise BadValue(graph.not_maps(name))
        if not graph.runs_before(src, dst):
            raise BadValue(f"{dst!r} runs before {src!r}; src must be the earlier layer")
        n_src = graph.call(src).out_shape[1 if lay_src in ("maps", "vector") else -1]
        src_ch = channel_list(sref.channels, n_src, src)

        def resolve(n_dst: int) -> list[int]:
            return channel_list(dref.channels, n_dst, dst)

        if keep_space and lay_src not in ("maps", "channels_last"):
            raise BadValue(f"keep_space=True needs a src with feature maps; {graph.not_maps(src)}")
        space = {"maps": (-2, -1), "channels_last": (1, 2), "tokens": (1,), "vector": ()}[lay_src]

        def reduce(t: torch.Tensor) -> torch.Tensor:  # (b, *src item) -> summed over rows (and space)
            return t.sum(0) if keep_space else t.sum((0, *space))

        with evaluating(hm.model, freeze_grads=method != "captum"):
            out = compute(hm, x, src, dst, resolve, lay_dst, first, reduce)
    out = out.detach()  # (n, C_src), or (n, *src item) with keep_space
    if keep_space and lay_src == "channels_last":
        out = out.permute(0, 3, 1, 2)
    return out[:, src_ch]


def _graph_and_first_chunk(hm: HookedModel, x: torch.Tensor, src: str, dst: str, chunk: bool
                           ) -> tuple[ModuleGraph, tuple[torch.Tensor, torch.Tensor] | None]:
    """The execution graph of the first image, recorded up to dst only; with ``chunk``, the same pass is
    also grad x act's first chunk (src's output replaced by a leaf): (src leaf, dst output).

    The graph pass used to be a whole extra forward of the model (to its end) per call: on googlenet,
    inception3a -> inception4a, one image, it made attribution 1.6x its floor (bench/attribution.py).
    If src did not run before dst stopped the pass, the whole forward is recorded, so that the graph
    can say what is wrong (src after dst, a call that does not exist).
    """
    store: dict[str, torch.Tensor] = {}

    def on_src(module, inputs, out):
        store["a"] = out.detach().requires_grad_(True)
        return store["a"].clone()  # in-place ops downstream act on a copy, never on the leaf

    def on_dst(module, inputs, out):
        store["d"] = out

    hooks = [(_one_call(src), on_src), (_one_call(dst), on_dst)] if chunk else []
    try:
        graph = ModuleGraph(hm, x[:1], hooks=hooks, stop_after=dst)
        graph.call(src)  # recorded before dst returned (else the full graph below names the problem)
    except BadValue:
        return ModuleGraph(hm, x[:1]), None
    ok = chunk and "a" in store and "d" in store and isinstance(store["a"], torch.Tensor) \
        and isinstance(store["d"], torch.Tensor) and store["d"].requires_grad
    return graph, ((store["a"], store["d"]) if ok else None)


def _column_grads(outputs: torch.Tensor, a: torch.Tensor, weight: torch.Tensor | None = None,
                  vmap: bool | None = None) -> Iterator[torch.Tensor]:
    """Gradients of each column of ``outputs`` (B, n), each row weighted by ``weight`` (B,), w.r.t. ``a``,
    all from the one forward pass that made ``outputs``: the n gradients (each ``a.shape``) in turn.

    On a GPU all columns go through one batched backward pass (``is_grads_batched=True``, vmap). On a
    CPU, vmap's batched backward measured 2-3x slower than one backward per column over the retained
    graph (bench/README.md), so the CPU path loops, and a caller can reduce each gradient before the next
    exists; both give the same numbers. ``vmap`` forces a path.
    """
    n = outputs.shape[1]
    w = torch.ones(outputs.shape[0], device=outputs.device) if weight is None else weight
    go = torch.eye(n, device=outputs.device)[:, None, :] * w[None, :, None]  # (n, B, n)
    if vmap if vmap is not None else outputs.device.type != "cpu":
        try:
            yield from torch.autograd.grad(outputs, a, go, is_grads_batched=True)[0]
            return
        except RuntimeError:  # a layer vmap cannot batch: fall through to the loop
            pass
    for k in range(n):
        yield torch.autograd.grad(outputs, a, go[k], retain_graph=k < n - 1)[0]


def _attributions(outputs: torch.Tensor, a: torch.Tensor, times: torch.Tensor, reduce: Callable,
                  weight: torch.Tensor | None = None, vmap: bool | None = None) -> torch.Tensor:
    """``reduce(grad * times)`` for the gradient w.r.t. ``a`` of each column of ``outputs`` (rows weighted
    by ``weight``): (n, ...).

    Each gradient is multiplied and reduced as soon as it exists, as a hand-written loop does: stacking the
    n gradients first and multiplying the (n, b, C, H, W) block cost up to a tenth of the whole call on
    googlenet (bench/attribution.py --floor)."""
    return torch.stack([reduce(g * times) for g in _column_grads(outputs, a, weight, vmap)])


def _rows(x: torch.Tensor, per_row: int, cap: int) -> int:
    """How many batch rows one forward/backward chunk takes: ``cap`` on a GPU; on a CPU as many as keep
    the src activation within ``_CPU_CHUNK_BYTES`` (16 backward passes over a cache-sized graph measured
    2-4x faster per row than over a 32-row one), at least one."""
    if x.device.type != "cpu":
        return max(1, cap)
    return max(1, min(cap, _CPU_CHUNK_BYTES // max(1, per_row)))


_CPU_CHUNK_BYTES = 1 << 20


def _grad_x_act(hm: HookedModel, x: torch.Tensor, src: str, dst: str,
                resolve: Callable[[int], list[int]], lay_dst: str,
                first: tuple[torch.Tensor, torch.Tensor] | None, reduce: Callable) -> torch.Tensor:
    def leaf(out: torch.Tensor) -> torch.Tensor:
        return out.detach().requires_grad_(True)

    total, channels, k, rows = None, None, 0, 1  # the first chunk (one image) tells src's size
    while k < len(x):
        if k == 0 and first is not None:  # the graph's pass already ran image 0 up to dst
            a, d = first
        else:
            a, d = run_cut(hm, x[k:k + rows], src, dst, leaf)
        values = channel_values(d, lay_dst)  # (b, C_dst)
        if channels is None:
            channels = resolve(values.shape[1])
        part = _attributions(values[:, channels], a, a.detach(), reduce)
        total = part if total is None else total + part
        k += len(a)
        rows = _rows(x, a[0].numel() * a.element_size(), len(x))
    return total


def gauss_legendre(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes in [0, 1] and their weights (summing to 1) for a ``steps``-point Gauss-Legendre rule.

    Example:
        >>> float(gauss_legendre(5)[1].sum())
        1.0
    """
    if steps < 1:
        raise BadValue(f"steps must be >= 1, got {steps}")
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return torch.tensor((nodes + 1) / 2, dtype=torch.float32), torch.tensor(weights / 2, dtype=torch.float32)


def _integrated_gradients(hm: HookedModel, x: torch.Tensor, src: str, dst: str, resolve: Callable,
                          steps: int, baseline: torch.Tensor | float, preprocess,
                          batch_size: int, lay_dst: str, reduce: Callable) -> torch.Tensor:
    base_img = torch.full_like(x, float(baseline)) if not isinstance(baseline, torch.Tensor) else baseline
    x0 = preprocess_fn(hm, preprocess)(base_img.to(x).expand_as(x)) if isinstance(baseline, torch.Tensor) \
        else preprocess_fn(hm, preprocess)(base_img)
    with torch.no_grad():
        _, cache = hm.run_with_cache(torch.cat([x, x0]), names=[src, dst], stop_at_last=True)
    act, act0 = cache[src][:len(x)], cache[src][len(x):]
    channels = resolve(channel_values(cache[dst], lay_dst).shape[1])
    alphas, weights = (t.to(x) for t in gauss_legendre(steps))
    rows = _rows(x, act[0].numel() * act.element_size(), batch_size)
    total = None
    for i in range(len(x)):  # chunks of steps of one image: the rows share that image's forward up to src
        diff = act[i] - act0[i]
        for s in range(0, steps, rows):
            path = act0[i] + alphas[s:s + rows, None, None, None] * diff  # (b, C, H, W)
            a, means = _path_means(hm, x[i:i + 1], src, dst, path, channels, lay_dst)
            part = _attributions(means, a, diff, reduce, weights[s:s + rows])
            total = part if total is None else total + part
    return total


def _path_means(hm: HookedModel, image: torch.Tensor, src: str, dst: str, path: torch.Tensor,
                channels: list[int], lay_dst: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Run one image up to src, then go on from src with the b rows of ``path`` in its place: the layers
    before src run once per chunk, not b times. A model that mixes a tensor from before src into later
    layers (a skip around src) sees batch 1 there: broadcasting gives the values b copies of the image
    would give, and an op that fails or changes the batch instead sends us to the plain way (the image
    repeated b times)."""
    leaf = path.requires_grad_(True)
    try:
        a, d = run_cut(hm, image, src, dst, lambda out: leaf)
        if d.shape[0] == len(path):
            return a, channel_values(d, lay_dst)[:, channels]
    except RuntimeError:
        pass
    a, d = run_cut(hm, image.repeat(len(path), 1, 1, 1), src, dst, lambda out: leaf)
    return a, channel_values(d, lay_dst)[:, channels]


def _captum(hm: HookedModel, x: torch.Tensor, src: str, dst: str, resolve: Callable, name: str,
            kwargs: dict) -> torch.Tensor:
    import captum.attr as ca

    if name not in captum_methods():
        raise BadValue(f"unknown captum method {name!r}; available: {captum_methods()}")
    with torch.no_grad():
        _, probe = hm.run_with_cache(x[:1], names=[src, dst], stop_at_last=True)
    channels, n_src = resolve(probe[dst].shape[1]), probe[src].shape[1]
    cls = getattr(ca, name)
    results = []
    if issubclass(cls, ca.LayerAttribution):
        method = cls(DstMeans(hm, dst), hm.module(src))
        for c in channels:
            results.append(method.attribute(x, target=c, **kwargs))
    else:  # neuron methods: attribute to the src activation, dst's spatial mean is the neuron
        with torch.no_grad():
            _, cache = hm.run_with_cache(x, names=[src], stop_at_last=True)
        method = cls(_FromSrc(hm, x, src, dst), hm.module(dst))
        for c in channels:
            select = lambda out, c=c: out[:, c].mean((-2, -1))  # noqa: E731
            results.append(method.attribute(cache[src], neuron_selector=select, **kwargs))
    out = torch.stack([r[0] if isinstance(r, tuple) else r for r in results])  # (n, B, C?, H, W)
    if out.dim() != 5 or out.shape[2] != n_src:
        raise BadValue(f"captum:{name} returned shape {tuple(out.shape[1:])}, not per-channel attributions "
                         f"(B, C_src, H, W) of {src!r}")
    return out  # (n, B, C_src, H, W)


class DstMeans(nn.Module):
    """``x -> (B, C_dst)``: the spatial mean of every channel of ``dst``; the forward stops after dst.

    The scalar that featviz attribution explains, as a module captum can call.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
        >>> DstMeans(fv.hooked(net), "0")(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 4])
    """

    def __init__(self, hm: HookedModel, dst: str):
        super().__init__()
        self.hm, self.dst = hm, dst

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, cache = self.hm.run_with_cache(x, names=[self.dst], stop_at_last=True, detach=False)
        return cache[self.dst].mean((-2, -1))


class _FromSrc(nn.Module):
    """``a -> model output`` where ``a`` replaces src's activation (inputs repeated to a's batch)."""

    def __init__(self, hm: HookedModel, x: torch.Tensor, src: str, dst: str):
        super().__init__()
        self.hm, self.x, self.src, self.dst = hm, x, src, dst

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        reps = a.shape[0] // self.x.shape[0]
        x = self.x.repeat(reps, *([1] * (self.x.dim() - 1)))
        _, d = run_cut(self.hm, x, self.src, self.dst, lambda out: a)
        return d
