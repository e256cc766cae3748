"""Resumable build storage: content keys (weights + settings -> hex), atomic all-or-nothing result folders,
and the site folder's guard (marker of what the builder wrote, lock, removal of only the builder's files).

A *unit* (one channel's results, one layer pair's connections) is a folder of files with a ``meta.json``
that records the unit's content key. It is written into a temporary sibling folder and renamed into
place, so a unit on disk is either complete or absent, whatever interrupts the build.

Example:
    >>> key = content_key(weights_hash(torch.nn.Linear(2, 2)), {"steps": 64})
    >>> write_unit(Path("site/data/conv/3"), {"fv.png": b"..."}, {"key": key})
    >>> unit_done(Path("site/data/conv/3"), key)
    True
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from featviz._io import atomic_write_text, is_temp_name, temp_path
from featviz.errors import BadValue, OutputError

__all__ = ["slug", "weights_hash", "content_key", "write_unit", "read_meta", "unit_done", "read_files",
           "MARKER", "LOCK", "SiteError", "SiteLock", "read_marker", "check_site_folder", "write_marker",
           "remove_stale", "clean_temps"]


def slug(name: str) -> str:
    """A layer name as a file-name part: 'blocks.2' stays; a name with characters outside [A-Za-z0-9._-]
    has them replaced by '_' and gets 8 hex digits of its SHA-1, so two names never share a slug
    ('a/b' and 'a_b' are both module names a model may have).

    Example:
        >>> slug("blocks.2"), slug("a/b"), slug("a_b")
        ('blocks.2', 'a_b-3ec69c85', 'a_b')
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    if safe == name and name not in (".", ".."):
        return name
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


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
    """The unit's ``meta.json`` as a dict, or None when the unit is absent, unreadable or damaged: every
    file ``write_unit`` recorded must still be there with its size and SHA-256 (a truncated ``fv.png`` makes
    the unit count as missing, so a resumed build rebuilds it instead of trusting ``meta.json``)."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        sums = meta.get("checksums") if isinstance(meta, dict) else None
        if not isinstance(sums, dict):  # written before files were recorded: rebuilt once
            return None
        for name, (size, digest) in sums.items():
            p = folder / name
            if p.is_symlink() or not p.is_file() or p.stat().st_size != size:
                return None
            if hashlib.sha256(p.read_bytes()).hexdigest() != digest:
                return None
        return meta
    except (OSError, ValueError, TypeError):
        return None


def unit_done(folder: Path, key: str) -> bool:
    """True when ``folder`` holds a complete unit built with content key ``key``."""
    meta = read_meta(folder)
    return meta is not None and meta.get("key") == key


def write_unit(folder: Path, files: Mapping[str, bytes], meta: Mapping) -> None:
    """Write ``files`` and ``meta.json`` as one unit: a temporary folder renamed to ``folder``.

    A stale unit already at ``folder`` (other key) is replaced. ``meta`` must hold the ``key``; each file's
    size and SHA-256 go into ``meta.json`` too (``checksums``), which :func:`read_meta` verifies. Folders
    and files get the umask's modes (``featviz._io``); temporary names are ``featviz._io.temp_path``'s.
    """
    folder = Path(folder)
    if "meta.json" in files or "key" not in meta:
        raise BadValue("write_unit: 'meta.json' is written from meta, and meta needs a 'key'")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(folder)
    tmp.mkdir()  # 0o777 & ~umask
    try:
        for name, data in files.items():
            with open(tmp / name, "xb") as f:
                f.write(data)
        sums = {name: [len(data), hashlib.sha256(data).hexdigest()] for name, data in files.items()}
        with open(tmp / "meta.json", "xb") as f:
            f.write(json.dumps({**dict(meta), "checksums": sums}, indent=1, sort_keys=True).encode())
        if folder.exists():  # stale: move aside first, a rename cannot replace a non-empty folder
            old = temp_path(folder)
            os.replace(folder, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_files(folder: Path, names: Sequence[str]) -> dict[str, bytes]:
    """The bytes of each of ``names`` in a unit ``folder`` (to carry finished parts into a new unit)."""
    return {n: (Path(folder) / n).read_bytes() for n in names}


MARKER = ".featviz-site.json"   # says "a featviz microscope site" and lists what the builder wrote
LOCK = ".featviz-lock"          # held (flock) by the one build writing the site; holds its pid


class SiteError(OutputError):
    """The site folder cannot be built into: not a featviz site, or another build holds its lock."""


def read_marker(out: Path) -> dict | None:
    """The site marker of ``out`` (``{"featviz_site": 1, "written": [relative paths]}``), None if absent."""
    try:
        marker = json.loads((Path(out) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("featviz_site") == 1 else None


def check_site_folder(out: Path, force: bool = False) -> set[str]:
    """Paths the builder wrote into ``out`` before (from its marker); raises ``SiteError`` when ``out`` is a
    non-empty folder that is not a featviz site, unless ``force`` (then nothing of it counts as written).

    Example:
        >>> check_site_folder(Path("new-folder"))
        set()
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SiteError(f"{out} is a file; give a folder for the site")
    marker = read_marker(out)
    if marker is not None:
        return {p for p in marker.get("written", []) if _inside(p)}
    if out.is_dir() and any(p.name not in (LOCK,) for p in out.iterdir()) and not force:
        raise SiteError(f"{out} is not empty and is not a featviz site (no {MARKER}); choose a new or empty "
                        "folder, or pass --force to build into it anyway (files already there are never "
                        "deleted, but ones with the site's file names are overwritten)")
    return set()


def _inside(rel: str) -> bool:
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts


def write_marker(out: Path, written: set[str]) -> None:
    """Record ``written`` (paths relative to ``out``) as the files and unit folders the builder owns."""
    marker = {"featviz_site": 1, "written": sorted(written)}
    atomic_write_text(Path(out) / MARKER, json.dumps(marker, indent=0))


def _own_path(out: Path, rel: str) -> Path | None:
    """``out / rel`` when it is safe to delete: ``rel`` stays inside ``out``, no folder on the way is a
    symbolic link, the path itself is no link, and its real path lies inside ``out``'s real path; else None.
    (A marker can be edited: nothing it lists may lead a rebuild to delete anything outside the site.)"""
    if not _inside(rel):
        return None
    real_out = os.path.realpath(out)
    cur = Path(out)
    for part in Path(rel).parts[:-1]:
        cur = cur / part
        if cur.is_symlink() or not cur.is_dir():
            return None
    p = Path(out) / rel
    if p.is_symlink() or not os.path.lexists(p):
        return None
    return p if os.path.realpath(p).startswith(real_out + os.sep) else None


def _remove_own(p: Path) -> None:
    """Delete regular file ``p``, or the regular files inside folder ``p`` and the folders they leave empty;
    symbolic links, pipes and anything else that is not a regular file stay."""
    if p.is_file():
        p.unlink()
        return
    for root, dirs, files in os.walk(p, topdown=False, followlinks=False):
        for name in files:
            f = Path(root) / name
            if f.is_file() and not f.is_symlink():
                f.unlink()
        for name in dirs:
            d = Path(root) / name
            if not d.is_symlink() and d.is_dir() and not any(d.iterdir()):
                d.rmdir()
    if not any(p.iterdir()):
        p.rmdir()


def remove_stale(out: Path, stale: set[str]) -> list[str]:
    """Delete each path of ``stale`` (relative to ``out``, written by an earlier build): regular files, and
    unit folders' regular files; then the folders that leaves empty; returns what was removed. Nothing is
    deleted through a symbolic link or outside ``out``'s real path (``_own_path``).

    Example:
        >>> import tempfile
        >>> site, elsewhere = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
        >>> (elsewhere / "keep.txt").write_text("the user's")
        10
        >>> (site / "data").symlink_to(elsewhere)      # a link planted inside the site
        >>> remove_stale(site, {"data/keep.txt"}), (elsewhere / "keep.txt").exists()
        ([], True)
    """
    out, removed = Path(out), []
    for rel in sorted(stale):
        p = _own_path(out, rel)
        if p is None:
            continue
        _remove_own(p)
        removed.append(rel)
        parent = p.parent
        while parent != out and not parent.is_symlink() and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    return removed


def clean_temps(out: Path, written: set[str]) -> None:
    """Remove the builder's own temporary files and folders (``featviz._io.temp_path`` names) left by a
    killed build, looking only in the folders that hold what the builder writes; nothing else is touched."""
    out = Path(out)
    real_out = os.path.realpath(out)
    folders = {out} | {(out / rel).parent for rel in written if _inside(rel)}
    for folder in sorted(folders):
        if not folder.is_dir() or (folder != out and
                                   not os.path.realpath(folder).startswith(real_out + os.sep)):
            continue
        for p in folder.iterdir():
            if is_temp_name(p.name):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink()


class SiteLock:
    """An exclusive lock on a site folder for one build (``flock`` on ``LOCK``; released when the process
    ends, however it ends). A second build gets ``SiteError`` naming the first one's pid.

    Example:
        >>> Path("site").mkdir()
        >>> with SiteLock(Path("site")):
        ...     SiteLock(Path("site")).__enter__()      # a second build
        Traceback (most recent call last):
        featviz.microscope._store.SiteError: another featviz microscope build (pid ...) is writing to ...
    """

    def __init__(self, out: Path):
        self.path = Path(out) / LOCK
        self._fd: int | None = None

    def __enter__(self) -> SiteLock:
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_symlink() or (os.path.lexists(self.path) and not self.path.is_file()):
                raise IsADirectoryError(21, "not a regular file")
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as e:
            raise SiteError(f"cannot open the build lock {self.path} ({e.strerror or e}): it must be a "
                            f"regular file the build can write; remove whatever is there, or check the "
                            f"folder's permissions") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SiteError(f"another featviz microscope build (pid {other}) is writing to "
                            f"{self.path.parent}; wait for it to end (or stop it), then rebuild") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # no pid once free (a killed build's pid stays, harmlessly: no flock)
            os.close(self._fd)  # closing releases the flock; the file stays (it is the site's)
            self._fd = None
