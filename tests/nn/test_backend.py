"""Backend switching: the context manager, per-layer overrides, and which code path actually runs."""
import pytest
import torch

import featviz as fv
from featviz.nn import layers


@pytest.fixture
def spy(monkeypatch):
    """Count calls of the from-scratch conv2d that the layers use for the "strided" backend."""
    calls = []
    real = layers.sf.conv2d
    monkeypatch.setattr(layers.sf, "conv2d", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_default_backend_is_torch(spy):
    assert fv.nn.get_backend() == "torch"
    fv.nn.Conv2d(3, 4, 3)(torch.rand(1, 3, 5, 5))
    assert spy == []


def test_use_backend_switches_and_restores(spy):
    conv = fv.nn.Conv2d(3, 4, 3)
    with fv.nn.use_backend("strided"):
        assert fv.nn.get_backend() == "strided"
        conv(torch.rand(1, 3, 5, 5))
    assert spy == [1] and fv.nn.get_backend() == "torch"


def test_use_backend_restores_after_an_exception():
    with pytest.raises(ZeroDivisionError), fv.nn.use_backend("strided"):
        raise ZeroDivisionError
    assert fv.nn.get_backend() == "torch"


def test_nested_use_backend_restores_the_outer_one():
    with fv.nn.use_backend("strided"):
        with fv.nn.use_backend("torch"):
            assert fv.nn.get_backend() == "torch"
        assert fv.nn.get_backend() == "strided"


def test_layer_backend_overrides_the_global_default(spy):
    fv.nn.Conv2d(3, 4, 3, backend="strided")(torch.rand(1, 3, 5, 5))
    with fv.nn.use_backend("strided"):
        fv.nn.Conv2d(3, 4, 3, backend="torch")(torch.rand(1, 3, 5, 5))
    assert spy == [1]


def test_unknown_backend_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown backend 'numpy'.*'torch', 'strided'"):
        fv.nn.Conv2d(3, 4, 3, backend="numpy")
    with pytest.raises(ValueError, match="'torch', 'strided'"), fv.nn.use_backend("cuda"):
        pass
