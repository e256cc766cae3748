"""The microscope holds its render settings as one ``fv.optvis.RenderSettings`` (issue 19): the
``MicroscopeSettings.render`` property, ``MicroscopeSettings.from_render``, the worker rendering with it, and
the resumable store's content keys unchanged for the same settings (an existing site resumes)."""
from __future__ import annotations

import pytest

import featviz as fv
from featviz.microscope._channel import ChannelWorker, MicroscopeSettings, png_bytes
from featviz.microscope._store import content_key
from featviz.optvis import RenderSettings

# Content keys computed with the code BEFORE MicroscopeSettings held a RenderSettings (main at d23e317),
# by: content_key("w", s.channel_settings()) and {p: content_key("w", {"part": p, **v}) for p, v in
# s.parts(early=True).items()}, for s = MicroscopeSettings() and for s = MicroscopeSettings(size=32,
# steps=4, seed=3, diversity=2, extras=("caricature",)). A change here rebuilds every existing site.
OLD_KEYS = {
    "default": ("e4e0b16e974855c1047fad92",
                {"fv": "ab8a4d3075839b267ee01855", "diversity": "9aa81dce02fe5e6bf0d5a66b",
                 "examples": "0896827b0d501131fc51209b", "tuning": "25cc0197755480c8137b3dcf",
                 "evidence": "8ac1bcd3c58253337289b6c3"}),
    "small": ("87c6d6919b18707780982bc3",
              {"fv": "8e4f9c3a72c5bb9171b9240c", "diversity": "c5d5b21cd4e94f74f4b9ac39",
               "examples": "0896827b0d501131fc51209b", "tuning": "25cc0197755480c8137b3dcf",
               "caricature": "b454a68a235e0a214e79a823", "evidence": "1ebee4586be8c95482f5841f"}),
}
SMALL = dict(size=32, steps=4, seed=3, diversity=2, extras=("caricature",), early_stop=None)


def _keys(s: MicroscopeSettings) -> tuple[str, dict[str, str]]:
    return (content_key("w", s.channel_settings()),
            {p: content_key("w", {"part": p, **v}) for p, v in s.parts(early=True).items()})


@pytest.mark.parametrize("name, settings", [
    ("default", MicroscopeSettings(early_stop=None)),   # every step, as builds before early_stop ran
    ("default", MicroscopeSettings.from_render(RenderSettings(size=128, steps=128))),
    ("small", MicroscopeSettings(**SMALL)),
    ("small", MicroscopeSettings.from_render(RenderSettings(size=32, steps=4, seed=3), diversity=2,
                                             extras=("caricature",))),
])
def test_content_keys_unchanged(name, settings):
    assert _keys(settings) == OLD_KEYS[name]


def test_render_property_and_from_render_round_trip():
    s = MicroscopeSettings(**SMALL)
    assert s.render == RenderSettings(size=32, steps=4, seed=3)
    assert MicroscopeSettings.from_render(s.render, diversity=2, extras=("caricature",)) == s
    assert MicroscopeSettings.from_render(RenderSettings(size=(48, 48))).size == 48
    assert MicroscopeSettings().render == RenderSettings(size=128, steps=128, early_stop=0.005)
    assert MicroscopeSettings(early_stop=None).render == RenderSettings(size=128, steps=128)


def test_early_stop_changes_the_render_parts_keys_only():
    """A site built before the early-stop default keeps its examples and tuning; its renders (and the
    evidence that quotes them) are made again, never served as if they had stopped early."""
    old, new = _keys(MicroscopeSettings(early_stop=None)), _keys(MicroscopeSettings())
    assert new[0] != old[0]
    changed = {p for p in old[1] if old[1][p] != new[1][p]}
    assert changed == {"fv", "diversity", "evidence"}
    assert MicroscopeSettings(early_stop=0.02).render.early_stop == 0.02
    with pytest.raises(ValueError, match="early_stop"):
        MicroscopeSettings(early_stop=2.0)


@pytest.mark.parametrize("render, rest, error, match", [
    (RenderSettings(lr=0.5), {}, ValueError, "lr"),
    (RenderSettings(size=(32, 48)), {}, ValueError, "squares"),
    (RenderSettings(), {"steps": 4}, TypeError, "steps"),
    ({"size": 32}, {}, TypeError, "RenderSettings"),
])
def test_from_render_refuses_what_it_cannot_hold(render, rest, error, match):
    with pytest.raises(error, match=match):
        MicroscopeSettings.from_render(render, **rest)


def test_worker_renders_with_the_settings_render():
    """The channel's feature visualization is fv.render with settings.render, byte for byte (fresh nets)."""
    s = MicroscopeSettings.from_render(RenderSettings(size=32, steps=4, seed=2), diversity=0)
    files, facts = ChannelWorker(fv.models.toy.edges_and_curves(), s).compute("relu1", 3, early=False,
                                                                               parts=("fv",))
    direct = fv.render(fv.models.toy.edges_and_curves().eval(), "relu1:3", size=32, steps=4, seed=2,
                       progress=False)
    assert not facts["dead"]
    assert files["fv.png"] == png_bytes(direct.images[0])
    other = fv.render(fv.models.toy.edges_and_curves().eval(), "relu1:3", size=32, steps=4, seed=0,
                      progress=False)
    assert files["fv.png"] != png_bytes(other.images[0])   # the seed in the settings reached the render
