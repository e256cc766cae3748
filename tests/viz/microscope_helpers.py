"""Shared by the microscope tests: a tiny toy-model site (built once per session) and file hashing."""
from __future__ import annotations

import hashlib
from pathlib import Path

import featviz as fv
from featviz.viz.microscope import MicroscopeSettings, build_microscope

TOY_LAYERS = ["relu1", "relu2"]               # 8 edge units, 7 curve/corner/line units (models/toy.py)
TOY_SETTINGS = MicroscopeSettings(size=32, steps=4)  # = the CLI's `--size 32 --steps 4`
_built: dict[str, Path] = {}


def toy_model():
    return fv.models.get("edges_and_curves")


def build_toy(out: Path, **kwargs) -> Path:
    """Build the toy site into ``out`` with the test settings; returns index.html."""
    return build_microscope(toy_model(), TOY_LAYERS, out, settings=TOY_SETTINGS, progress=False, **kwargs)


def toy_site(tmp_path_factory) -> Path:
    """Folder of an uninterrupted, in-process toy build (built on first use, then reused)."""
    if "site" not in _built:
        out = tmp_path_factory.mktemp("toy_site")
        build_toy(out)
        _built["site"] = out
    return _built["site"]


def file_hashes(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder``."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
