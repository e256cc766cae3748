"""Finder thresholds as values: (named float thresholds) -> a frozen ``Criteria`` the finders apply.

``CurveCriteria`` (``find_curve_detectors``) and ``EdgeCriteria`` (``find_edge_detectors``) subclass
``Criteria``: a frozen dataclass of floats with ``replace`` (a copy with some thresholds changed) and
``to_dict``. A finder takes ``criteria=`` and, for the old calls, single thresholds as keywords that
override it (``Criteria.resolve``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from dataclasses import replace as _replace
from typing import TypeVar

from featviz.errors import BadType

__all__ = ["Criteria", "scan_sentence"]

C = TypeVar("C", bound="Criteria")


@dataclass(frozen=True)
class Criteria:
    """Base of the finders' threshold sets: subclasses declare float fields with calibrated defaults."""

    def replace(self: C, **changes: float | None) -> C:
        """A copy with the given thresholds changed (``None`` values are ignored); an unknown name is a
        ``TypeError`` listing the thresholds there are."""
        names = [f.name for f in fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise BadType(f"{type(self).__name__} has no threshold {', '.join(unknown)}; it has {names}")
        return _replace(self, **{k: float(v) for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, float]:
        """``{threshold name: value}``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def resolve(cls: type[C], criteria: C | None, overrides: dict[str, float | None]) -> C:
        """``criteria`` (default: ``cls()``) with the keyword ``overrides`` applied; a ``criteria`` of another
        kind is a ``TypeError``."""
        if criteria is not None and not isinstance(criteria, cls):
            raise BadType(f"criteria must be a {cls.__name__}, got {type(criteria).__name__}")
        return (criteria if criteria is not None else cls()).replace(**overrides)


def scan_sentence(what: str, layer: str, n_channels: int, found: list, test: str, criteria: str,
                  angle: str) -> str:
    """The one-sentence ``summary()`` of a finder's scan: the layer, its channels and the units that pass
    (the first six, each with its preferred angle ``getattr(unit, angle)``).

    Example:
        >>> scan_sentence("Edge", "relu1", 8, [], "both edge tests", "EdgeCriteria", "angle")
        'Edge scan of relu1: 8 channels, 0 pass both edge tests with the default EdgeCriteria.'
    """
    names = ", ".join(f"{d.node} ({getattr(d, angle):.0f}°)" for d in found[:6])
    names += " ..." if len(found) > 6 else ""
    return (f"{what} scan of {layer}: {n_channels} channels, {len(found)} pass {test} "
            f"with the default {criteria}" + (f": {names}." if found else "."))
