"""featviz.microscope's evidence part (fv.circuits.evidence on each channel page, sharing one curve scan
per layer and the site's own feature visualization) and its RF-centred tuning part, on a tiny two-conv net."""
import functools
import html
import json

import pytest
from microscope_helpers import EVIDENCE_SETTINGS, evidence_net

import featviz as fv
from featviz.microscope import MicroscopeSettings, _channel, _evidence, _examples, build_microscope
from featviz.microscope._examples import bundled_photos

SETTINGS = EVIDENCE_SETTINGS


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("evidence_site")
    build_microscope(evidence_net(), ["1", "3"], out, settings=SETTINGS, channels=2, progress=False)
    return out


def facts(site, layer, c):
    return json.loads((site / "data" / layer / str(c) / "meta.json").read_text())["parts"]["evidence"]


def test_the_evidence_section_quotes_fv_circuits_evidence(site):
    net = evidence_net()
    scan = fv.circuits.curve_scan(net, "3")
    rnd = fv.circuits.curve_scan(fv.models.randomized(net, seed=0), "3", scan.size, radii=scan.radii,
                                 shift=scan.shifts[1][0], width=scan.width)
    images, _ = _evidence.evidence_photos(bundled_photos(32), 4)
    ev = fv.circuits.evidence(net, "3:1", images, upstream="1", scan=scan, random_scan=rnd, render=False,
                              n_random=3).to_dict()
    stored = facts(site, "3", 1)["facts"]["evidence"]
    for key in ("selectivity", "curve_tests", "step_edges"):
        assert stored[key] == pytest.approx(ev[key], nan_ok=True), key
    assert stored["upstream"] == json.loads(json.dumps(ev["upstream"]))
    assert stored["ablation"]["z"] == pytest.approx(ev["ablation"]["z"])
    page = html.unescape((site / "channels" / "3" / "1.html").read_text())
    assert "<h2>Evidence</h2>" in page and 'src="../../data/3/1/evidence0.svg"' in page
    for sentence in ev["verdict"]:  # every sentence of evidence(), plus the one on the site's own render
        assert sentence in page
    activation = json.loads((site / "data" / "3" / "1" / "meta.json").read_text())["parts"]["fv"]["facts"]
    assert f"reaches {activation['activation']:.2f}" in page or "found no response" in page
    assert f"rank in its layer</th><td>{ev['selectivity']['rank']} of 6" in page


def test_a_changed_evidence_setting_recomputes_only_the_evidence(site, monkeypatch):
    fv_png = (site / "data" / "3" / "0" / "fv.png").read_bytes()
    calls = []
    original = _channel.ChannelWorker.compute
    monkeypatch.setattr(_channel.ChannelWorker, "compute",
                        lambda s, *a: calls.append(a[3]) or original(s, *a))
    monkeypatch.setattr(_evidence, "curve_scan", lambda *a, **k: pytest.fail("scanned again"))
    more = MicroscopeSettings(**{**SETTINGS.__dict__, "evidence_random": 4})
    build_microscope(evidence_net(), ["1", "3"], site, settings=more, channels=2, progress=False)
    assert calls and set(calls) == {("evidence",)}
    assert (site / "data" / "3" / "0" / "fv.png").read_bytes() == fv_png
    stored = facts(site, "3", 0)["facts"]["evidence"]
    assert stored["ablation"]["n_random"] == 4 and "feature visualization" in " ".join(stored["verdict"])


def test_no_evidence_builds_pages_without_the_section(tmp_path):
    off = MicroscopeSettings(**{**SETTINGS.__dict__, "evidence": False})
    build_microscope(evidence_net(), ["1"], tmp_path, settings=off, channels=1, progress=False)
    assert "<h2>Evidence</h2>" not in (tmp_path / "channels" / "1" / "0.html").read_text()
    assert not (tmp_path / "data" / "_evidence").exists()


def test_tuning_gratings_are_centred_on_the_receptive_field(monkeypatch):
    net, centres = evidence_net(), []
    original = fv.data.gratings
    monkeypatch.setattr(_examples, "gratings",  # where the microscope's tuning part looks it up
                        lambda *a, **k: centres.append(k.get("center")) or original(*a, **k))
    worker = _channel.ChannelWorker(net, MicroscopeSettings(size=16, steps=2, tuning_angles=(0, 90)))
    files, found = worker.compute("1", 2, True, ("tuning",))
    rf = fv.circuits.receptive_field(net, "1:2", size=32)
    assert rf.center != (15.5, 15.5)  # off the image centre: a centred grating would be in the wrong place
    assert centres == [rf.center] and tuple(found["tuning"]["center"]) == rf.center
    make = functools.partial(original, [0, 90], size=32, phases=[0, 90, 180, 270])
    expected = fv.circuits.tuning_curve(net, "1:2", make, [0, 90])  # the one-channel tool, at the RF centre
    assert found["tuning"]["response"] == pytest.approx(expected.responses.tolist(), abs=1e-5)
    assert files["tuning.svg"].lstrip().startswith(b"<?xml") and b"<svg" in files["tuning.svg"]


def test_curve_scans_come_per_layer_as_its_first_channel_needs_them_and_are_reused(tmp_path, monkeypatch):
    events = []
    scan, rand, compute = _evidence.curve_scan, _evidence.randomized, _channel.ChannelWorker.compute

    def scanning(model, layer, *a, **k):
        events.append(("scan", layer))
        return scan(model, layer, *a, **k)

    def randomizing(*a, **k):
        events.append(("randomized",))
        return rand(*a, **k)

    def computing(self, layer, c, *a):
        events.append(("channel", layer, c))
        return compute(self, layer, c, *a)

    monkeypatch.setattr(_evidence, "curve_scan", scanning)
    monkeypatch.setattr(_evidence, "randomized", randomizing)
    monkeypatch.setattr(_channel.ChannelWorker, "compute", computing)
    build_microscope(evidence_net(), ["1", "3"], tmp_path, settings=SETTINGS, channels=1, progress=False)
    # layer 1's channel is computed before layer 3 is scanned; each layer scanned once in the model and once
    # in the randomized net, which is made once for the build
    assert events.index(("channel", "1", 0)) < events.index(("scan", "3"))
    assert events.count(("scan", "1")) == 2 and events.count(("scan", "3")) == 2
    assert events.count(("randomized",)) == 1
    events.clear()
    build_microscope(evidence_net(), ["1", "3"], tmp_path, settings=SETTINGS, channels=2, progress=False)
    assert ("channel", "3", 1) in events and ("channel", "1", 1) in events  # the new channels' evidence ...
    assert not [e for e in events if e[0] != "channel"]  # ... from the cached scans: no scan, no random net
    assert "selectivity" in facts(tmp_path, "3", 1)["facts"]["evidence"]


def test_a_site_whose_upstream_layer_is_not_built_names_its_inputs_without_links(tmp_path):
    # the evidence of layer "3" credits layer "1", which this site does not hold: the page names the inputs
    # ("1:k", no class label, no link) instead of failing to label them
    build_microscope(evidence_net(), ["3"], tmp_path, settings=SETTINGS, channels=1, progress=False)
    up = facts(tmp_path, "3", 0)["facts"]["evidence"]["upstream"]
    assert up["layer"] == "1" and up["excitatory"]
    page = html.unescape((tmp_path / "channels" / "3" / "0.html").read_text())
    for c, _ in up["excitatory"]:
        assert f"1:{c}" in page
    assert 'href="../1/' not in page and not (tmp_path / "channels" / "1").exists()
