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

__all__ = ["Criteria"]

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
