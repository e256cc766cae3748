"""trace finds the planted edges; Circuit round-trips JSON."""
import pytest
import torch
from circuit_models import WIRING

from featviz.circuits import Circuit, ablation_effect, attribute, trace, tuning_curve


def wired_edges(o):
    return {(f"relu1:{c}", f"relu2:{o}") for c, _, _ in WIRING[o]}


def test_trace_by_expanded_weights_finds_exactly_the_wiring(wired):
    for o in WIRING:
        c = trace(wired, f"relu2:{o}", depth=1, top_k=2, size=32, progress=False)
        assert {(e.src, e.dst) for e in c.edges} == wired_edges(o)
        assert all(e.strength > 0 for e in c.edges)


def test_trace_by_attribution_finds_exactly_the_wiring(wired, noise):
    c = trace(wired, "relu2:2", depth=1, top_k=2, by="attribution", images=noise, size=32, progress=False)
    assert {(e.src, e.dst) for e in c.edges} == wired_edges(2)


def test_trace_edge_pattern_shows_the_planted_offset(wired):
    c = trace(wired, "relu2:1", depth=1, top_k=2, size=32, progress=False)
    for e in c.edges:
        (_, (u, v), _), = [link for link in WIRING[1] if f"relu1:{link[0]}" == e.src]
        assert divmod(int(e.pattern.abs().argmax()), 5) == (u, v)


def test_trace_depth_two_reaches_layer_one_only_through_wired_edges(wired):
    c = trace(wired, "relu3:0", depth=2, top_k=2, size=32, progress=False)
    deep = [e for e in c.edges if e.src.startswith("relu1:")]
    assert deep and all((e.src, e.dst) in wired_edges(int(e.dst.split(":")[1])) for e in deep)


def test_circuit_json_round_trip(wired):
    c = trace(wired, "relu2:0", depth=1, top_k=2, size=32, progress=False)
    back = Circuit.from_json(c.to_json())
    assert back.nodes == c.nodes and [(e.src, e.dst, e.strength) for e in back.edges] == \
        [(e.src, e.dst, e.strength) for e in c.edges]
    assert all(torch.allclose(a.pattern, b.pattern) for a, b in zip(back.edges, c.edges))


def test_ablating_a_wired_source_drops_dst_and_an_unwired_one_does_not(wired, noise):
    drop_wired = ablation_effect(wired, "relu1:2", "relu2:1", noise)
    drop_unwired = ablation_effect(wired, "relu1:0,3,4", "relu2:1", noise)
    assert drop_wired > 0.2 * ablation_effect(wired, "relu1:2,6", "relu2:1", noise) > 0
    assert drop_unwired == 0.0


def test_effnet_traced_upstream_nodes_are_confirmed_by_ablation(effnet, photos):
    x = photos[0][:3]
    c = trace(effnet, "blocks.4:0", depth=1, top_k=3, by="attribution", images=x, progress=False)
    contrib = attribute(effnet, "blocks.2", "blocks.4", x, dst_channels=[0])[0]
    weakest = contrib.abs().argsort()[:3].tolist()
    control = max(abs(ablation_effect(effnet, f"blocks.2:{k}", "blocks.4:0", x)) for k in weakest)
    for e in c.upstream("blocks.4:0"):
        effect = ablation_effect(effnet, e.src, "blocks.4:0", x)
        assert effect * e.strength > 0 and abs(effect) > 2 * control


def test_no_hooks_are_left_behind_even_after_an_error(wired, noise):
    trace(wired, "relu3:0", depth=2, top_k=2, by="attribution", images=noise, size=32, progress=False)
    with pytest.raises(IndexError):
        attribute(wired, "relu1", "relu2", noise, dst_channels=[9])
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in wired.modules())
    assert wired.relu2.inplace  # turned off while linearising, restored after


def test_old_images_keywords_warn_and_give_the_same_result(wired, noise):
    kw = {"depth": 1, "top_k": 2, "by": "attribution", "size": 32, "progress": False}
    new = trace(wired, "relu2:2", images=noise, **kw)
    with pytest.warns(DeprecationWarning, match=r"trace\(inputs=...\) is deprecated: the keyword is images="):
        old = trace(wired, "relu2:2", inputs=noise, **kw)
    assert old.to_dict() == new.to_dict()
    with pytest.raises(TypeError, match="both images= and its old name inputs="):
        trace(wired, "relu2:2", by="attribution", images=noise, inputs=noise)
    with pytest.warns(DeprecationWarning, match="stimuli"):
        old_curve = tuning_curve(wired, "relu1:0", stimuli=noise[:2], angles=[0, 90])
    assert torch.equal(old_curve.responses, tuning_curve(wired, "relu1:0", noise[:2], [0, 90]).responses)
