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
DATA = ("inputs", "images", "image", "stimuli")  # the older names are still recognised, and refused below

# Every public function of circuits, optvis and viz follows one of these rules (docs/api.md); a function with
# a model parameter is model-first unless it draws a result. A new function without a model must be named
# here, so no case goes unchecked.
RESULT_FIRST = {  # figures and result post-processing: the thing drawn (or read) first, any model later
    "plot_circuit": "circuit", "plot_dataset_examples": "examples", "plot_tuning_curve": "curves",
    "plot_weights": "w", "weight_heatmap": "kernel", "image_grid": "images", "save": "fig",
    "unit_links": "matches", "plot_ablation_test": "test", "plot_evidence": "ev", "plot_families": "families",
    "plot_unit_match": "match", "figure_png": "fig", "figure_svg": "fig", "plot_factorization": "fac",
    "plot_atlas": "atlas",
    "show_rendering": "rendering",
}
DATA_FIRST = {"augment_images": "images", "benjamini_hochberg": "p", "full_weight": "conv"}  # no model: data
IMAGE_PARAMS = {"fft_image", "pixel_image", "maco_image"}  # render calls param(size, batch, seed=, device=)
SETTINGS_ONLY = {"jitter", "pad", "random_rotate", "random_scale", "compose", "standard_transforms",
                 "captum_methods", "explore_conv"}  # a transform / list / widget: no model, refs or data


def public_functions():
    for mod in (featviz.circuits, featviz.optvis, featviz.viz):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                yield pytest.param(obj, id=f"{mod.__name__}.{name}")


def _params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def _kind(fn) -> str | None:
    name, params = fn.__name__, _params(fn)
    if name in RESULT_FIRST:
        return "result_first"
    if any(p in MODELS for p in params):
        return "model_first"
    rules = {"data_first": DATA_FIRST, "image_param": IMAGE_PARAMS, "settings": SETTINGS_ONLY}
    return next((kind for kind, names in rules.items() if name in names), None)


def _by_kind(kind):
    return [p for p in public_functions() if _kind(p.values[0]) == kind]


def test_every_public_function_has_a_rule():
    fns = [p.values[0] for p in public_functions()]
    unclassified = [f.__name__ for f in fns if _kind(f) is None]
    assert not unclassified, f"name each in a rule of tests/test_argument_order.py: {unclassified}"
    kinds = ("model_first", "result_first", "data_first", "image_param", "settings")
    counts = {k: len(_by_kind(k)) for k in kinds}
    assert sum(counts.values()) == len(fns) >= 47, counts  # every collected case runs an assertion
    assert counts["model_first"] >= 26 and min(counts.values()) >= 3, counts
    stale = (set(RESULT_FIRST) | set(DATA_FIRST) | IMAGE_PARAMS | SETTINGS_ONLY) - {f.__name__ for f in fns}
    assert not stale, f"no longer public functions; drop them from the rules: {sorted(stale)}"


@pytest.mark.parametrize("fn", _by_kind("model_first"))
def test_model_first_then_references_then_data(fn):
    params = _params(fn)
    assert params[0] in MODELS, params
    refs = [params.index(p) for p in params if p in REFS]
    data = [params.index(p) for p in params if p in DATA]
    assert not refs or not data or max(refs) < min(data), params
    if data:
        assert params[min(data)] == "images", (params, "one images keyword (issue 19): name it images")


@pytest.mark.parametrize("fn", _by_kind("result_first"))
def test_figure_functions_take_the_result_first(fn):
    params = _params(fn)
    assert params[0] == RESULT_FIRST[fn.__name__], params
    assert inspect.signature(fn).parameters[params[0]].default is inspect.Parameter.empty  # required
    if "model" in params:
        assert params.index("model") > 0 and inspect.signature(fn).parameters["model"].default is None
    if "path" in params and fn.__name__ != "save":
        assert inspect.signature(fn).parameters["path"].default is None, "figures are written only when asked"


@pytest.mark.parametrize("fn", _by_kind("data_first"))
def test_functions_without_a_model_take_their_data_first(fn):
    params = _params(fn)
    assert params[0] == DATA_FIRST[fn.__name__], params
    assert not any(p in MODELS or p in REFS for p in params), params


@pytest.mark.parametrize("fn", _by_kind("image_param"))
def test_image_parameterisations_take_size_batch_then_keywords(fn):
    sig = inspect.signature(fn)
    assert list(sig.parameters)[:2] == ["size", "batch"], list(sig.parameters)
    for name in ("seed", "device"):  # render calls param(size, batch, seed=seed, device=device)
        assert sig.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, (name, sig)


@pytest.mark.parametrize("fn", _by_kind("settings"))
def test_transform_and_widget_builders_take_settings_only(fn):
    sig = inspect.signature(fn)
    assert not any(p in MODELS or p in REFS or p in DATA for p in sig.parameters), sig
    required = [p for p in sig.parameters.values() if p.default is inspect.Parameter.empty]
    assert len(required) <= 1, sig  # at most the setting the builder is named for (jitter's d, pad's width)


def _toy():
    return fv.models.toy.edges_and_curves()


def test_attribute_old_order_warns_and_gives_the_same_answer():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the package order never warns
        new = attribute(_toy(), "relu1", "relu2:0", x)
    with pytest.warns(DeprecationWarning, match=r"attribute\(model, src, dst, images\)"):
        old = attribute(_toy(), x, "relu1", "relu2:0")
    torch.testing.assert_close(old, new)


def test_attribute_old_order_with_keywords_warns_and_gives_the_same_answer():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    new = attribute(_toy(), "relu1", "relu2:0", x)
    with pytest.warns(DeprecationWarning, match=r"attribute\(model, src, dst, images\)"):
        old = attribute(_toy(), x, src="relu1", dst="relu2:0")
    torch.testing.assert_close(old, new)
    with pytest.warns(DeprecationWarning):
        mixed = attribute(_toy(), x, "relu1", dst="relu2:0", method="grad_x_act")
    torch.testing.assert_close(mixed, new)
    assert list(inspect.signature(attribute).parameters)[:4] == ["model", "src", "dst", "images"]


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
