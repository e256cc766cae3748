"""featviz.microscope as plan -> compute -> publish: the plan renders nothing and knows what is cached;
the three steps write what build_microscope writes."""
import dataclasses

import pytest
from microscope_helpers import TOY_LAYERS, TOY_SETTINGS, file_hashes, toy_model, toy_site

from featviz.microscope import Execution, compute, plan, publish


def test_the_three_steps_write_the_same_files_as_build_microscope(tmp_path, tmp_path_factory):
    model = toy_model()
    p = plan(model, TOY_LAYERS, tmp_path, settings=TOY_SETTINGS)
    results = compute(model, p, Execution(progress=False))
    assert publish(p, results) == tmp_path / "index.html"
    assert file_hashes(tmp_path) == file_hashes(toy_site(tmp_path_factory))


def test_the_plan_writes_nothing_and_says_what_is_missing(tmp_path, tmp_path_factory):
    model, out = toy_model(), tmp_path / "new"
    p = plan(model, TOY_LAYERS, out, settings=TOY_SETTINGS, channels=3)
    assert not out.exists()  # no folder, no lock, no marker: nothing written
    assert p.channels == {"relu1": [0, 1, 2], "relu2": [0, 1, 2]} and p.cached == 0
    for (layer, c), parts in p.missing.items():  # every part the settings ask for, nothing else
        assert set(parts) == set(TOY_SETTINGS.parts(p.early[layer])), (layer, c)
    assert len(p.missing) == 6

    site = toy_site(tmp_path_factory)  # every channel of both layers built with TOY_SETTINGS
    done = plan(model, TOY_LAYERS, site, settings=TOY_SETTINGS)
    assert done.missing == {} and done.cached == 8 + 7
    fewer = dataclasses.replace(TOY_SETTINGS, examples=TOY_SETTINGS.examples - 1)
    changed = plan(model, TOY_LAYERS, site, settings=fewer)
    assert set(changed.missing.values()) == {("examples",)} and len(changed.missing) == 8 + 7


def test_compute_renders_only_what_the_plan_lists(tmp_path, monkeypatch):
    from featviz.microscope import _channel

    model, calls = toy_model(), []
    real = _channel.ChannelWorker.compute

    def counting(self, layer, c, *args):
        calls.append((layer, c))
        return real(self, layer, c, *args)

    monkeypatch.setattr(_channel.ChannelWorker, "compute", counting)
    first = plan(model, ["relu1"], tmp_path, settings=TOY_SETTINGS, channels=2)
    publish(first, compute(model, first, Execution(progress=False)))
    assert sorted(calls) == [("relu1", 0), ("relu1", 1)]  # the built channels (one layer: no partners) ...
    calls.clear()
    again = plan(model, ["relu1"], tmp_path, settings=TOY_SETTINGS, channels=2)
    assert again.missing == {}
    compute(model, again, Execution(progress=False))
    assert calls == []  # ... and nothing on a rerun


def test_bad_execution_knobs_are_refused():
    with pytest.raises(ValueError, match="workers"):
        Execution(workers=0)


def test_the_progress_bar_counts_connection_partners_apart_with_the_reason(tmp_path, monkeypatch):
    from featviz.microscope import _build

    descs, totals = [], {}

    class Bar:  # records what the channel bar says and its total; counts nothing
        def __init__(self, iterable=None, *, desc=None, total=None, **kwargs):
            descs.append(desc)
            totals[desc] = total
            self.iterable = iterable

        def __iter__(self):
            return iter(self.iterable or ())

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n=1):
            pass

    monkeypatch.setattr(_build, "tqdm", Bar)
    model = toy_model()
    p = plan(model, TOY_LAYERS, tmp_path, settings=TOY_SETTINGS, channels=2)
    results = compute(model, p, Execution(progress=False))
    partners = sum(len(cs) for cs in results.extra.values())
    assert partners > 0  # the toy's connections point outside the first 2 channels of each layer
    assert sorted(results.keys) == sorted({(n, c) for n in TOY_LAYERS for c in range(2)}
                                          | {(n, c) for n, cs in results.extra.items() for c in cs})
    bar = next(d for d in descs if d and "requested" in d)
    assert f"4 requested + {partners} partner" in bar and "link to" in bar, bar
    assert "no render, not counted in this bar" in bar and totals[bar] == 4  # partners are not render jobs
    assert any(d and f"{partners} partner pages (dataset examples only, no render)" in d for d in descs)
    descs.clear()
    opt_in = dataclasses.replace(TOY_SETTINGS, partner_renders=True)
    p = plan(model, TOY_LAYERS, tmp_path / "opt_in", settings=opt_in, channels=2)
    compute(model, p, Execution(progress=False))
    bar = next(d for d in descs if d and "requested" in d)
    assert f"4 requested + {partners} partner" in bar and "a feature visualization each" in bar, bar
    assert totals[bar] == 4 + partners  # with partner renders, every partner is a channel job
    descs.clear()
    one = plan(model, ["relu1"], tmp_path / "one", settings=TOY_SETTINGS, channels=2)
    compute(model, one, Execution(progress=False))  # one layer: no connections, no partners
    assert any(d and d.endswith(": 2 channels") for d in descs), descs
