"""Every circuits/explain result: to_dict() (JSON-ready), summary() -> str, _repr_png_ where it draws."""
import json

import pytest
import torch
from torch import nn

import featviz as fv
from featviz.circuits import AblationTest, Circuit, Edge, TuningCurve
from featviz.circuits.universality import Family, LayerFamilies


def roundtrip(result) -> dict:
    d = result.to_dict()
    text = json.dumps(d, sort_keys=True)  # plain numbers (NaN allowed), strings, lists
    assert json.dumps(json.loads(text), sort_keys=True) == text
    return d


def is_png(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_drawn_results_show_as_png_and_summarise_as_one_string():
    test = AblationTest("a:1", "b:0", 2.0, 1.0, -0.5, torch.tensor([0.0, -0.1, 0.1]),
                        torch.tensor([[0], [2], [3]]))
    curve = TuningCurve("a:0", torch.arange(0.0, 180, 15), torch.linspace(0, 1, 12), torch.rand(12, 2))
    circuit = Circuit("b:0", ["b:0", "a:1"], [Edge("a:1", "b:0", -0.5, torch.ones(3, 3))], "weights")
    fams = LayerFamilies("1", 4, [Family("edge", "edge 0°", "1", [0, 1])], {"edge 0°": [1]}, (0,))
    for result in (test, curve, circuit, fams):
        assert isinstance(result.summary(), str) and is_png(result._repr_png_())
    assert roundtrip(curve)["preferred"] == pytest.approx(curve.preferred)
    assert "a:1 (-0.5)" in circuit.summary() and roundtrip(circuit) == json.loads(circuit.to_json())
    assert roundtrip(fams)["families"] == [{"kind": "edge", "label": "edge 0°", "channels": [0, 1]}]
    assert "edge 0° 2 (random ≤ 1)" in fams.summary()


def test_scans_and_matches_follow_the_protocol(wired, noise):
    ex = fv.circuits.dataset_examples(wired, "relu2:0", noise, k=2, progress=False)
    d = roundtrip(ex)
    assert d["scores"] == [float(s) for s in ex.scores] and is_png(ex._repr_png_())
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    match = fv.circuits.match_units(net, "1", net, "1", noise, seeds=(0,), progress=False)
    assert roundtrip(match)["best"] == [0, 1, 2, 3] and "4 units" in match.summary()  # a net matches itself
    counts = fv.circuits.ControlCount("find", "relu1", 8, [1, 2])
    assert roundtrip(counts)["summary"] == counts.summary() == str(counts)


def test_curve_scan_summary_is_a_sentence_and_the_dict_moved_to_stats():
    scan = fv.circuits.curve_scan(fv.models.toy.edges_and_curves(), "relu2", size=32, radii=[4], shift=1)
    assert isinstance(scan.summary(), str) and "relu2: 7 channels" in scan.summary()
    with pytest.warns(DeprecationWarning, match="stats"):
        old = scan.summary(1)
    assert json.dumps(old) == json.dumps(scan.stats(1)) and len(roundtrip(scan)["channels"]) == 7


def test_explanation_summary_and_dict_compute_nothing():
    ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:0")
    d = roundtrip(ex)
    assert d["target"]["ref"] == "relu2:0" and ex._cache == {}  # no attribution was run for them
    assert "relu2:0" in ex.summary() or ex.target.label in ex.summary()
