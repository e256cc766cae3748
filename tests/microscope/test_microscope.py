"""featviz.microscope: pages, connections against the toy model's wiring, resumable atomic builds."""
import json
import re

import pytest
import torch
from microscope_helpers import TOY_LAYERS, TOY_SETTINGS, build_toy, file_hashes, toy_model, toy_site
from torch import nn

import featviz as fv
from featviz.microscope import MicroscopeSettings, _channel, _store, build_microscope


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return toy_site(tmp_path_factory)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """A build interrupted (KeyboardInterrupt) after 3 channels, then rerun; records what each computed."""
    out = tmp_path_factory.mktemp("resumed")
    original, runs = _channel.ChannelWorker.compute, {"first": [], "rerun": []}
    mp = pytest.MonkeyPatch()

    def interrupting(self, layer, c, early, parts, *rest):
        if len(runs["first"]) == 3:
            raise KeyboardInterrupt
        runs["first"].append((layer, c))
        return original(self, layer, c, early, parts, *rest)

    mp.setattr(_channel.ChannelWorker, "compute", interrupting)
    with pytest.raises(KeyboardInterrupt):
        build_toy(out)
    data = out / "data"
    runs["after_interrupt"] = sorted(str(p.relative_to(data)) for p in data.rglob("*")
                                     if p.is_dir() and not str(p.relative_to(data)).startswith("_"))
    runs["index_after_interrupt"] = (out / "index.html").read_text()

    def recording(self, layer, c, early, parts, *rest):
        runs["rerun"].append((layer, c))
        return original(self, layer, c, early, parts, *rest)

    mp.setattr(_channel.ChannelWorker, "compute", recording)
    build_toy(out)
    mp.undo()
    return out, runs


def test_site_has_index_layer_and_channel_pages(site):
    pages = {str(p.relative_to(site)) for p in site.rglob("*.html")}
    expected = {"index.html", "layers/relu1.html", "layers/relu2.html"}
    expected |= {f"channels/relu1/{c}.html" for c in range(8)}
    expected |= {f"channels/relu2/{c}.html" for c in range(7)}
    assert pages == expected


def test_curve_page_links_to_its_wired_edge_inputs(site):
    truth = toy_model().ground_truth["conv2"]
    for k in range(4):  # the curve units each read exactly 4 edge units (toy.py's table)
        html = (site / "channels" / "relu2" / f"{k}.html").read_text()
        upstream = html.split("Strongest inputs from relu1")[1].split("</section>")[0]
        linked = {int(c) for c in re.findall(r'href="\.\./relu1/(\d+)\.html"', upstream)}
        assert linked == {src for src, *_ in truth[k]["inputs"]}


def test_edge_page_shows_tuning_curve_and_examples(site):
    html = (site / "channels" / "relu1" / "2.html").read_text()
    assert 'src="../../data/relu1/2/tuning.svg"' in html
    assert 'src="../../data/relu1/2/top0.jpg"' in html
    assert (site / "data/relu1/2/top0.jpg").read_bytes()[:2] == b"\xff\xd8"  # a JPEG


def test_manifest_records_settings_and_versions(site):
    manifest = json.loads((site / "manifest.json").read_text())
    assert manifest["settings"]["steps"] == TOY_SETTINGS.steps and manifest["settings"]["size"] == 32
    assert manifest["torch"] == torch.__version__ and manifest["featviz"] == fv.__version__
    assert [layer["name"] for layer in manifest["layers"]] == TOY_LAYERS


def test_interrupt_keeps_exactly_the_finished_channels(resumed):
    _, runs = resumed
    assert runs["after_interrupt"] == ["relu1", "relu1/0", "relu1/1", "relu1/2"]  # no temp folders either


def test_interrupt_leaves_a_browsable_index_of_the_finished_channels(resumed):
    _, runs = resumed
    html = runs["index_after_interrupt"]
    assert "interrupted" in html and "3 of 8 channels shown" in html and "0 of 7 channels shown" in html


def test_rerun_computes_only_the_missing_channels(resumed):
    _, runs = resumed
    everything = [(layer, c) for layer, n in (("relu1", 8), ("relu2", 7)) for c in range(n)]
    assert runs["rerun"] == everything[3:]


def test_resumed_build_equals_uninterrupted_build(resumed, site):
    out, _ = resumed
    assert file_hashes(out) == file_hashes(site)


def test_changed_steps_recompute_the_renders_of_every_channel(tmp_path, monkeypatch):
    model = toy_model()
    build_microscope(model, ["relu2"], tmp_path, settings=MicroscopeSettings(size=16, steps=2, examples=0,
                                                                             evidence=False),
                     channels=2, progress=False)
    calls = []
    original = _channel.ChannelWorker.compute
    monkeypatch.setattr(_channel.ChannelWorker, "compute", lambda s, *a: calls.append(a) or original(s, *a))
    build_microscope(model, ["relu2"], tmp_path, settings=MicroscopeSettings(size=16, steps=3, examples=0,
                                                                             evidence=False),
                     channels=2, progress=False)
    assert [(job[1], job[3]) for job in calls] == [(0, ("fv", "diversity")), (1, ("fv", "diversity"))]
    assert json.loads((tmp_path / "manifest.json").read_text())["settings"]["steps"] == 3


def test_interrupted_unit_write_leaves_no_trace(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_store.json, "dumps", boom)  # after the files, before meta.json and the rename
    with pytest.raises(KeyboardInterrupt):
        _store.write_unit(tmp_path / "unit", {"a.png": b"x"}, {"key": "k"})
    assert list(tmp_path.iterdir()) == []


def test_weights_hash_sees_one_changed_weight():
    a = nn.Conv2d(3, 4, 3)
    before = _store.weights_hash(a)
    with torch.no_grad():
        a.weight[2, 1, 0, 0] += 1e-6
    assert _store.weights_hash(a) != before


def test_layer_names_are_escaped_in_pages(tmp_path):
    model = nn.Sequential()
    model.add_module("x<b>&", nn.Conv2d(3, 2, 3, padding=1))
    model.input_size = 16
    settings = MicroscopeSettings(size=16, steps=2, examples=0, diversity=0, tuning_angles=(), evidence=False)
    index = build_microscope(model, ["x<b>&"], tmp_path, settings=settings, progress=False)
    html = index.read_text()
    assert "x&lt;b&gt;&amp;" in html and "x<b>" not in html


def test_unknown_layer_names_the_closest(tmp_path):
    with pytest.raises(KeyError, match="relu2"):
        build_microscope(toy_model(), ["relu3"], tmp_path, progress=False)


@pytest.mark.slow
def test_sigkilled_cli_build_resumes_to_the_same_files(tmp_path, tmp_path_factory):
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "featviz.cli", "--quiet", "--threads", "1", "microscope", "edges_and_curves",
           "--layers", ",".join(TOY_LAYERS), "--size", "32", "--steps", "4", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd)
    while proc.poll() is None and len(list(tmp_path.glob("data/*/*/meta.json"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no cleanup at all: half-written temp folders may stay behind
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and len(list(tmp_path.glob("data/*/*/meta.json"))) < 15
    build_toy(tmp_path)
    assert file_hashes(tmp_path) == file_hashes(toy_site(tmp_path_factory))
