"""Microscope extras built only when ``MicroscopeSettings.extras`` asks: per-layer neuron groups and
activation atlas (unit ``data/_layers/<layer>``), and an ``fv.explain`` page per dataset-example photo (unit
``data/_explain/<photo>``). Each unit is computed only when missing (content keys, ``_store``).

Example:
    >>> from featviz.microscope import MicroscopeSettings, plan
    >>> model = fv.models.toy.edges_and_curves()
    >>> settings = MicroscopeSettings(size=16, steps=2, extras=("groups",), evidence=False)
    >>> p = plan(model, ["relu1"], "site", settings=settings, channels=1)
    >>> sorted(layer_extras(model, p, "relu1", n_photos=4))
    ['groups']
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from featviz.errors import BadValue
from featviz.explain import explain
from featviz.microscope._channel import _grid, png_bytes
from featviz.microscope._plan import Plan
from featviz.microscope._store import content_key, slug, unit_done, write_unit
from featviz.optvis import atlas, factorize

__all__ = ["layer_extras", "example_photos", "explain_pages"]


def layer_extras(model: nn.Module, plan: Plan, layer: str, n_photos: int = 16) -> dict[str, float]:
    """Unit ``data/_layers/<layer>``: the layer's neuron groups (``groups.png``: one render per group, and
    each group's strongest channels) and activation atlas (``atlas.png``), as ``plan.settings.extras`` asks,
    on the first ``n_photos`` photos; computed only when missing. Returns the seconds each took."""
    s, photos = plan.settings, plan.photos
    wanted = [e for e in ("groups", "atlas") if e in s.extras]
    key = content_key(plan.weights, {"layer": layer, "extras": wanted, "size": s.size, "steps": s.steps,
                                     "seed": s.seed, "photos": photos.key, "n_photos": n_photos})
    folder = plan.out / "data" / "_layers" / slug(layer)
    if unit_done(folder, key):
        return {}
    images = photos.load(range(min(n_photos, len(photos))))
    files, meta, seconds = {}, {"key": key, "layer": layer}, {}
    for extra, make in (("groups", _groups), ("atlas", _atlas)):
        if extra in wanted:
            start = time.perf_counter()
            files[f"{extra}.png"], meta[extra] = make(model, layer, images, plan)
            seconds[extra] = time.perf_counter() - start
    write_unit(folder, files, meta)
    return seconds


def _groups(model: nn.Module, layer: str, images: torch.Tensor, plan: Plan) -> tuple[bytes, dict]:
    """Four neuron groups of ``layer`` (NMF, PCA where activations go negative): a render per group as one
    PNG, and each group's four strongest channels."""
    s = plan.settings
    try:
        f = factorize(model, layer, images, n_groups=4, seed=s.seed, progress=False)
    except BadValue:  # negative activations: no NMF
        f = factorize(model, layer, images, n_groups=4, method="pca", seed=s.seed, progress=False)
    r = f.render(model, settings=s.render, progress=False)
    channels = [[int(c) for c in torch.as_tensor(d).abs().argsort(descending=True)[:4]] for d in f.directions]
    return png_bytes(_grid(r.images)), {"method": f.method, "channels": channels}


def _atlas(model: nn.Module, layer: str, images: torch.Tensor, plan: Plan) -> tuple[bytes, dict]:
    """A 6 x 6 activation atlas of ``layer`` (PCA) as a PNG mosaic, and its grid and filled cells."""
    s = plan.settings
    a = atlas(model, layer, images, grid=6, n_samples=400, reducer="pca", class_atlas=False, progress=False,
              settings=s.render.replace(size=max(16, s.size // 2)))  # cells at half the channels' size
    return png_bytes(a.mosaic()), {"grid": 6, "cells": len(a.cells)}


def example_photos(metas: list[dict | None]) -> list[str]:
    """Names of the photos shown as a dataset example (top or bottom) by any of these units, in order.

    Example:
        >>> meta = {"parts": {"examples": {"facts": {"examples": {"top": [{"name": "cat"}], "bottom": []}}}}}
        >>> example_photos([meta, None])
        ['cat']
    """
    names: dict[str, None] = {}
    for meta in metas:
        for part in (meta or {}).get("parts", {}).values():
            ex = part.get("facts", {}).get("examples") or {}
            for kind in ("top", "bottom"):
                names.update((e["name"], None) for e in ex.get(kind, []))
    return list(names)


def explain_pages(model: nn.Module, plan: Plan, layers: list[str], names: list[str],
                  built: set[tuple[str, int]], progress: bool) -> None:
    """Unit ``data/_explain/<photo>`` per photo in ``names``: its ``fv.explain`` page (``explain.html``, the
    top predicted class — for a model without one, the deepest layer's built unit the photo excites most —
    at ``layers``: the site's first, middle and last conv layers) and static figure (``explain.png``); every
    channel the page names links to its channel page when that unit is ``built``. Computed only when missing
    (the key holds the built units, so a build that adds pages refreshes the links)."""
    if not layers:
        return
    s, photos = plan.settings, plan.photos
    index = {n: i for i, n in enumerate(photos.names)}
    for name in tqdm(names, desc="explain photos", unit="photo", disable=not progress):
        key = content_key(plan.weights, {"explain": name, "photos": photos.key, "layers": layers,
                                         "size": s.size, "steps": s.steps, "seed": s.seed,
                                         "built": sorted([n, c] for n, c in built)})
        folder = plan.out / "data" / "_explain" / slug(name)
        if name not in index or unit_done(folder, key):
            continue
        ex = explain(model, photos.load([index[name]])[0], layers=layers, seed=s.seed)  # (3, H, W) photo
        if ex.target is None:  # no class output: the deepest layer's built unit this photo excites most
            means = ex.activations[layers[-1]].mean(dim=(1, 2))  # (C,)
            cands = [c for n, c in built if n == layers[-1]] or range(len(means))
            ex.target = ex.resolve_target(f"{layers[-1]}:{max(cands, key=lambda c: float(means[c]))}")
        write_unit(folder, _explain_files(ex, plan, built, name),
                   {"key": key, "photo": name, "target": ex.target.label, "layers": layers})


def _explain_files(ex, plan: Plan, built: set[tuple[str, int]], name: str) -> dict[str, bytes]:
    """``explain.html`` (and ``explain.png``) of explanation ``ex``, its channels linked to their pages when
    ``built``; written to a temporary folder and read back, so the unit is written atomically."""
    def unit_url(layer: str, c: int) -> str | None:
        return f"../../../channels/{slug(layer)}/{c}.html" if (layer, c) in built else None

    with tempfile.TemporaryDirectory() as tmp:  # nothing of it stays
        rs = plan.settings.render
        page = ex.save_html(Path(tmp) / "explain.html", size=rs.size, steps=rs.steps,
                            progress=False, unit_url=unit_url, title=name)
        files = {"explain.html": page.read_bytes()}
        if page.with_suffix(".png").is_file():
            files["explain.png"] = page.with_suffix(".png").read_bytes()
    return files
