"""Activation atlas: (model, layer, images) -> Atlas, a grid over a 2-D map of the layer's activation vectors.

Carter et al., "Activation Atlas" (Distill 2019): sample activation vectors (C,) at random positions
of many images, lay them out in 2-D with UMAP so that similar vectors land close together, cut the
layout into ``grid`` x ``grid`` cells, and render each cell's mean vector as a direction (all cells
batched: ``objectives.direction_neuron`` with one vector per batch item). The class atlas colours each
cell by the output class its mean vector pushes up most.

Example:
    >>> model = fv.models.toy.edges_and_curves()
    >>> a = fv.atlas(model, "relu1", torch.rand(8, 3, 24, 24), grid=4, n_samples=200, reducer="pca", steps=0)
    >>> a.counts.shape, int(a.counts.sum())
    (torch.Size([4, 4]), 200)
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from featviz.core import device_of, evaluating, preprocess_fn
from featviz.errors import BadType, BadValue
from featviz.hooks import HookedModel, hooked
from featviz.optvis import objectives as obj_mod
from featviz.optvis._layer import as_images, iter_activations
from featviz.optvis.render import render
from featviz.optvis.rendering import Rendering
from featviz.optvis.settings import RenderSettings

__all__ = ["Atlas", "atlas", "class_push"]

_ATLAS_RENDER = RenderSettings(size=64, steps=128)  # the cells' defaults: small and quick (hundreds of cells)


def _reduce(vectors: np.ndarray, reducer: object, seed: int) -> np.ndarray:
    """(M, C) -> (M, 2) layout scaled to [0, 1] on both axes."""
    if reducer == "umap":
        try:
            import umap  # lazy: umap-learn imports numba (seconds) and compiles on first use
        except ImportError:
            raise BadValue("reducer='umap' needs umap-learn: pip install 'featviz[atlas]' "
                           "(or reducer='pca')") from None
        est = umap.UMAP(n_components=2, n_neighbors=min(15, len(vectors) - 1), min_dist=0.05, metric="cosine",
                        random_state=seed, n_jobs=1)
    elif reducer == "pca":
        from sklearn.decomposition import PCA

        est = PCA(2, random_state=seed)
    elif hasattr(reducer, "fit_transform"):
        est = reducer
    else:
        raise BadType(f"reducer must be 'umap', 'pca' or an object with fit_transform (e.g. sklearn TSNE), "
                      f"got {reducer!r}")
    xy = np.asarray(est.fit_transform(vectors), dtype=np.float64)[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    return (xy - lo) / np.where(hi > lo, hi - lo, 1.0)


def class_push(model: nn.Module | HookedModel, layer: str, vectors: torch.Tensor, input_size: tuple[int, int],
               preprocess: Callable | None = None, batch_size: int = 64) -> torch.Tensor:
    """(K, C) vectors -> (K, n_classes): how much each vector, tiled over ``layer``'s map, raises each logit.

    The model runs on a grey image with ``layer``'s output replaced by the vector at every position;
    the logits of the mean vector are subtracted (so skip connections around ``layer`` cancel).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> class_push(net, "1", torch.eye(2), (8, 8)).argmax(1).tolist()
        [0, 1]
    """
    hm = hooked(model)
    vectors = vectors.float()
    rows = torch.cat([vectors, vectors.mean(0, keepdim=True)])  # last row: the baseline
    prep = preprocess_fn(hm, preprocess)
    device = device_of(hm.model)
    outs = []
    with torch.no_grad(), evaluating(hm.model, freeze_grads=True):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size].to(device)

            def tile(module, inputs, output, chunk=chunk):
                return chunk.to(output.dtype)[:, :, None, None].expand(-1, -1, *output.shape[-2:]).clone()

            x = torch.full((len(chunk), 3, *input_size), 0.5, device=device)
            with hm.hooks([(layer, tile)]):
                out = hm(prep(x))
            if not isinstance(out, torch.Tensor) or out.dim() != 2:
                raise BadValue(f"the class atlas needs a model whose output is (B, n_classes) logits, got "
                               f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
            outs.append(out.float().cpu())
    logits = torch.cat(outs)
    return logits[:-1] - logits[-1:]


@dataclass
class Atlas:
    """``atlas``'s result.

    Attributes:
        layer: the layer sampled.
        coords: (M, 2) layout of the M sampled vectors in [0, 1] (x, y).
        sample_image, sample_position: (M,) which image and (M, 2) which (row, col) of its map each
            sample came from.
        grid: cells per side; ``counts`` (grid, grid) samples per cell (row = y, col = x).
        cells: (K, 2) (row, col) of the cells with at least ``min_count`` samples, ``directions`` (K, C)
            their mean activation vectors, ``renders`` their feature visualizations (None with steps=0).
        classes: (K,) class each cell pushes up most (None when the model has no class output);
            ``class_names`` the model's ``labels`` if it has them.

    Example:
        >>> zeros = torch.zeros(3, 2, dtype=torch.long)
        >>> a = Atlas("l", torch.rand(3, 2), zeros[:, 0], zeros, 2, torch.tensor([[3, 0], [0, 0]]),
        ...           torch.tensor([[0, 0]]), torch.rand(1, 4), None, None, None)
        >>> a.cell_of(torch.tensor([[0.1, 0.2]])).tolist()
        [[0, 0]]
    """

    layer: str
    coords: torch.Tensor
    sample_image: torch.Tensor
    sample_position: torch.Tensor
    grid: int
    counts: torch.Tensor
    cells: torch.Tensor
    directions: torch.Tensor
    renders: Rendering | None
    classes: torch.Tensor | None
    class_names: list[str] | None

    def cell_of(self, coords: torch.Tensor) -> torch.Tensor:
        """(M, 2) layout coordinates (x, y) -> (M, 2) (row, col) grid cells."""
        cell = (coords * self.grid).floor().long().clamp(0, self.grid - 1)
        return torch.stack([cell[:, 1], cell[:, 0]], dim=1)

    def mosaic(self, background: float = 1.0) -> torch.Tensor:
        """(3, grid*s, grid*s) the cells' renderings at their places (empty cells ``background``).

        Example:
            >>> model = fv.models.toy.edges_and_curves()
            >>> a = fv.atlas(model, "relu1", torch.rand(4, 3, 16, 16), grid=2, n_samples=40, reducer="pca",
            ...              size=16, steps=2, progress=False)
            >>> a.mosaic().shape
            torch.Size([3, 32, 32])
        """
        if self.renders is None:
            raise BadValue("this atlas was built with steps=0: no renderings to place; rebuild with "
                           "steps > 0")
        s = self.renders.images.shape[-1]
        out = torch.full((3, self.grid * s, self.grid * s), float(background))
        for (r, c), img in zip(self.cells.tolist(), self.renders.images):
            out[:, r * s : (r + 1) * s, c * s : (c + 1) * s] = img
        return out

    def to_dict(self) -> dict:
        """The atlas as plain values (``json.dumps``-ready): layer, grid, the filled cells with their sample
        counts, directions and classes (the layout coordinates and renderings stay tensors).

        Example:
            >>> zeros = torch.zeros(3, 2, dtype=torch.long)
            >>> a = Atlas("l", torch.rand(3, 2), zeros[:, 0], zeros, 2, torch.tensor([[3, 0], [0, 0]]),
            ...           torch.tensor([[0, 0]]), torch.ones(1, 2), None, None, None)
            >>> a.to_dict()["cells"]
            [{'row': 0, 'col': 0, 'count': 3, 'direction': [1.0, 1.0], 'class': None}]
        """
        classes = self.classes.tolist() if self.classes is not None else [None] * len(self.cells)
        names = self.class_names

        def label(k: int | None) -> int | str | None:
            return names[k] if k is not None and names and k < len(names) else k

        return {"layer": self.layer, "grid": self.grid, "n_samples": int(self.counts.sum()),
                "rendered": self.renders is not None,
                "cells": [{"row": r, "col": c, "count": int(self.counts[r, c]),
                           "direction": [float(v) for v in d], "class": label(k)}
                          for (r, c), d, k in zip(self.cells.tolist(), self.directions, classes)]}

    def _repr_png_(self) -> bytes:
        from featviz.viz.figures import figure_png

        return figure_png(self.plot())

    def plot(self, kind: str = "features", path: str | None = None, counts: bool = True):
        """Draw the atlas: ``"features"`` (renderings, or sample density with steps=0) or ``"classes"``
        (``featviz.viz.plot_atlas``).

        Each filled cell shows its sample count (``counts=True``); the class atlas colours each cell by
        its class and writes the class name. Returns a ``matplotlib.figure.Figure``; PNG with ``path``.
        """
        from featviz.viz.optvis_plot import plot_atlas

        return plot_atlas(self, kind=kind, path=path, counts=counts)


def _sample(hm: HookedModel, layer: str, images: torch.Tensor, n_samples: int, batch_size: int,
            preprocess: Callable | None, seed: int, progress: bool):
    """Random positions (the same number per image), streamed: (M, C) vectors, (M,) image, (M, 2) position."""
    per_image = max(1, math.ceil(n_samples / len(images)))
    gen = torch.Generator().manual_seed(seed)
    vecs, which, where = [], [], []
    start = 0
    for act in iter_activations(hm, layer, images, batch_size=batch_size, preprocess=preprocess,
                                progress=progress):
        b, c, h, w = act.shape
        k = min(per_image, h * w)
        pos = torch.stack([torch.randperm(h * w, generator=gen)[:k] for _ in range(b)])  # (b, k)
        flat = act.flatten(2)  # (b, C, h*w)
        vecs.append(torch.gather(flat, 2, pos[:, None, :].expand(-1, c, -1)).permute(0, 2, 1).reshape(-1, c))
        which.append(torch.arange(start, start + b).repeat_interleave(k))
        where.append(torch.stack([pos // w, pos % w], dim=-1).reshape(-1, 2))
        start += b
    vecs, which, where = torch.cat(vecs), torch.cat(which), torch.cat(where)
    if len(vecs) > n_samples:  # ceil() overshoot: keep a random n_samples
        keep = torch.randperm(len(vecs), generator=gen)[:n_samples].sort().values
        vecs, which, where = vecs[keep], which[keep], where[keep]
    return vecs, which, where


def atlas(model: nn.Module | HookedModel, layer: str, images: torch.Tensor, grid: int = 20,
          n_samples: int = 2000, *, min_count: int = 3, reducer: str | object = "umap",
          settings: RenderSettings | None = None, size: int | None = None, steps: int | None = None,
          render_batch: int = 64, cossim_pow: float = 1.0, class_atlas: bool = True, batch_size: int = 32,
          preprocess: Callable | None = None, seed: int | None = None, progress: bool = True,
          **render_kwargs: Any) -> Atlas:
    """Build an activation atlas of ``layer`` from ``images`` (N, 3, H, W) in [0, 1].

    Args:
        model: any ``nn.Module`` (or ``fv.hooked`` model).
        layer: the layer whose activation vectors (one C-vector per position) are laid out, ``"layer"``.
        images: the photos (N, 3, H, W) in [0, 1] the vectors are sampled from.
        grid: cells per side of the layout.
        n_samples: activation vectors sampled (the same number of random positions from each image,
            images streamed in batches of ``batch_size`` with a progress bar).
        min_count: cells with fewer samples stay empty (their mean is noise).
        reducer: ``"umap"`` (umap-learn, cosine metric; its first use in a process compiles for
            ~30 s), ``"pca"`` (fast, linear), or any object with ``fit_transform`` (e.g. sklearn TSNE).
        settings: the cells' render settings, a ``fv.optvis.RenderSettings``; default
            ``RenderSettings(size=64, steps=128)``. ``size``, ``steps``, ``preprocess``, ``seed`` and
            render settings in ``render_kwargs`` given beside it win.
        size: each filled cell's mean vector is rendered at ``size`` px (default 64), as
            ``direction_neuron(layer, vector, cossim_pow=cossim_pow)``.
        steps: optimisation steps of each cell's rendering (default 128); ``steps=0`` skips rendering.
        render_batch: cells rendered together in one batched run (cell k seeded ``seed + k``).
        cossim_pow: exponent of the cosine similarity in the rendering objective (dot product x
            cosine^cossim_pow): higher values favour the vector's direction over its magnitude.
        class_atlas: also find the class each cell pushes up most (:func:`class_push`), when the model
            outputs (B, n_classes).
        batch_size: images per forward pass when sampling the activations.
        preprocess: maps [0, 1] images to the model's input; default ``model.preprocess``, else identity.
        seed: seeds the sampled positions, the reducer and the renderings (default 0).
        progress: show tqdm progress bars; ``False`` turns them off.
        render_kwargs: other ``fv.render`` arguments (``param``, ``transforms``, ``lr``, ...).

    Returns:
        An ``Atlas``: the grid's ``cells``, their mean ``directions``, the ``renders`` and, with
        ``class_atlas``, each cell's ``classes``; ``.plot()`` and ``.mosaic()``.

    Example:
        >>> model = fv.models.toy.edges_and_curves()
        >>> a = fv.atlas(model, "relu1", torch.rand(4, 3, 24, 24), grid=3, n_samples=90, reducer="pca",
        ...              size=16, steps=4, progress=False)
        >>> a.renders.images.shape[1:], len(a.cells) == len(a.directions)
        (torch.Size([3, 16, 16]), True)
    """
    for name, v, lo in (("grid", grid, 1), ("n_samples", n_samples, 2), ("min_count", min_count, 1),
                        ("steps", steps if steps is not None else 0, 0), ("render_batch", render_batch, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise BadValue(f"{name} must be an int >= {lo}, got {v!r}")
    given = {k: render_kwargs.pop(k) for k in list(render_kwargs) if k in RenderSettings.__dataclass_fields__}
    s = RenderSettings.resolve(settings, _ATLAS_RENDER, size=size, steps=steps, preprocess=preprocess,
                               seed=seed, **given)
    steps, preprocess, seed = s.steps, s.preprocess, s.seed
    hm = hooked(model)
    name = hm.layer(layer)
    images = as_images(images)
    vecs, which, where = _sample(hm, name, images, n_samples, batch_size, preprocess, seed, progress)
    coords = torch.from_numpy(_reduce(vecs.double().numpy(), reducer, seed)).float()
    cell = (coords * grid).floor().long().clamp(0, grid - 1)  # (M, 2) x, y
    index = cell[:, 1] * grid + cell[:, 0]
    counts = torch.bincount(index, minlength=grid * grid)
    filled = (counts >= min_count).nonzero().flatten()
    if len(filled) == 0:
        raise BadValue(f"no cell has min_count={min_count} samples; lower min_count or grid, or sample more")
    sums = torch.zeros(grid * grid, vecs.shape[1]).index_add_(0, index, vecs)
    directions = sums[filled] / counts[filled, None]
    cells = torch.stack([filled // grid, filled % grid], dim=1)
    renders = None
    if steps:
        parts = []
        for k, start in enumerate(range(0, len(directions), render_batch)):
            chunk = directions[start : start + render_batch]
            obj = obj_mod.direction_neuron(name, chunk, cossim_pow=cossim_pow)
            parts.append(render(hm, obj, settings=s.replace(seed=seed + k), batch=len(chunk),
                                progress=progress, **render_kwargs))
        renders = Rendering.cat(parts, objective=f"atlas cells of {name}")
        renders.labels = [f"cell {r},{c}" for r, c in cells.tolist()]
    classes = None
    if class_atlas:
        try:
            push = class_push(hm, name, directions, tuple(images.shape[-2:]), preprocess)
            classes = push.argmax(1)
        except BadValue:
            classes = None  # not a classifier: no class atlas
    labels = getattr(hm.model, "labels", None)
    return Atlas(name, coords, which, where, grid, counts.reshape(grid, grid), cells, directions, renders,
                 classes, list(labels) if labels else None)
