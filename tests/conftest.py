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


@pytest.fixture(scope="session")
def effnet():
    """The pretrained default model (EfficientNet-Lite0, eval mode), loaded once per test session."""
    import featviz as fv

    return fv.models.efficientnet_lite0(pretrained=True)


@pytest.fixture(scope="session")
def photos():
    """The bundled sample photos, (N, 3, 224, 224) in [0, 1], and their names."""
    import featviz as fv

    return fv.data.sample_images(size=224)


@pytest.fixture(scope="module")
def C():
    """notebooks/checks.py, the notebooks' exercise checks, as a module."""
    from exercise_helpers import load

    return load("checks")


@pytest.fixture(scope="module")
def S():
    """notebooks/solutions.py, the exercises' reference solutions, as a module."""
    from exercise_helpers import load

    return load("solutions")
