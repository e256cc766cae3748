"""One argument order (docs/api.md): model, then references, then data; old forms warn and still work."""
import inspect
import warnings

import pytest
import torch

import featviz as fv
import featviz.circuits
import featviz.optvis
import featviz.viz
from featviz.circuits import attribute, control_counts, find_edge_detectors

MODELS = ("model", "model_a")
REFS = ("src", "dst", "layer", "node", "ref", "layer_a", "layer_b", "nodes")
DATA = ("inputs", "images", "image", "stimuli")
DRAWS_A_RESULT = {"plot_circuit"}  # figure functions: the result first, the model only for thumbnails


def public_functions():
    for mod in (featviz.circuits, featviz.optvis, featviz.viz):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                yield pytest.param(obj, id=f"{mod.__name__}.{name}")


@pytest.mark.parametrize("fn", list(public_functions()))
def test_model_first_then_references_then_data(fn):
    params = list(inspect.signature(fn).parameters)
    if fn.__name__ in DRAWS_A_RESULT or not any(p in MODELS for p in params):
        return
    assert params[0] in MODELS, params
    refs = [params.index(p) for p in params if p in REFS]
    data = [params.index(p) for p in params if p in DATA]
    assert not refs or not data or max(refs) < min(data), params


def _toy():
    return fv.models.toy.edges_and_curves()


def test_attribute_old_order_warns_and_gives_the_same_answer():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the package order never warns
        new = attribute(_toy(), "relu1", "relu2:0", x)
    with pytest.warns(DeprecationWarning, match=r"attribute\(model, src, dst, inputs\)"):
        old = attribute(_toy(), x, "relu1", "relu2:0")
    torch.testing.assert_close(old, new)


def test_attribute_old_order_with_keywords_warns_and_gives_the_same_answer():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    new = attribute(_toy(), "relu1", "relu2:0", x)
    with pytest.warns(DeprecationWarning, match=r"attribute\(model, src, dst, inputs\)"):
        old = attribute(_toy(), x, src="relu1", dst="relu2:0")
    torch.testing.assert_close(old, new)
    with pytest.warns(DeprecationWarning):
        mixed = attribute(_toy(), x, "relu1", dst="relu2:0", method="grad_x_act")
    torch.testing.assert_close(mixed, new)
    assert list(inspect.signature(attribute).parameters)[:4] == ["model", "src", "dst", "inputs"]


def test_control_counts_old_order_warns_and_gives_the_same_answer():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        new = control_counts(_toy(), "relu1", find_edge_detectors, seeds=(0,), size=32)
    with pytest.warns(DeprecationWarning, match=r"control_counts\(model, layer, finder\)"):
        old = control_counts(find_edge_detectors, _toy(), "relu1", (0,), size=32)
    assert (old.trained, old.randomized, old.finder) == (new.trained, new.randomized, "find_edge_detectors")


def test_control_counts_without_a_finder_says_what_it_needs():
    with pytest.raises(TypeError, match="find_edge_detectors"):
        control_counts(_toy(), "relu1", "edges")
