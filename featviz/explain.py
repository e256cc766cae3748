"""One photo explained (Building Blocks): (model, image (3, H, W) in [0, 1]) -> Explanation of what it saw.

Olah et al., *The Building Blocks of Interpretability* (Distill 2018) combine feature visualization with
attribution to answer "what did the network see in this photo, and why did it say 'tiger cat'?":

- the **semantic dictionary** (:meth:`Explanation.top_channels`): at each position of a layer's map, the
  channels that fire most, shown by their feature visualizations;
- **attribution** (:meth:`Explanation.attribution`): how much each channel at each position contributes to
  the target (a class logit, or a unit's mean), by integrated gradients in the layer's activation space,
  from the activations of a baseline image (black by default) to the photo's; complete: it sums to
  target(photo) - target(layer at its baseline activation) (:meth:`Explanation.completeness`);
- **spatial attribution** between two layers, the **activation grid** (one feature visualization per
  position, rendered jointly as crops of one image) and **neuron groups** of this photo (a factorization
  of its activations, each group with its share of the attribution).

The result holds data; drawing lives in :mod:`featviz.viz.explanation` (``plot``, ``save_html``).

Example:
    >>> model = fv.models.toy.edges_and_curves()
    >>> ex = fv.explain(model, torch.rand(3, 24, 24), layers=["relu1"], target="relu2:3")
    >>> ex.top_channels("relu1", k=2).shape, ex.attribution("relu1").shape
    (torch.Size([24, 24, 2]), torch.Size([8, 24, 24]))
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from featviz.circuits.attribution import attribute, gauss_legendre
from featviz.core import (
    as_images,
    channel_values,
    device_of,
    dtype_of,
    evaluating,
    module_layout,
    preprocess_fn,
)
from featviz.errors import BadType, BadValue, OutOfRange, UnknownName
from featviz.hooks import HookedModel, closest_names, hooked
from featviz.optvis import objectives
from featviz.optvis.factorize import Factorization, factorize
from featviz.optvis.param import fft_image
from featviz.optvis.render import render, render_layer
from featviz.optvis.rendering import Rendering

__all__ = ["explain", "Explanation", "Target", "ActivationGrid", "ImageGroups", "default_layers"]


@dataclass(frozen=True)
class Target:
    """What is explained: channel ``channel`` of module ``layer``'s output (a class logit of the output
    layer, ``kind="class"``, or a unit's mean over its map, ``kind="node"``), shown as ``label``.

    Example:
        >>> Target("fc", 281, "tabby (281)", "class").ref
        'fc:281'
    """

    layer: str
    channel: int
    label: str
    kind: str

    @property
    def ref(self) -> str:
        """``"layer:channel"``."""
        return f"{self.layer}:{self.channel}"


@dataclass
class ActivationGrid:
    """``Explanation.activation_grid``'s result: one feature visualization per cell of a layer's map.

    Attributes:
        layer: the layer.
        cell: positions per cell side (the map was average-pooled ``cell`` x ``cell``).
        vectors: (gh, gw, C) each cell's mean activation vector on the photo.
        images: (gh, gw, 3, s, s) each cell's rendering: overlapping crops of one jointly optimised image.
        mosaic: (3, H, W) that whole image (cell (i, j) is the crop at (i * stride, j * stride)).
        stride: pixels between neighbouring crops (``s // 2``: neighbours share half their pixels).
        values: (gh, gw) the objective (dot product x cosine) of each final crop.
    """

    layer: str
    cell: int
    vectors: torch.Tensor
    images: torch.Tensor
    mosaic: torch.Tensor
    stride: int
    values: torch.Tensor


@dataclass
class ImageGroups:
    """``Explanation.groups``' result: neuron groups of one photo and their share of the attribution.

    Attributes:
        factorization: the :class:`~featviz.optvis.Factorization` (``.directions`` (K, C), ``.spatial``
            (1, K, h, w) where each group is active on the photo, ``.overlay(0)``, ``.render(model)``).
        attribution: (K,) each group's part of the layer's attribution to ``target``: the attribution at
            each (channel, position) is shared among the groups in proportion to their part of the
            reconstruction there (``|spatial_k(p) * direction_k(c)|``).
        unassigned: attribution at (channel, position) pairs that no group reconstructs.
        target: what the attribution is to.
    """

    factorization: Factorization
    attribution: torch.Tensor
    unassigned: float
    target: Target

    @property
    def layer(self) -> str:
        """The layer factorized."""
        return self.factorization.layer

    def __len__(self) -> int:
        return len(self.factorization)

    def render(self, model: nn.Module, **kwargs) -> Rendering:
        """Feature visualizations of the groups, one batched run (``fv.render`` keyword arguments)."""
        return self.factorization.render(model, **kwargs)


def default_layers(model: nn.Module | HookedModel, n: int | None = None) -> list[str]:
    """The layers an explanation shows by default: ``model.interesting_layers`` (``n``: that many, evenly
    spaced over its later half, where channels are specific enough to name), else ``n or 3`` evenly
    spaced convolution outputs.

    Example:
        >>> default_layers(fv.models.efficientnet_lite0(pretrained=False), n=3)
        ['blocks.4', 'blocks.10', 'head.relu']
    """
    hm = hooked(model)
    listed = [name for name in (getattr(hm.model, "interesting_layers", None) or []) if name in hm.hook_names]
    if listed and n is None:
        return listed
    if listed:
        pool = listed[max(0, len(listed) // 2 - 1):] if len(listed) > n else listed
    else:
        pool = [name for name, m in hm.model.named_modules()
                if isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() == 4]
        n = n or 3
    if len(pool) <= n:
        return list(pool)
    picks = torch.linspace(0, len(pool) - 1, n).round().long().tolist()
    return [pool[i] for i in dict.fromkeys(picks)]


def _as_image(image: object) -> torch.Tensor:
    """One photo, (3, H, W) float in [0, 1], by the one images rule (``featviz.core.as_images``: uint8 is
    divided by 255); a batch of several is refused (explain one photo at a time)."""
    x = as_images(image, "image")  # (B, 3, H, W)
    if len(x) != 1:
        raise BadValue(f"image must be one (3, H, W) or (1, 3, H, W) image in [0, 1], got {tuple(x.shape)} "
                       "(explain one photo at a time)")
    return x[0].detach()


@dataclass(eq=False)
class Explanation:
    """What a model saw in one photo: ``fv.explain``'s result (data; computed parts are cached).

    Attributes:
        model: the hooked model.
        image: (3, H, W) the photo in [0, 1].
        layers: the layers explained (hook names).
        activations: layer -> (C, h, w) its activations on the photo.
        logits: (n_classes,) the model's output on the photo (``None`` if it is not a class vector).
        labels: class names (``model.labels``, else ImageNet names for 1000 outputs, else indices).
        target: the default :class:`Target` (the top class unless ``explain(target=...)`` said otherwise).
        output_layer: the module whose output is the model's output (``None`` if there is none).
        baseline: the baseline image's value (a float: a uniform image; 0 = black) or image (3, H, W).
        steps: Gauss-Legendre nodes integrated gradients start with; doubled (up to ``max_steps``) until
            the attribution is complete within ``tolerance``.
    """

    model: HookedModel
    image: torch.Tensor
    layers: list[str]
    activations: dict[str, torch.Tensor]
    logits: torch.Tensor | None
    labels: list[str] | None
    output_layer: str | None
    baseline: float | torch.Tensor = 0.0
    steps: int = 64
    tolerance: float = 0.01
    max_steps: int = 256
    preprocess: Callable | None = None
    seed: int = 0
    target: Target | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return (f"Explanation({type(self.model.model).__name__}, image {tuple(self.image.shape)}, "
                f"layers={self.layers}, target={self.target.label if self.target else None!r})")

    # -- references -----------------------------------------------------------------------------
    def _layer(self, layer: str) -> str:
        if not isinstance(layer, str):
            raise BadType(f"a layer is a name string, got {type(layer).__name__}")
        if layer not in self.activations:
            raise UnknownName(f"{layer!r} is not one of this explanation's layers {self.layers}; closest: "
                              f"{closest_names(layer, self.layers)} (fv.explain(..., layers=[...]) chooses "
                              "them)")
        return layer

    def _x(self, image: torch.Tensor | None = None) -> torch.Tensor:
        img = self.image if image is None else image
        dev = device_of(self.model.model)
        return preprocess_fn(self.model, self.preprocess)(img[None].to(dev, dtype_of(self.model.model)))

    def resolve_target(self, target: int | str | Target | None = None) -> Target:
        """A class index, a class name, a node ``"layer:channel"`` or ``None`` (this explanation's target;
        the top class if there is none) as a :class:`Target`.

        Example:
            >>> ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:1")
            >>> ex.resolve_target("relu1:-1").label
            'relu1:7 (mean over its map)'
        """
        if target is None:
            if self.target is not None:
                return self.target
            if self.logits is None:
                raise BadValue("the model's output is not a (1, classes) vector, so there is no top class to "
                               "explain: give target='layer:channel' (a unit, explained by its mean)")
            target = int(self.logits.argmax())
        if isinstance(target, Target):
            return target
        if isinstance(target, bool) or (not isinstance(target, (int, str))
                                        and not hasattr(target, "__index__")):
            raise BadType(f"target is a class index, a class name, 'layer:channel' or None, got "
                          f"{type(target).__name__}")
        if not isinstance(target, str):
            return self._class_target(int(target))
        if self.labels is not None and target in self.labels:
            return self._class_target(self.labels.index(target))
        if ":" in target:
            return self._node_target(target)
        names = self.labels or []
        raise UnknownName(f"unknown target {target!r}: not a class name (closest: "
                          f"{closest_names(target, names)}) and not a unit 'layer:channel'")

    def _class_target(self, c: int) -> Target:
        if self.logits is None or self.output_layer is None:
            raise BadValue("a class target needs a model whose output is one module's (1, classes) output; "
                           "give target='layer:channel' instead")
        n = len(self.logits)
        if not -n <= c < n:
            raise OutOfRange(f"the model has {n} classes (0..{n - 1}); got target class {c}")
        c %= n
        name = self.labels[c] if self.labels else str(c)
        return Target(self.output_layer, c, f"{name} ({c})", "class")

    def _node_target(self, ref: str) -> Target:
        try:
            r = self.model.ref(ref)
        except KeyError as e:
            raise UnknownName(e.args[0] if e.args else str(e)) from None
        with torch.no_grad(), evaluating(self.model.model):
            _, cache = self.model.run_with_cache(self._x(), names=[r.key], stop_at_last=True)
        t = cache[r.key]
        n = t.shape[-1] if module_layout(self.model.model, r.key, t) == "channels_last" else t.shape[1]
        name, c = self.model.unit(r, n_channels=n)  # exactly one channel, in range
        return Target(name, c, f"{name}:{c} (mean over its map)", "node")

    # -- the semantic dictionary --------------------------------------------------------------
    def top_channels(self, layer: str, k: int = 4) -> torch.Tensor:
        """(h, w, k) LongTensor: at each position of ``layer``'s map, the ``k`` channels with the highest
        activation on the photo, strongest first (the semantic dictionary).

        Example:
            >>> ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:0")
            >>> ex.top_channels("relu2", k=3).shape
            torch.Size([16, 16, 3])
        """
        return self.top_values(layer, k)[1]

    def top_values(self, layer: str, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
        """``(values, channels)``, both (h, w, k): the top-``k`` activations at each position and channels."""
        acts = self.activations[self._layer(layer)]  # (C, h, w)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= acts.shape[0]:
            raise BadValue(f"k must be an int from 1 to {layer}'s {acts.shape[0]} channels, got {k!r}")
        values, channels = acts.topk(k, dim=0)  # (k, h, w)
        return values.permute(1, 2, 0), channels.permute(1, 2, 0)

    # -- attribution ------------------------------------------------------------------------------
    def attribution(self, layer: str, target: int | str | Target | None = None,
                    method: str = "integrated_gradients") -> torch.Tensor:
        """(C, h, w): how much each channel at each position of ``layer`` contributes to ``target``.

        ``method``: ``"integrated_gradients"`` (default; the layer's activation moves on a straight line
        from its value on the baseline image to its value on the photo, Gauss-Legendre nodes),
        ``"grad_x_act"`` or ``"captum:<ClassName>"`` (:func:`featviz.circuits.attribute` computes all of
        them). Integrated gradients are complete: with ``steps`` nodes, then twice as many until the sum
        is within ``tolerance`` (1 %) of the target's change (:meth:`completeness`) or ``max_steps`` is
        reached (a warning then states the gap). ReLU6 kinks make the integrand jumpy: on Lite0 32 nodes
        were off by up to 15 %, 128 by up to 1.2 % (docs/explain.md).

        Example:
            >>> ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:0")
            >>> ex.attribution("relu1").shape
            torch.Size([8, 16, 16])
        """
        layer, t = self._layer(layer), self.resolve_target(target)
        key = ("attr", layer, t.ref, method)
        if key in self._cache:
            return self._cache[key].clone()
        steps = self.steps
        while True:
            a = self._attribute(layer, t, method, steps)
            if method != "integrated_gradients":
                break
            total = float(a.sum())
            delta = self.target_value(t) - self.target_value(t, replace=layer)
            error = abs(total - delta) / max(abs(delta), 1e-12)
            self._cache[("steps", layer, t.ref)] = (steps, error)
            if error <= self.tolerance or steps >= self.max_steps:
                break
            steps = min(2 * steps, self.max_steps)
        if method == "integrated_gradients" and error > self.tolerance:
            warnings.warn(f"integrated gradients at {layer} to {t.label}: the attribution sums to "
                          f"{total:.4g}, the target changes by {delta:.4g} ({error:.1%} apart after {steps} "
                          f"steps, more than tolerance={self.tolerance:g}); raise max_steps", stacklevel=2)
        self._cache[key] = a
        return a.clone()

    def _attribute(self, layer: str, t: Target, method: str, steps: int) -> torch.Tensor:
        if t.layer == layer:  # the target is this layer's own channel mean: exact, (a - a0) / (h * w) on it
            a = self.activations[layer]
            out = torch.zeros_like(a)
            out[t.channel] = (a[t.channel] - self._baseline_acts(layer)[0, t.channel].cpu()) / a[0].numel()
            return out
        x = self.image[None].to(device_of(self.model.model), dtype_of(self.model.model))
        baseline = self.baseline[None] if isinstance(self.baseline, torch.Tensor) else self.baseline
        try:
            a = attribute(self.model, layer, t.layer, x, dst_channels=[t.channel], method=method,
                          keep_space=True, steps=steps, baseline=baseline, preprocess=self.preprocess)
        except ValueError as e:
            if "runs before" in str(e):
                raise BadValue(f"the target {t.label} is computed before {layer!r}, so {layer} cannot "
                               "contribute to it: pick a later target or an earlier layer") from None
            raise
        return a[0].detach().float().cpu()

    def channel_attribution(self, layer: str, target: int | str | Target | None = None,
                            method: str = "integrated_gradients") -> torch.Tensor:
        """(C,): each channel's attribution to ``target`` summed over space.

        Example:
            >>> ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:0")
            >>> ex.channel_attribution("relu1").shape
            torch.Size([8])
        """
        return self.attribution(layer, target, method).sum((1, 2))

    def _baseline_image(self) -> torch.Tensor:
        if isinstance(self.baseline, torch.Tensor):
            return self.baseline.to(self.image)
        return torch.full_like(self.image, float(self.baseline))

    def _baseline_acts(self, layer: str) -> torch.Tensor:
        key = ("base", layer)
        if key not in self._cache:
            with torch.no_grad(), evaluating(self.model.model):
                _, cache = self.model.run_with_cache(self._x(self._baseline_image()), names=[layer],
                                                     stop_at_last=True)
            self._cache[key] = cache[layer]
        return self._cache[key]

    def target_value(self, target: int | str | Target | None = None, replace: str | None = None) -> float:
        """The target's value on the photo; with ``replace=layer``, with that layer's output replaced by its
        activations on the baseline image (what integrated gradients at ``layer`` start from).

        Example:
            >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.ReLU())
            >>> ex = fv.explain(net, torch.zeros(3, 4, 4), layers=["1"], target="1:0")
            >>> ex.target_value() == ex.target_value(replace="1")   # the photo is the black baseline
            True
        """
        t = self.resolve_target(target)
        hooks = []
        if replace is not None:
            a0 = self._baseline_acts(self._layer(replace))
            hooks = [(replace, lambda m, i, o: a0.clone())]
        with torch.no_grad(), evaluating(self.model.model), self.model.hooks(hooks):
            _, cache = self.model.run_with_cache(self._x(), names=[t.layer], stop_at_last=True)
        out = cache[t.layer]
        return float(channel_values(out, module_layout(self.model.model, t.layer, out))[0, t.channel])

    def completeness(self, layer: str, target: int | str | Target | None = None) -> dict[str, float]:
        """Integrated gradients' completeness at ``layer``: ``{"sum", "delta", "relative_error"}`` where
        ``sum`` is the attribution's total and ``delta`` = target(photo) - target(``layer`` at its baseline
        activation) and ``steps`` the nodes used. Without skip connections around ``layer`` the latter is
        target(baseline image).

        Example:
            >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softplus(), nn.Conv2d(4, 2, 3))
            >>> ex = fv.explain(net, torch.rand(3, 16, 16), layers=["1"], target="2:0")
            >>> ex.completeness("1")["relative_error"] < 0.01
            True
        """
        t = self.resolve_target(target)
        total = float(self.attribution(layer, t).sum())
        delta = self.target_value(t) - self.target_value(t, replace=layer)
        return {"sum": total, "delta": delta, "relative_error": abs(total - delta) / max(abs(delta), 1e-12),
                "steps": self._cache[("steps", layer, t.ref)][0]}

    def spatial_attribution(self, src: str, dst: str, steps: int | None = None) -> torch.Tensor:
        """(h_dst, w_dst, h_src, w_src): how much ``src``'s activations at each position (summed over its
        channels) contribute to ``dst``'s activation vector at each position, measured along that vector's
        direction on the photo (``<a_dst(p), u_p>``, ``u_p`` its unit vector). Integrated gradients from the
        baseline image's ``src`` activations: each ``[i, j]`` map sums to that value's change.

        Example:
            >>> ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 12, 12), ["relu1", "relu2"],
            ...                 target="relu2:0")
            >>> ex.spatial_attribution("relu1", "relu2").shape
            torch.Size([12, 12, 12, 12])
        """
        src, dst = self._layer(src), self._layer(dst)
        key = ("spatial", src, dst, steps or self.steps)
        if key in self._cache:
            return self._cache[key].clone()
        a, a0 = self.activations[src].to(device_of(self.model.model)), self._baseline_acts(src)[0]
        d = self.activations[dst]
        u = (d / d.norm(dim=0, keepdim=True).clamp(min=1e-12)).to(a.device)  # (C_dst, h, w)
        alphas, weights = (t.to(a) for t in gauss_legendre(steps or self.steps))
        path = (a0 + alphas[:, None, None, None] * (a - a0)).requires_grad_(True)  # (S, C, H, W)
        x = self._x().expand(len(path), -1, -1, -1)
        with evaluating(self.model.model, freeze_grads=True), \
                self.model.hooks([(src, lambda m, i, o: path)]):
            _, cache = self.model.run_with_cache(x, names=[dst], stop_at_last=True, detach=False)
            if not cache[dst].requires_grad:  # dst ran before src: the path never reached it
                raise BadValue(f"{dst!r} does not depend on {src!r} (it runs before it): "
                               "spatial_attribution(src, dst) takes the earlier layer first")
            v = (cache[dst] * u).sum(1)  # (S, h, w)
            h, w = v.shape[-2:]
            out = torch.zeros(h, w, *a.shape[-2:])
            flat = (v * weights[:, None, None]).sum(0).flatten()  # (h*w,)
            for p in range(h * w):
                g = torch.autograd.grad(flat[p], path, retain_graph=p < h * w - 1)[0].sum(0)  # (C, H, W)
                out[p // w, p % w] = (g * (a - a0)).sum(0).cpu()
        self._cache[key] = out
        return out.clone()

    # -- renderings ---------------------------------------------------------------------------------
    def feature_visualizations(self, layer: str, channels: Sequence[int], size: int = 64, steps: int = 64,
                               progress: bool = False) -> dict[int, torch.Tensor]:
        """Channel -> (3, size, size) feature visualization (batched ``fv.render_layer``; cached).

        Example:
            >>> ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:0")
            >>> ex.feature_visualizations("relu1", [3, 1], size=16, steps=2)[3].shape
            torch.Size([3, 16, 16])
        """
        layer = self._layer(layer)
        store = self._cache.setdefault(("fv", layer, size, steps), {})
        todo = [int(c) for c in dict.fromkeys(channels) if int(c) not in store]
        if todo:
            r = render_layer(self.model, layer, channels=todo, batch_size=32, size=size, steps=steps,
                             seed=self.seed, preprocess=self.preprocess, progress=progress)
            store.update({c: img for c, img in zip(todo, r.images)})
        return {int(c): store[int(c)] for c in channels}

    def activation_grid(self, layer: str, cell: int | None = None, *, size: int = 48, steps: int = 64,
                        cossim_pow: float = 1.0, progress: bool = False) -> ActivationGrid:
        """One feature visualization per cell of ``cell`` x ``cell`` positions of ``layer``'s map (lucid's
        activation grid), each maximising ``objectives.direction`` with the cell's mean activation vector
        (times its cosine ** ``cossim_pow``). All cells render in one batch as overlapping crops of one
        image (neighbours share half their pixels), so neighbouring cells come out coherent.
        Default ``cell``: the smallest giving at most 8 cells per side.

        Example:
            >>> ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:0")
            >>> g = ex.activation_grid("relu1", cell=8, size=16, steps=2)
            >>> g.images.shape, g.mosaic.shape
            (torch.Size([2, 2, 3, 16, 16]), torch.Size([3, 24, 24]))
        """
        layer = self._layer(layer)
        acts = self.activations[layer]  # (C, h, w)
        cell = cell or max(1, -(-max(acts.shape[1:]) // 8))
        if isinstance(cell, bool) or not isinstance(cell, int) or cell < 1:
            raise BadValue(f"cell must be a positive int (positions per cell side), got {cell!r}")
        pooled = nn.functional.avg_pool2d(acts[None], cell, ceil_mode=True)[0]  # (C, gh, gw)
        gh, gw = pooled.shape[1:]
        vectors = pooled.permute(1, 2, 0).reshape(gh * gw, -1)  # (gh*gw, C)
        stride = max(1, size // 2)
        param = _crops_param(gh, gw, stride)
        obj = objectives.direction(layer, vectors, cossim_pow=cossim_pow)
        r = render(self.model, obj, size=size, steps=steps, batch=gh * gw, param=param, seed=self.seed,
                   preprocess=self.preprocess, progress=progress)
        images = r.images.reshape(gh, gw, 3, size, size)
        return ActivationGrid(layer, cell, pooled.permute(1, 2, 0), images, _stitch(images, stride), stride,
                              r.activations.reshape(gh, gw))

    # -- neuron groups ------------------------------------------------------------------------------
    def groups(self, layer: str, n: int = 6, method: str | None = None,
               target: int | str | Target | None = None) -> ImageGroups:
        """``n`` neuron groups of ``layer`` on this photo (``fv.factorize`` of its activations) with each
        group's part of the attribution to ``target``.

        ``method``: ``"nmf"`` (default when the layer's activations are >= 0, e.g. after a ReLU), ``"pca"``
        (default otherwise: NMF needs non-negative values) or ``"ica"``.

        Example:
            >>> ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:0")
            >>> g = ex.groups("relu1", n=3)
            >>> g.factorization.directions.shape, g.attribution.shape
            (torch.Size([3, 8]), torch.Size([3]))
        """
        layer = self._layer(layer)
        t = self.resolve_target(target)
        key = ("groups", layer, n, method, t.ref)
        if key in self._cache:
            return self._cache[key]
        acts = self.activations[layer]
        method = method or ("nmf" if float(acts.min()) >= 0 else "pca")
        f = factorize(self.model, layer, self.image[None], n_groups=n, method=method, seed=self.seed,
                      preprocess=self.preprocess, progress=False)  # one image: one batch, no bar
        parts = (f.spatial[0][:, None] * f.directions[:, :, None, None]).abs()  # (K, C, h, w)
        total = parts.sum(0)
        share = parts / total.clamp(min=1e-12)
        attr = self.attribution(layer, t)  # (C, h, w)
        per_group = (share * attr[None]).sum((1, 2, 3))
        unassigned = float(attr[total <= 1e-12].sum())
        self._cache[key] = ImageGroups(f, per_group, unassigned, t)
        return self._cache[key]

    # -- results protocol -----------------------------------------------------------------------------
    def summary(self) -> str:
        """One sentence: the model, the photo, what is explained and through which layers (no computation)."""
        target = self.target.label if self.target is not None else "no target"
        h, w = self.image.shape[-2:]
        return (f"{type(self.model.model).__name__} on a {h}x{w} photo, explaining {target} through "
                f"{len(self.layers)} layer{'s' if len(self.layers) != 1 else ''}: {', '.join(self.layers)}.")

    def to_dict(self) -> dict:
        """The target, the layers with their shapes and the top classes (``json.dumps``-ready; the cached
        attributions stay in the object)."""
        top = []
        if self.logits is not None:
            p = self.logits.float().softmax(0)
            top = [{"class": int(i), "probability": float(p[i]),
                    "label": self.labels[int(i)] if self.labels else str(int(i))}
                   for i in p.argsort(descending=True)[:5]]
        return {"model": type(self.model.model).__name__, "image_size": list(self.image.shape[-2:]),
                "target": None if self.target is None else {
                    "ref": self.target.ref, "label": self.target.label, "kind": self.target.kind},
                "layers": {n: list(self.activations[n].shape) for n in self.layers}, "top_classes": top,
                "summary": self.summary()}

    # -- drawing (featviz.viz.explanation) ----------------------------------------------------------
    def plot(self, layers: Sequence[str] | None = None, path: str | Path | None = None):
        """Static figure (the PNG fallback of the page): per layer, the attribution over the photo, the
        strongest channel at each position and the groups. Returns a ``matplotlib.figure.Figure``.

        Example:
            >>> ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:0")
            >>> len(ex.plot(layers=["relu1"]).axes)
            4
        """
        from featviz.viz.explanation import plot_explanation

        return plot_explanation(self, layers=layers, path=path)

    def save_html(self, path: str | Path, layers: Sequence[str] | None = None, *, k: int = 4,
                  n_groups: int = 6, size: int = 64, steps: int = 64, max_renders: int = 24,
                  progress: bool = True, unit_url: Callable[[str, int], str | None] | None = None,
                  title: str | None = None) -> Path:
        """Write the Building Blocks page: one self-contained HTML file (images inlined, works from
        ``file://``) and its static PNG fallback beside it (``path`` with ``.png``).

        Renders feature visualizations (``size`` px, ``steps`` steps) of the ``max_renders`` strongest
        dictionary channels per layer and of each layer's ``n_groups`` groups. ``unit_url(layer, channel)``
        gives a link for a channel (e.g. its microscope page), ``None`` for none. ``title``: the photo's
        name on the page (default: the file name's stem).

        Example:
            >>> ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:0")
            >>> ex.save_html("explain.html", size=16, steps=2, n_groups=2, progress=False).name
            'explain.html'
        """
        from featviz.viz.explanation import save_explanation

        return save_explanation(self, path, layers=layers, k=k, n_groups=n_groups, size=size, steps=steps,
                                max_renders=max_renders, progress=progress, unit_url=unit_url, title=title)


def _crops_param(gh: int, gw: int, stride: int):
    """An image parameterisation whose ``gh * gw`` images are overlapping crops of one Fourier image."""

    def param(size, batch, *, seed=0, device=None, **kwargs):
        s = size if isinstance(size, int) else size[0]
        big = (stride * (gh - 1) + s, stride * (gw - 1) + s)
        params, image_fn = fft_image(big, 1, seed=seed, device=device)

        def crops() -> torch.Tensor:
            big = image_fn()[0]  # (3, Hb, Wb)
            return torch.stack([big[:, i * stride:i * stride + s, j * stride:j * stride + s]
                                for i in range(gh) for j in range(gw)])  # (gh*gw, 3, s, s)
        return params, crops
    return param


def _stitch(images: torch.Tensor, stride: int) -> torch.Tensor:
    """(gh, gw, 3, s, s) overlapping crops (at multiples of ``stride``) -> (3, H, W) their whole image."""
    gh, gw, _, s, _ = images.shape
    out = torch.zeros(3, stride * (gh - 1) + s, stride * (gw - 1) + s)
    for i in range(gh):
        for j in range(gw):
            out[:, i * stride:i * stride + s, j * stride:j * stride + s] = images[i, j]
    return out


def _output_layer(hm: HookedModel, out: object, cache) -> str | None:
    """The last module whose output is the model's output tensor (the logits' layer)."""
    if not isinstance(out, torch.Tensor):
        return None
    found = [name for name, t in cache.items() if isinstance(t, torch.Tensor) and t.shape == out.shape
             and t.data_ptr() == out.data_ptr()]
    return found[-1] if found else None


def explain(model: nn.Module | HookedModel, image: torch.Tensor, layers: Sequence[str] | None = None,
            target: int | str | None = None, *, baseline: float | torch.Tensor = 0.0, steps: int = 64,
            tolerance: float = 0.01, max_steps: int = 256, preprocess: Callable | None = None, seed: int = 0,
            progress: bool = False) -> Explanation:
    """Explain what ``model`` saw in ``image`` at ``layers`` and why it gave ``target``.

    Args:
        image: (3, H, W) or (1, 3, H, W) in [0, 1], any size the model runs on (not resized); the model's
            ``preprocess`` is applied (``preprocess=False`` to skip it, or a callable).
        layers: hook names with (C, h, w) maps; default :func:`default_layers` (``model.interesting_layers``,
            else three evenly spaced convolutions).
        target: a class index, a class name (``model.labels``), a unit ``"layer:channel"`` (its mean over
            the map) or ``None``: the top predicted class.
        baseline: where integrated gradients start: a uniform image of this value (0: black) or a
            (3, H, W) image.
        steps, tolerance, max_steps: integrated gradients start with ``steps`` Gauss-Legendre nodes and
            double them (up to ``max_steps``) until the attribution sums to the target's change within
            ``tolerance`` (relative); see :meth:`Explanation.attribution`.

    One forward pass stores every layer's activations; attribution, groups and renderings are computed
    when asked for and cached on the result.

    Example:
        >>> model = fv.models.efficientnet_lite0()
        >>> photos = fv.data.sample_images()
        >>> ex = fv.explain(model, photos.images[photos.names.index("chelsea")], layers=["blocks.10"])
        >>> ex.target.label, ex.top_channels("blocks.10", k=3).shape
        ('Egyptian cat (285)', torch.Size([14, 14, 3]))
    """
    hm = hooked(model)
    img = _as_image(image)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise BadValue(f"steps must be a positive int (integrated-gradient nodes), got {steps!r}")
    if isinstance(layers, str):
        raise BadType(f"layers is a list of names, got the string {layers!r}: write layers=[{layers!r}]")
    chosen = list(dict.fromkeys(layers)) if layers is not None else default_layers(hm)
    if not chosen:
        raise BadValue("no layers to explain: give layers=[...] (hook names; see `featviz layers MODEL`)")
    for name in chosen:
        try:
            hm.layer(name)  # a layer name, not a unit: "drop the ':c'"
        except KeyError as e:
            raise UnknownName(e.args[0] if e.args else str(e)) from None
    x = preprocess_fn(hm, preprocess)(img[None].to(device_of(hm.model), dtype_of(hm.model)))
    with torch.no_grad(), evaluating(hm.model):
        out, cache = hm.run_with_cache(x, names=None)
    acts = {}
    for name in tqdm(chosen, desc="explain", disable=not progress):
        t = cache[name] if name in cache else None
        if not isinstance(t, torch.Tensor) or module_layout(hm.model, name, t) != "maps":
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise BadValue(f"{name!r} gives {shape}; explain needs (1, C, h, w) feature maps: pick a "
                           "convolutional layer (see `featviz layers MODEL`)")
        acts[name] = t[0].float().cpu()
    logits = out[0].detach().float().cpu() if isinstance(out, torch.Tensor) and out.dim() == 2 else None
    labels = getattr(hm.model, "labels", None)
    if labels is None and logits is not None and len(logits) == 1000:
        from featviz.data.labels import imagenet_labels

        labels = imagenet_labels()
    if labels is not None and logits is not None and len(labels) != len(logits):
        labels = None
    ex = Explanation(hm, img.cpu(), chosen, acts, logits, list(labels) if labels else None,
                     _output_layer(hm, out, cache), baseline, steps, float(tolerance), int(max_steps),
                     preprocess, seed)
    if target is not None or logits is not None:
        ex.target = ex.resolve_target(target)
    return ex
