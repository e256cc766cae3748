"""Atomic file writes that honour the umask: (path, bytes or str) -> a file that is complete or absent.

The one writer of the package (microscope pages and units, ``Rendering.save``). Data goes to a temporary
file beside the target, named ``.<name>.<pid>.<8 hex>.featviz-tmp`` (``temp_path``; ``is_temp_name`` tells
these names apart from anyone else's), then ``os.replace`` moves it into place. Files are created with
``open(..., "xb")``, so their mode is ``0o666 & ~umask`` like any file a program writes (``mkstemp``
would make them 0600); folders are made with ``Path.mkdir`` (``0o777 & ~umask``).

Example:
    >>> import tempfile, pathlib
    >>> p = atomic_write_text(pathlib.Path(tempfile.mkdtemp()) / "a" / "b.txt", "hi")
    >>> p.read_text(), [q.name for q in p.parent.iterdir()]
    ('hi', ['b.txt'])
"""
from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

__all__ = ["TEMP_SUFFIX", "temp_path", "is_temp_name", "atomic_write_bytes", "atomic_write_text"]

TEMP_SUFFIX = ".featviz-tmp"
_TEMP_RE = re.compile(r"^\..+\.\d+\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX) + "$")


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<pid>.<8 hex>.featviz-tmp``.

    Example:
        >>> is_temp_name(temp_path("site/index.html").name)
        True
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    """True only for names ``temp_path`` makes (a user's ``.cache.tmp`` is not one).

    Example:
        >>> is_temp_name(".index.html.123.0a1b2c3d.featviz-tmp"), is_temp_name(".cache.tmp")
        (True, False)
    """
    return bool(_TEMP_RE.match(name))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` (parent folders made as needed) through a temporary file and a rename.

    Example:
        >>> import tempfile, pathlib
        >>> atomic_write_bytes(pathlib.Path(tempfile.mkdtemp()) / "x.bin", b"ab").read_bytes()
        b'ab'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "xb") as f:  # mode 0o666 & ~umask, as for any file a program writes
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """``atomic_write_bytes`` of ``text`` in UTF-8.

    Example:
        >>> import tempfile, pathlib
        >>> atomic_write_text(pathlib.Path(tempfile.mkdtemp()) / "x.txt", "é").read_bytes()
        b'\\xc3\\xa9'
    """
    return atomic_write_bytes(path, text.encode("utf-8"))
