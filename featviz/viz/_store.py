"""Resumable build storage: content keys (weights + settings -> hex), atomic all-or-nothing result folders.

A *unit* (one channel's results, one layer pair's connections) is a folder of files with a ``meta.json``
that records the unit's content key. It is written into a temporary sibling folder and renamed into
place, so a unit on disk is either complete or absent, whatever interrupts the build.

Example:
    >>> key = content_key(weights_hash(torch.nn.Linear(2, 2)), {"steps": 64})
    >>> write_unit(Path("site/data/conv/3"), {"fv.png": b"..."}, {"key": key})   # doctest: +SKIP
    >>> unit_done(Path("site/data/conv/3"), key)                                 # doctest: +SKIP
    True
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

__all__ = ["slug", "weights_hash", "content_key", "write_unit", "read_meta", "unit_done", "write_text_atomic"]


def slug(name: str) -> str:
    """A layer name as a file-name part: 'blocks.2' stays, anything outside [A-Za-z0-9._-] becomes '_'.

    Example:
        >>> slug("blocks.2"), slug("a<b>")
        ('blocks.2', 'a_b_')
    """
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def weights_hash(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer of ``model`` (names, dtypes, shapes and values).

    Example:
        >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        >>> weights_hash(a) == weights_hash(a), weights_hash(a) == weights_hash(b)
        (True, False)
    """
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def content_key(weights: str, settings: Mapping) -> str:
    """SHA-256 (hex, 24 chars) of a weights hash and JSON-able settings; equal inputs, equal key.

    Example:
        >>> content_key("abc", {"a": 1, "b": 2}) == content_key("abc", {"b": 2, "a": 1})
        True
    """
    blob = json.dumps({"weights": weights, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def read_meta(folder: Path) -> dict | None:
    """The unit's ``meta.json`` as a dict, or None when the unit is absent or unreadable."""
    try:
        return json.loads((Path(folder) / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def unit_done(folder: Path, key: str) -> bool:
    """True when ``folder`` holds a complete unit built with content key ``key``."""
    meta = read_meta(folder)
    return meta is not None and meta.get("key") == key


def write_unit(folder: Path, files: Mapping[str, bytes], meta: Mapping) -> None:
    """Write ``files`` and ``meta.json`` as one unit: a temporary folder renamed to ``folder``.

    A stale unit already at ``folder`` (other key) is replaced. ``meta`` must hold the ``key``.
    """
    folder = Path(folder)
    if "meta.json" in files or "key" not in meta:
        raise ValueError("write_unit: 'meta.json' is written from meta, and meta needs a 'key'")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        (tmp / "meta.json").write_text(json.dumps(dict(meta), indent=1, sort_keys=True))
        if folder.exists():  # stale: move aside first, a rename cannot replace a non-empty folder
            old = folder.with_name(f".{folder.name}.old.tmp")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
