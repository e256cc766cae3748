"""The figures' renders take one ``fv.optvis.RenderSettings`` (issue 19): ``fv.viz.thumbnails_for`` and the
circuit explorer's side panel give exactly the pictures of the keyword call, with an explicit keyword
winning over ``settings``; checked against ``render_layer`` / ``render`` called directly on a fresh copy of
the model (so no thumbnail cache can make the two sides equal)."""
from __future__ import annotations

import pytest
import torch

import featviz as fv
from featviz.optvis import RenderSettings
from featviz.optvis.rendering import no_response_tile

NODES = ["relu2:0", "relu2:5", "relu2:6", "relu2:1", "relu1:0", "relu1:3"]


def _fresh():
    return fv.models.toy.edges_and_curves()   # deterministic weights: equal nets, distinct objects (caches)


def _reference(nodes, size, steps, seed=0) -> dict[str, torch.Tensor]:
    """What thumbnails_for renders (one render_layer batch per layer), done directly."""
    out = {}
    for layer in dict.fromkeys(n.split(":")[0] for n in nodes):
        todo = [n for n in nodes if n.split(":")[0] == layer]
        r = fv.render_layer(_fresh(), layer, channels=[int(n.split(":")[1]) for n in todo], size=size,
                            steps=steps, seed=seed, progress=False)
        for node, image, dead in zip(todo, r.images, r.dead.tolist()):   # dead: the no-response tile
            out[node] = no_response_tile(*image.shape[-2:]) if dead else image
    return out


def test_thumbnails_for_settings_equal_keywords():
    ref = _reference(NODES, 32, 4)
    live = [n for n in NODES if not torch.equal(ref[n], no_response_tile(32, 32))]
    assert len(live) >= 4      # the comparison is of real renders, not only of identical tiles
    by_keywords = fv.viz.thumbnails_for(_fresh(), NODES, size=32, steps=4)
    by_settings = fv.viz.thumbnails_for(_fresh(), NODES, settings=RenderSettings(size=32, steps=4))
    # a keyword given beside settings wins (size 16 in the settings, 32 asked)
    keyword_wins = fv.viz.thumbnails_for(_fresh(), NODES, settings=RenderSettings(size=16, steps=4), size=32)
    for node in NODES:
        assert by_keywords[node].shape == (3, 32, 32)
        assert torch.equal(by_keywords[node], ref[node])
        assert torch.equal(by_settings[node], ref[node])
        assert torch.equal(keyword_wins[node], ref[node])
    other_seed = fv.viz.thumbnails_for(_fresh(), live[:1], settings=RenderSettings(size=32, steps=4, seed=1))
    assert not torch.equal(other_seed[live[0]], ref[live[0]])   # the seed in the settings is used


def test_thumbnails_for_cache_tells_settings_apart(tmp_path):
    """The memory and file caches key on every setting: a changed lr is a new render, not a cache hit."""
    model = _fresh()
    base = fv.viz.thumbnails_for(model, ["relu1:0"], settings=RenderSettings(size=32, steps=4),
                                 cache_dir=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 1 and names[0].endswith("_32_4_0_v2.pt")     # the defaults keep the old file name
    fast = fv.viz.thumbnails_for(model, ["relu1:0"], settings=RenderSettings(size=32, steps=4, lr=0.5),
                                 cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2
    direct = fv.render_layer(_fresh(), "relu1", channels=[0], size=32, steps=4, lr=0.5, progress=False)
    assert not bool(direct.dead[0])
    assert torch.equal(fast["relu1:0"], direct.images[0])
    assert not torch.equal(fast["relu1:0"], base["relu1:0"])


def test_thumbnails_for_defaults_unchanged():
    """No settings, no keywords: 64 px, 64 steps, seed 0 (as before settings= existed)."""
    thumbs = fv.viz.thumbnails_for(_fresh(), ["relu1:0"])
    direct = fv.render_layer(_fresh(), "relu1", channels=[0], size=64, steps=64, seed=0, progress=False)
    assert torch.equal(thumbs["relu1:0"], direct.images[0])


def test_explore_settings_equal_keywords():
    node = "relu2:6"
    ref = fv.render(_fresh(), node, size=32, steps=4, seed=0, progress=False).images[0]
    kw = fv.viz.explore(_fresh(), node, expand=False, evidence=False, render_size=32, render_steps=4)
    st = fv.viz.explore(_fresh(), node, expand=False, evidence=False,
                        settings=RenderSettings(size=32, steps=4))
    wins = fv.viz.explore(_fresh(), node, expand=False, evidence=False,
                          settings=RenderSettings(size=16, steps=4), render_size=32)
    for ex in (kw, st, wins):
        assert torch.equal(ex.details(node)["render"], ref)
        assert (ex.render_size, ex.render_steps) == (32, 4)
    assert st.render_settings == RenderSettings(size=32, steps=4)
    default = fv.viz.CircuitExplorer(_fresh(), node)
    assert default.render_settings == RenderSettings(size=64, steps=64)   # defaults unchanged


def test_settings_must_be_render_settings():
    with pytest.raises(TypeError, match="RenderSettings"):
        fv.viz.thumbnails_for(_fresh(), NODES[:1], settings={"size": 32})
    with pytest.raises(TypeError, match="RenderSettings"):
        fv.viz.explore(_fresh(), "relu2:6", expand=False, settings={"size": 32})
