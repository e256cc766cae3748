"""Figures render to PNG files with real content; the weight colour map is red for +, blue for -."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread

import featviz as fv
from featviz.circuits import TuningCurve, dataset_examples, trace

sys.path.insert(0, str(Path(__file__).parents[1] / "circuits"))
from circuit_models import Wired  # noqa: E402


@pytest.fixture
def wired():
    return Wired().eval()


def nontrivial_png(path):
    img = imread(path)[..., :3]
    return img.shape[0] > 50 and img.shape[1] > 50 and float(img.std()) > 0.02


def test_weight_heatmap_is_red_for_positive_and_blue_for_negative(tmp_path):
    ax = fv.viz.weight_heatmap(torch.tensor([[1.0, -1.0]]))
    fv.viz.save(ax.figure, tmp_path / "k.png")
    rgba = ax.images[0].to_rgba(ax.images[0].get_array())  # (1, 2, 4)
    (r_pos, _, b_pos), (r_neg, _, b_neg) = rgba[0, 0, :3], rgba[0, 1, :3]
    assert r_pos > b_pos + 0.2 and b_neg > r_neg + 0.2 and nontrivial_png(tmp_path / "k.png")


def test_weight_grid_png(tmp_path, wired):
    fv.viz.plot_weights(fv.circuits.weights(wired, "relu1", "relu2", size=32), path=tmp_path / "w.png")
    assert nontrivial_png(tmp_path / "w.png")


def test_circuit_diagram_png_without_thumbnails(tmp_path, wired):
    c = trace(wired, "relu3:0", depth=2, top_k=2, size=32, progress=False)
    c.plot(thumbnails=False, path=tmp_path / "c.png")
    assert nontrivial_png(tmp_path / "c.png")
    (tmp_path / "repr.png").write_bytes(c._repr_png_())  # the notebook's view: the same diagram
    assert np.array_equal(imread(tmp_path / "repr.png"), imread(tmp_path / "c.png"))


def test_circuit_thumbnails_are_rendered_once_and_cached(tmp_path, wired):
    c = trace(wired, "relu2:0", depth=1, top_k=2, size=32, progress=False)
    thumbs = fv.viz.thumbnails_for(wired, c, size=32, steps=2, cache_dir=tmp_path / "thumbs")
    c.plot(thumbnails=thumbs, path=tmp_path / "a.png")
    first = sorted(p.name for p in (tmp_path / "thumbs").iterdir())
    again = fv.viz.thumbnails_for(wired, c.nodes, size=32, steps=2, cache_dir=tmp_path / "thumbs")
    assert len(first) == 3 and set(thumbs) == set(c.nodes) and nontrivial_png(tmp_path / "a.png")
    assert all(torch.equal(thumbs[n], again[n]) for n in c.nodes)


def thumbnail_pixels(fig, circuit):
    """node -> the image drawn on its thumbnail axes (None for a grey tile)."""
    out = {}
    for ax in fig.axes:
        heads = [t.get_text().split("\n")[0] for t in ax.texts]
        label = next((h for h in heads if h in circuit.nodes), None)
        if label is not None:
            out[label] = np.asarray(ax.images[0].get_array()) if ax.images else None
    return out


def test_circuit_plot_draws_the_thumbnails_given_and_renders_nothing_itself(wired, monkeypatch):
    c = trace(wired, "relu2:0", depth=1, top_k=2, size=32, progress=False)
    monkeypatch.setattr("featviz.optvis.render_layer", lambda *a, **k: pytest.fail("a plot call rendered"))
    drawn = thumbnail_pixels(c.plot(), c)
    assert set(drawn) == set(c.nodes) and all(v is None for v in drawn.values())  # grey tiles, no render
    given = {c.root: torch.linspace(0, 1, 3 * 8 * 8).reshape(3, 8, 8)}
    drawn = thumbnail_pixels(c.plot(thumbnails=given), c)
    assert np.allclose(drawn[c.root], given[c.root].permute(1, 2, 0).numpy())
    assert all(drawn[n] is None for n in c.nodes if n != c.root)


def test_circuit_plot_old_rendering_call_still_renders_with_a_deprecation_warning(wired):
    c = trace(wired, "relu2:0", depth=1, top_k=2, size=32, progress=False)
    with pytest.warns(DeprecationWarning, match="thumbnails_for"):
        fig = c.plot(thumbnails=True, size=16, steps=2)
    explicit = fv.viz.thumbnails_for(wired, c, size=16, steps=2)
    drawn = thumbnail_pixels(fig, c)
    assert all(np.allclose(drawn[n], explicit[n].permute(1, 2, 0).numpy()) for n in c.nodes)
    with pytest.warns(DeprecationWarning):  # render settings without thumbnails= meant "render" before
        c.plot(size=16, steps=2)


def test_trace_of_a_negative_channel_plots_end_to_end(tmp_path):
    model = fv.models.toy.edges_and_curves()
    c = trace(model, "relu2:-1", depth=1, top_k=2, size=16, progress=False)
    c.plot(thumbnails=fv.viz.thumbnails_for(model, c, size=16, steps=2), path=tmp_path / "c.png")
    assert c.root == "relu2:6" and nontrivial_png(tmp_path / "c.png")


def test_thumbnails_read_nodes_with_the_one_reference_parser(wired):
    thumbs = fv.viz.thumbnails_for(wired, ["relu2:-1", "relu2:0"], size=16, steps=1)
    assert set(thumbs) == {"relu2:-1", "relu2:0"} and thumbs["relu2:-1"].shape == (3, 16, 16)
    with pytest.raises(ValueError, match="one channel"):
        fv.viz.thumbnails_for(wired, ["relu2:0,1"], size=16, steps=1)


def test_circuit_plot_without_model_says_how_to_fix(wired):
    text = trace(wired, "relu2:0", depth=1, top_k=1, size=32, progress=False).to_json()
    c = fv.circuits.Circuit.from_json(text)
    with pytest.raises(ValueError, match="thumbnails=False"):
        c.plot(thumbnails=True)


def test_tuning_curve_png(tmp_path):
    tc = TuningCurve("a:0", torch.arange(0.0, 180, 15), torch.linspace(0, 1, 12), torch.rand(12, 4))
    tc.plot(path=tmp_path / "t.png")
    assert nontrivial_png(tmp_path / "t.png")


def test_dataset_examples_png(tmp_path, wired):
    ex = dataset_examples(wired, "relu2:1", torch.rand(6, 3, 24, 24), k=4, progress=False)
    ex.plot(path=tmp_path / "crops.png")
    fv.viz.plot_dataset_examples(ex, crops=False, path=tmp_path / "full.png")
    assert nontrivial_png(tmp_path / "crops.png") and nontrivial_png(tmp_path / "full.png")


def test_image_grid_shows_the_images():
    imgs = torch.zeros(2, 3, 8, 8)
    imgs[1] = 1.0
    fig = fv.viz.image_grid(imgs, titles=["black", "white"])
    assert [float(np.asarray(ax.images[0].get_array()).mean()) for ax in fig.axes] == [0.0, 1.0]
