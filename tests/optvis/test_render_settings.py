"""fv.optvis.RenderSettings: one frozen value for the settings render, render_layer and atlas share."""
import dataclasses

import pytest
import torch

import featviz as fv
from featviz.optvis import RenderSettings, pixel_image


def _net() -> torch.nn.Module:
    return fv.models.toy.edges_and_curves()


def test_settings_equal_the_keyword_call_exactly():
    model = _net()
    a = fv.render(model, "relu2:1", settings=RenderSettings(size=32, steps=4, seed=0), progress=False)
    b = fv.render(model, "relu2:1", size=32, steps=4, seed=0, progress=False)
    assert torch.equal(a.images, b.images) and torch.equal(a.losses, b.losses)


def test_keywords_beside_settings_win():
    model = _net()
    s = RenderSettings(size=32, steps=3, seed=5, lr=0.1, param=pixel_image, transforms=())
    a = fv.render(model, "relu2:1", settings=s, seed=1, size=24, progress=False)
    b = fv.render(model, "relu2:1", size=24, steps=3, seed=1, lr=0.1, param=pixel_image, transforms=(),
                  progress=False)
    assert a.images.shape[-1] == 24 and torch.equal(a.images, b.images)
    c = fv.render(model, "relu2:1", settings=s, size=24, progress=False)  # seed 5 from the settings
    assert not torch.equal(c.images, a.images)


def test_render_layer_and_atlas_take_settings():
    model = _net()
    s = RenderSettings(size=16, steps=2, seed=3)
    a = fv.render_layer(model, "relu1", channels=[0, 2], settings=s, progress=False)
    b = fv.render_layer(model, "relu1", channels=[0, 2], size=16, steps=2, seed=3, progress=False)
    assert torch.equal(a.images, b.images) and a.labels == ["relu1:0", "relu1:2"]
    x = torch.rand(3, 3, 16, 16)
    kw = dict(grid=2, n_samples=40, reducer="pca", progress=False, class_atlas=False)
    at = fv.atlas(model, "relu1", x, settings=RenderSettings(size=16, steps=2), **kw)
    ak = fv.atlas(model, "relu1", x, size=16, steps=2, **kw)
    assert at.renders.images.shape[-1] == 16 and torch.equal(at.renders.images, ak.renders.images)
    default = fv.atlas(model, "relu1", x, steps=2, **kw)  # the atlas's own default size stays 64
    assert default.renders.images.shape[-1] == 64


def test_settings_are_frozen_and_checked():
    s = RenderSettings(size=32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.size = 64
    assert s.replace(steps=8) == RenderSettings(size=32, steps=8) and s.steps == 256
    with pytest.raises(TypeError, match="no stpes; its fields: size, steps"):
        s.replace(stpes=8)
    with pytest.raises(ValueError, match="lr must be a positive"):
        RenderSettings(lr=0)
    with pytest.raises(TypeError, match="settings must be a fv.optvis.RenderSettings"):
        fv.render(_net(), "relu2:1", settings={"size": 32})
    assert fv.RenderSettings is RenderSettings
    assert RenderSettings(transforms=[]).transforms == () and hash(RenderSettings(thresholds=[1, 2]))
