"""Registry: every zoo model by name; unknown names fail with suggestions."""
import pytest

import featviz as fv


def test_list_models_names_the_zoo():
    zoo = {"efficientnet_lite0", "inception_v1", "resnet18", "edges_and_curves"}
    assert zoo <= set(fv.models.list_models())


def test_get_builds_with_kwargs():
    model = fv.models.get("resnet18")
    assert model.input_size == 224 and not model.training


def test_unknown_name_suggests_closest():
    with pytest.raises(KeyError, match="efficientnet_lite0"):
        fv.models.get("efficientnet_lite")
