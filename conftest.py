"""Docstring examples of the featviz package run with the tests (``make test``, plain ``pytest``).

Every ``.py`` file under ``featviz/`` is collected as ``--doctest-modules`` would collect it (that flag
itself would also import ``tests/`` helpers and clash on their several ``conftest.py``). Every example
may use the names ``fv``, ``torch``, ``nn`` and ``functools``; each runs in its own empty temporary
folder (files it writes, such as ``"render.png"`` or a microscope ``"site"``, never land in the
checkout), with matplotlib drawing off screen; models an example registers are forgotten after it.
"""
import functools
from pathlib import Path

import pytest
import torch
from _pytest.doctest import DoctestItem, DoctestModule  # DoctestModule is not exported by pytest
from torch import nn

import featviz as fv

PACKAGE = Path(__file__).parent / "featviz"


def pytest_collect_file(file_path, parent):
    if (file_path.suffix == ".py" and PACKAGE in file_path.parents
            and not parent.config.getoption("doctestmodules")):
        return DoctestModule.from_parent(parent, path=file_path)
    return None


@pytest.fixture(autouse=True)
def _doctest_names(request, doctest_namespace):
    torch.manual_seed(0)
    doctest_namespace.update(fv=fv, torch=torch, nn=nn, functools=functools)
    if not isinstance(request.node, DoctestItem):
        yield
        return
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    from featviz.models import registry

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(request.getfixturevalue("tmp_path"))
        mp.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # an example's register() is undone
        yield
    plt.close("all")
