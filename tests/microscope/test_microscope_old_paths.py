"""The microscope's old module paths (featviz.viz.microscope, featviz.viz.universality_site) still work, warn
DeprecationWarning and give the objects that moved to featviz.microscope (layer_shapes: featviz.hooks)."""
import importlib
import warnings

import pytest

import featviz.hooks
import featviz.microscope as microscope


@pytest.mark.parametrize("old, name, new", [
    ("featviz.viz.microscope", "build_microscope", microscope.build_microscope),
    ("featviz.viz.microscope", "MicroscopeSettings", microscope.MicroscopeSettings),
    ("featviz.viz.microscope", "CACHE", microscope.CACHE),
    ("featviz.viz.microscope", "layer_shapes", featviz.hooks.layer_shapes),
    ("featviz.viz.universality_site", "build_microscopes", microscope.build_microscopes),
])
def test_old_module_paths_warn_and_give_the_moved_objects(old, name, new):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"{name} moved to"):
        got = getattr(module, name)
    assert got is new


def test_old_module_paths_offer_no_private_names():
    module = importlib.import_module("featviz.viz.microscope")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not hasattr(module, "_build") and not hasattr(module, "__all__")
