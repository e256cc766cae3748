"""Shared pytest setup: one CPU thread (the machine is shared), fixed seeds."""
import os

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("FEATVIZ_FAST", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
