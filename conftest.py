"""Doctest namespace for ``pytest --doctest-modules featviz``: every docstring example may use these names."""
import functools

import pytest
import torch
from torch import nn

import featviz as fv


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    torch.manual_seed(0)
    doctest_namespace.update(fv=fv, torch=torch, nn=nn, functools=functools)
