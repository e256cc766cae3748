"""Renamed keywords of circuits functions: (function) -> the same function, old keyword names still accepted.

The images argument of every circuits function is ``images``; the names it had before (``inputs``,
``stimuli``) keep working as keywords with a ``DeprecationWarning``. Positional calls never change.
"""
from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

from featviz.errors import BadType

__all__ = ["images_keyword"]


def images_keyword(*old: str) -> Callable[[Callable], Callable]:
    """A decorator: a call with keyword ``old[i]=x`` is read as ``images=x``, with a DeprecationWarning;
    giving both is a ``TypeError``. The signature and docstring are the function's own.

    Example:
        >>> @images_keyword("inputs")
        ... def count(model, images): return len(images)
        >>> import warnings; warnings.simplefilter("ignore")
        >>> count(None, inputs=[1, 2])
        2
    """
    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for name in old:
                if name in kwargs:
                    if "images" in kwargs:
                        raise BadType(f"{fn.__name__}() got both images= and its old name {name}=")
                    warnings.warn(f"{fn.__name__}({name}=...) is deprecated: the keyword is images=",
                                  DeprecationWarning, stacklevel=2)
                    kwargs["images"] = kwargs.pop(name)
            return fn(*args, **kwargs)

        return wrapper

    return decorate
