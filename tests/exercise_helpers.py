"""Shared by the notebook exercise tests: ``load`` (notebooks/checks.py, solutions.py as modules; the ``C``
and ``S`` fixtures in tests/conftest.py use it) and ``rejects`` (a check fails a wrong answer, saying why)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def load(name: str):
    """notebooks/<name>.py as the module ``notebook_<name>`` (loaded once per process)."""
    spec = importlib.util.spec_from_file_location(f"notebook_{name}", NOTEBOOKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(f"notebook_{name}", module)
    spec.loader.exec_module(module)
    return module


def rejects(check, *args, match: str) -> str:
    """``check(*args)`` must raise an AssertionError matching ``match`` with a message of some substance."""
    with pytest.raises(AssertionError, match=match) as err:
        check(*args)
    assert len(str(err.value)) > 40, f"failure message too terse: {err.value!r}"
    return str(err.value)
