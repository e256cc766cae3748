"""Neuron groups: (model, layer, images) -> Factorization, directions (K, C) that explain a layer's maps.

Building Blocks of Interpretability (Olah et al., Distill 2018) splits a layer's activations
(N, C, H, W) at every position into ``n_groups`` factors with a matrix factorization of the
(N*H*W, C) matrix: ``acts ~ spatial @ directions``. Each direction (C,) is a group of channels that
fire together; its spatial map (N, K, H, W) says where in each image the group is active, and
``objectives.direction(layer, directions)`` renders every group in one batched run.

Example:
    >>> model = fv.models.toy.edges_and_curves()
    >>> f = fv.factorize(model, "relu1", torch.rand(4, 3, 32, 32), n_groups=3)
    >>> f.directions.shape, f.spatial.shape
    (torch.Size([3, 8]), torch.Size([4, 3, 32, 32]))
"""
from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from featviz.errors import BadType, BadValue
from featviz.hooks import HookedModel, hooked
from featviz.optvis import objectives as obj_mod
from featviz.optvis._layer import as_images, layer_activations
from featviz.optvis.rendering import Rendering

__all__ = ["Factorization", "factorize", "group_colors"]

METHODS = ("nmf", "pca", "ica")


# The Tableau 10 palette (matplotlib's "tab10"): the first ten groups' colours, as 0-255 RGB.
_TAB10 = ("1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "7f7f7f", "bcbd22", "17becf")


def group_colors(k: int) -> np.ndarray:
    """(k, 3) distinct RGB colours in [0, 1] for k groups: the Tableau 10 palette (matplotlib's tab10) for
    up to 10 groups, else k evenly spaced hues at full saturation and value.

    Computed without matplotlib (optvis draws nothing): ``Factorization.overlay`` tints images with them
    and ``featviz.viz.plot_factorization`` titles and colours each group's map with the same rows.

    Example:
        >>> group_colors(3).shape
        (3, 3)
        >>> group_colors(2)[0] * 255                    # tab10 blue, #1f77b4
        array([ 31., 119., 180.])
    """
    if k <= len(_TAB10):
        return np.array([[int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)] for h in _TAB10[:k]]).reshape(k, 3)
    return np.array([colorsys.hsv_to_rgb(i / k, 1.0, 1.0) for i in range(k)])


def _estimator(method: object, n_groups: int, seed: int):
    if not isinstance(method, str):
        if not (hasattr(method, "fit_transform") and hasattr(method, "get_params")):
            raise BadType(f"method must be one of {METHODS} or a scikit-learn decomposition instance "
                          f"(e.g. sklearn.decomposition.NMF(6)), got {type(method).__name__}")
        return method
    from sklearn import decomposition

    if method == "nmf":
        return decomposition.NMF(n_groups, init="nndsvda", max_iter=500, random_state=seed)
    if method == "pca":
        return decomposition.PCA(n_groups, random_state=seed)
    if method == "ica":
        return decomposition.FastICA(n_groups, whiten="unit-variance", max_iter=1000, random_state=seed)
    raise BadValue(f"unknown method {method!r}: use one of {METHODS} or a scikit-learn decomposition "
                   "instance")


def _check_nonnegative(hm: HookedModel, layer: str, flat: np.ndarray) -> None:
    low = float(flat.min())
    if low >= 0:
        return
    frac = float((flat < 0).mean())
    after = hm.hook_names[hm.hook_names.index(layer) + 1 :]
    relus = [n for n in after if type(hm.module(n)).__name__ in ("ReLU", "ReLU6") or "relu" in n.lower()]
    relus = relus[:3]
    hint = f" (e.g. {', '.join(relus)})" if relus else ""
    raise BadValue(f"NMF needs non-negative activations, but {layer} has negative values ({frac:.0%} of "
                   f"them, down to {low:.3g}): pick a layer after a ReLU{hint}, or use method='pca' or 'ica'")


def _fit(est, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, C) -> spatial (rows, K), directions (K, C), sign-fixed and sorted by contribution."""
    spatial = np.asarray(est.fit_transform(flat), dtype=np.float64)
    directions = np.asarray(getattr(est, "mixing_", None).T if hasattr(est, "mixing_") else est.components_,
                            dtype=np.float64)
    if directions.shape != (spatial.shape[1], flat.shape[1]):
        raise BadValue(f"the decomposition gave directions of shape {directions.shape}; expected "
                       f"{(spatial.shape[1], flat.shape[1])} (components_ or mixing_.T)")
    # PCA/ICA factors have no sign: point each direction mostly along positive channels (else: heavy tail +)
    sign = np.sign(directions.sum(1))
    sign[sign == 0] = np.sign((spatial**3).sum(0))[sign == 0]
    sign[sign == 0] = 1
    spatial, directions = spatial * sign, directions * sign[:, None]
    weight = np.linalg.norm(spatial, axis=0) * np.linalg.norm(directions, axis=1)
    order = np.argsort(-weight, kind="stable")
    return spatial[:, order], directions[order]


@dataclass
class Factorization:
    """``factorize``'s result: channel groups of one layer and where each is active.

    Attributes:
        layer: the layer factorized.
        directions: (K, C) one channel vector per group, strongest group first.
        spatial: (N, K, h, w) each group's strength at every position of every image.
        images: (N, 3, H, W) the images, for ``plot``.
        method: ``"nmf"``, ``"pca"``, ``"ica"`` or the estimator's class name.
        reducer: the fitted scikit-learn estimator.

    Example:
        >>> f = Factorization("l", torch.eye(2), torch.rand(1, 2, 4, 4), torch.rand(1, 3, 8, 8), "nmf", None)
        >>> f.objective().name, len(f)
        ('direction(l, 2 vectors)', 2)
    """

    layer: str
    directions: torch.Tensor
    spatial: torch.Tensor
    images: torch.Tensor
    method: str
    reducer: object

    def __len__(self) -> int:
        return len(self.directions)

    def objective(self, cossim_pow: float = 0.0) -> obj_mod.Objective:
        """The batched direction objective: item ``k`` of a batch of K maximises group ``k``."""
        return obj_mod.direction(self.layer, self.directions, cossim_pow=cossim_pow)

    def render(self, model: nn.Module, **kwargs) -> Rendering:
        """Render every group in one batched run (``fv.render`` keyword arguments), labelled ``group k``.

        Example:
            >>> f = fv.factorize(fv.models.toy.edges_and_curves(), "relu1", torch.rand(2, 3, 24, 24), 2)
            >>> f.render(fv.models.toy.edges_and_curves(), size=24, steps=2, progress=False).labels
            ['group 0', 'group 1']
        """
        from featviz.optvis.render import render

        r = render(model, self.objective(kwargs.pop("cossim_pow", 0.0)), batch=len(self), **kwargs)
        r.labels = [f"group {k}" for k in range(len(self))]
        return r

    def overlay(self, i: int) -> torch.Tensor:
        """(3, H, W) image ``i`` tinted by its groups: each position takes its active groups' colours."""
        img = self.images[i].float()
        s = self.spatial[i].clamp(min=0)  # (K, h, w)
        s = s / s.flatten(1).amax(1).clamp(min=1e-8)[:, None, None]
        s = torch.nn.functional.interpolate(s[None], size=img.shape[-2:], mode="bilinear",
                                            align_corners=False)[0].clamp(0, 1)
        colors = torch.as_tensor(group_colors(len(self)), dtype=torch.float32)  # (K, 3)
        tint = torch.einsum("kc,khw->chw", colors, s) / s.sum(0).clamp(min=1e-8)
        strength = s.amax(0, keepdim=True)  # (1, H, W)
        return (0.35 * img + 0.65 * tint) * strength + 0.35 * img * (1 - strength)

    def to_dict(self) -> dict:
        """The groups as plain values (``json.dumps``-ready): layer, method, the (K, C) directions and the
        shapes of the maps (the (N, K, h, w) maps themselves stay tensors in ``spatial``).

        Example:
            >>> f = Factorization("l", torch.eye(2), torch.rand(1, 2, 4, 4), torch.rand(1, 3, 8, 8), "nmf",
            ...                   None)
            >>> f.to_dict()["directions"], f.to_dict()["spatial_shape"]
            ([[1.0, 0.0], [0.0, 1.0]], [1, 2, 4, 4])
        """
        return {"layer": self.layer, "method": self.method, "n_groups": len(self),
                "directions": [[float(v) for v in row] for row in self.directions],
                "spatial_shape": list(self.spatial.shape), "n_images": len(self.images)}

    def _repr_png_(self) -> bytes:
        from featviz.viz.figures import figure_png

        return figure_png(self.plot())

    def plot(self, renderings: Rendering | None = None, n_images: int = 4, path: str | None = None):
        """Figure: per image, the image tinted by its groups, then each group's map; top row: renderings
        (``featviz.viz.plot_factorization``).

        ``renderings`` (e.g. ``f.render(model)``) is drawn, not computed: pass it to see each group's
        feature visualization above its column. Returns a ``matplotlib.figure.Figure``; PNG with ``path``.

        Example:
            >>> f = fv.factorize(fv.models.toy.edges_and_curves(), "relu1", torch.rand(2, 3, 24, 24), 2)
            >>> len(f.plot().axes)
            9
        """
        from featviz.viz.optvis_plot import plot_factorization

        return plot_factorization(self, renderings=renderings, n_images=n_images, path=path)


def factorize(model: nn.Module | HookedModel, layer: str, images: torch.Tensor, n_groups: int = 6,
              method: str | object = "nmf", *, batch_size: int = 32, preprocess: Callable | None = None,
              seed: int = 0, progress: bool = True) -> Factorization:
    """Factorize ``layer``'s activations on ``images`` into ``n_groups`` channel groups.

    Args:
        model: any ``nn.Module`` (or ``fv.hooked`` model).
        layer: the layer whose activations (N, C, h, w) are factorized, ``"layer"``.
        images: (N, 3, H, W) in [0, 1] (an ``fv.data.Images`` tuple works too).
        n_groups: number of channel groups (factors) to find.
        method: ``"nmf"`` (non-negative: groups of channels that fire together; needs a layer whose
            activations are >= 0, e.g. after a ReLU), ``"pca"``, ``"ica"``, or any scikit-learn
            decomposition instance (``fit_transform`` + ``components_``; ``n_groups`` is then its own).
        batch_size: images per forward pass when collecting the activations.
        preprocess: maps [0, 1] images to the model's input; default ``model.preprocess``, else identity.
        seed: the estimator's ``random_state`` for the named methods.
        progress: show a tqdm progress bar over the batches (the default); ``False`` turns it off.

    Returns:
        A ``Factorization``: ``spatial`` (N, n_groups, h, w) maps, ``directions`` (n_groups, C),
        ``.plot()``, ``.objective(k)`` and ``.render()`` (one feature visualization per group).

    Every position of every image is one row of the (N*h*w, C) matrix. PCA/ICA factors are signed so
    that their direction's entries sum to > 0; groups are sorted by contribution (|spatial| x |direction|).

    Raises:
        BadValue: NMF on a layer with negative activations (names later ReLU layers), unknown method.

    Example:
        >>> model = fv.models.toy.edges_and_curves()
        >>> fv.factorize(model, "conv1", torch.rand(2, 3, 16, 16), 2)
        Traceback (most recent call last):
        featviz.errors.BadValue: NMF needs non-negative activations, but conv1 has negative values ...
    """
    if isinstance(n_groups, bool) or not isinstance(n_groups, int) or n_groups < 1:
        raise BadValue(f"n_groups must be a positive int, got {n_groups!r}")
    hm = hooked(model)
    images = as_images(images)
    acts = layer_activations(hm, layer, images, batch_size=batch_size, preprocess=preprocess,
                             progress=progress)  # (N, C, h, w)
    n, c, h, w = acts.shape
    flat = acts.permute(0, 2, 3, 1).reshape(-1, c).double().numpy()  # (N*h*w, C)
    est = _estimator(method, n_groups, seed)
    is_nmf = method == "nmf" or type(est).__name__ in ("NMF", "MiniBatchNMF")
    if is_nmf:
        _check_nonnegative(hm, layer, flat)
    if isinstance(method, str) and n_groups > c:
        raise BadValue(f"n_groups={n_groups} is more than {layer}'s {c} channels")
    spatial, directions = _fit(est, flat)
    k = spatial.shape[1]
    spatial_t = torch.from_numpy(spatial).float().reshape(n, h, w, k).permute(0, 3, 1, 2).contiguous()
    name = method if isinstance(method, str) else type(method).__name__
    directions_t = torch.from_numpy(directions).float()
    return Factorization(layer, directions_t, spatial_t, images.detach().cpu(), name, est)
