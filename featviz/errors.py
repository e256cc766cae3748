"""Typed user errors: a mistake a person can fix (bad file, name, size, channel) -> one readable line.

Every class derives from :class:`UserError` and also from the built-in exception existing callers
already catch (``ValueError``, ``KeyError``, ``IndexError``, ``FileNotFoundError``, ``TypeError``), so
``except ValueError`` keeps working. The ``featviz`` command catches ``UserError`` only: it prints
the message on one line and exits with status 2; so does an error raised inside the user's own model
(``featviz.cli._raised_by_model``); any other exception is a bug in featviz.
A message names the problem and the fix.

Example:
    >>> from featviz.errors import BadValue, UserError
    >>> try:
    ...     raise BadValue("--size must be a positive number of pixels, got -1; use e.g. --size 128")
    ... except ValueError as e:
    ...     isinstance(e, UserError), str(e)[:6]
    (True, '--size')
"""
from __future__ import annotations

__all__ = ["UserError", "BadValue", "BadType", "UnknownName", "OutOfRange", "MissingFile", "BadFile",
           "UnsupportedImage", "RefusedFile", "OutputError", "LayerNotRun", "NonFinite",
           "ModelFileError"]


class UserError(Exception):
    """Base of every mistake a user can fix; ``str(e)`` is the one line the CLI prints."""

    def __str__(self) -> str:  # KeyError would repr() its message: keep it plain for every subclass
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class BadValue(UserError, ValueError):
    """An argument with the right type but an impossible value (a size of 0, an empty list)."""


class BadType(UserError, TypeError):
    """An argument of the wrong type (a list where a tensor is needed, an int tensor for images)."""


class UnknownName(UserError, KeyError):
    """A name that does not exist (model, layer); the message lists the closest valid ones."""


class OutOfRange(UserError, IndexError):
    """A channel or index outside what exists; the message states the valid range."""


class MissingFile(UserError, FileNotFoundError):
    """A file or folder that does not exist."""


class BadFile(BadValue):
    """A file that exists but cannot be read as what it should be (corrupt, empty, wrong format)."""


class UnsupportedImage(BadFile):
    """An image whose pixel format featviz refuses rather than guess (named in the message)."""


class RefusedFile(BadFile):
    """A file refused for safety: a pickle that would run code when loaded."""


class OutputError(UserError, OSError):
    """An output path that cannot be written (it is a file, or the folder is not writable)."""


class LayerNotRun(UserError, RuntimeError):
    """A layer named for an activation that the forward pass never ran (a ModuleList, a skipped branch)."""


class NonFinite(UserError, FloatingPointError):
    """A value that became NaN or infinite (the model's output, an objective): names where and the fix."""


class ModelFileError(UserError, RuntimeError):
    """A user's model file (``net.py``) that raised while it was imported or built."""
