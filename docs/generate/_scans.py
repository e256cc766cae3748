"""Curve scans of EfficientNet-Lite0 and its randomized copies, cached on disk: (layer, seed) -> CurveScan.

The docs generators and the finder calibration read the same scans; a scan depends only on the weights and the
geometry, not on any threshold, so it is computed once. Cache: ``$FEATVIZ_SCAN_CACHE`` (default
``/tmp/featviz_scans``); delete it after changing the scan or the randomized control.
"""
from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import torch

import featviz as fv
from featviz.circuits import CurveScan, curve_scan

CACHE = Path(os.environ.get("FEATVIZ_SCAN_CACHE", "/tmp/featviz_scans"))
VERSION = 3  # the microscope's SCAN_FORMAT: randomized BN stats from photos, pre-activations kept


def _path(layer: str, seed: int | None) -> Path:
    return CACHE / f"v{VERSION}-{layer}-{'trained' if seed is None else f'rand{seed}'}.pt"


def _save(scan: CurveScan, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({f.name: getattr(scan, f.name) for f in fields(scan)}, tmp)
    tmp.replace(path)


def _load(path: Path) -> CurveScan:
    d = torch.load(path, weights_only=False)
    return CurveScan(**d)


_MODELS: dict = {}


def model(seed: int | None):
    """Lite0 (seed None) or ``fv.models.randomized(lite0, seed)``, built once."""
    if seed not in _MODELS:
        base = _MODELS.get(None) or fv.models.efficientnet_lite0()
        _MODELS[None] = base
        if seed is not None:
            _MODELS[seed] = fv.models.randomized(base, seed=seed)
    return _MODELS[seed]


def scan(layer: str, seed: int | None = None) -> CurveScan:
    """The scan of ``layer`` in Lite0 (``seed=None``) or its randomized copy, at the trained scan's geometry."""
    path = _path(layer, seed)
    if path.is_file():
        return _load(path)
    if seed is None:
        s = curve_scan(model(None), layer)
    else:
        ref = scan(layer, None)
        shift = ref.shifts[1][0] if ref.shifts else None
        s = curve_scan(model(seed), layer, ref.size, radii=ref.radii, shift=shift, width=ref.width)
    _save(s, path)
    return s
