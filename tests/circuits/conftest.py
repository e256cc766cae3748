"""Fixtures for circuits tests: the hand-wired model (circuit_models.py) and noise images."""
import pytest
import torch
from circuit_models import Wired


@pytest.fixture
def wired():
    return Wired().eval()


@pytest.fixture
def noise():
    return torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
