"""optvis results share one protocol (to_dict, plot, _repr_png_) and one images keyword (issue 19)."""
import json

import pytest
import torch

import featviz as fv


def _net() -> torch.nn.Module:
    return fv.models.toy.edges_and_curves()


def test_rendering_to_dict_and_plot():
    r = fv.render_layer(_net(), "relu1", channels=[0, 3], size=16, steps=3, progress=False)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["labels"] == ["relu1:0", "relu1:3"] and d["shape"] == [2, 3, 16, 16] and d["steps"] == 3
    assert d["activations"] == pytest.approx(r.activations.tolist())
    assert d["final_losses"] == pytest.approx(r.losses[-1].tolist())
    fig = r.plot(ncol=2)
    assert [ax.get_title() for ax in fig.axes] == ["relu1:0", "relu1:3"]
    assert r._repr_png_()[:4] == b"\x89PNG"


def test_factorization_and_atlas_to_dict_and_png():
    model, x = _net(), torch.rand(3, 3, 16, 16)
    f = fv.factorize(model, "relu1", x, n_groups=2, progress=False)
    d = json.loads(json.dumps(f.to_dict()))
    assert d["n_groups"] == 2 and torch.allclose(torch.tensor(d["directions"]), f.directions.float())
    assert f._repr_png_()[:4] == b"\x89PNG"
    a = fv.atlas(model, "relu1", x, grid=2, n_samples=40, reducer="pca", size=16, steps=2, progress=False,
                 class_atlas=False)
    d = json.loads(json.dumps(a.to_dict()))
    assert sum(c["count"] for c in d["cells"]) == int(a.counts[a.cells[:, 0], a.cells[:, 1]].sum())
    assert [[c["row"], c["col"]] for c in d["cells"]] == a.cells.tolist()
    assert a._repr_png_()[:4] == b"\x89PNG"


def test_invert_takes_images_and_the_old_image_keyword_with_a_warning():
    model, photo = _net(), torch.rand(1, 3, 16, 16)
    new = fv.invert(model, "relu1", images=photo, steps=2, progress=False)
    with pytest.warns(DeprecationWarning, match="images"):
        old = fv.invert(model, "relu1", image=photo, steps=2, progress=False)
    assert torch.equal(new.images, old.images)
    with pytest.raises(TypeError, match="needs images"):
        fv.caricature(model, "relu1", steps=2, progress=False)
    u8 = (photo * 255).round().to(torch.uint8)  # the one images rule: uint8 is read as 0..255
    r = fv.invert(model, "relu1", u8, steps=2, progress=False)
    assert torch.equal(r.images, fv.invert(model, "relu1", u8.float() / 255, steps=2, progress=False).images)
