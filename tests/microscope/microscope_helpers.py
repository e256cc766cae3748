"""Shared by the microscope tests: a tiny toy-model site (built once per session) and file hashing."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

import featviz as fv
from featviz.microscope import MicroscopeSettings, build_microscope

TOY_LAYERS = ["relu1", "relu2"]               # 8 edge units, 7 curve/corner/line units (models/toy.py)
TOY_SETTINGS = MicroscopeSettings(size=32, steps=4, evidence=False)  # `--size 32 --steps 4 --no-evidence`
# (evidence is tested on a tiny net in test_microscope_evidence.py: the toy's curve scans take ~10 s)
_built: dict[str, Path] = {}


EVIDENCE_SETTINGS = MicroscopeSettings(size=16, steps=2, diversity=0, examples=0, tuning_angles=(),
                                       evidence_random=3, evidence_photos=4)


def evidence_net() -> nn.Module:
    """Two 3x3 convs (8 then 6 channels), the first with stride 2 and no padding: its central unit's field
    is off the image centre; cheap enough for the evidence part (curve scans at 32 px)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 6, 3, padding=1), nn.ReLU())
    net.input_size, net.interesting_layers = 32, ["1", "3"]
    return net


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


def missing_refs(site: Path) -> list[tuple[str, str]]:
    """(page, reference) for every local ``href``/``src`` of every HTML page under ``site`` whose file does
    not exist (links to other sites, ``data:`` URLs and in-page anchors are skipped)."""
    import re
    from urllib.parse import unquote, urldefrag

    missing = []
    for page in sorted(Path(site).rglob("*.html")):
        for ref in re.findall(r'(?:href|src)="([^"]*)"', page.read_text()):
            ref = unquote(urldefrag(ref).url.split("?")[0])
            if not ref or re.match(r"^[a-z][a-z0-9+.-]*:", ref):
                continue
            if not (page.parent / ref).is_file():
                missing.append((str(page.relative_to(site)), ref))
    return missing
