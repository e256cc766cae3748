"""Tuning curves peak at planted angles; edge detectors are found in the wired and the pretrained model."""
import pytest
import torch
from circuit_models import ANGLES

import featviz as fv
from featviz.circuits import find_edge_detectors, tuning_curve

STEP = 7.5


def angle_gap(a, b):
    return min(abs(a - b) % 180, 180 - abs(a - b) % 180)


def test_each_layer1_channel_peaks_at_its_planted_angle(wired):
    angles = torch.arange(0, 180, STEP).tolist()
    stimuli = fv.data.gratings(angles, size=32, phases=[0, 90, 180, 270])
    for k, planted in enumerate(ANGLES):
        tc = tuning_curve(wired, f"relu1:{k}", stimuli, angles, position="mean")
        assert angle_gap(tc.peak, planted) <= STEP


def test_find_edge_detectors_finds_every_planted_detector(wired):
    found = {e.node: e.angle for e in find_edge_detectors(wired, "relu1", size=32, step=STEP)}
    assert set(found) == {f"relu1:{k}" for k in range(8)}
    assert all(angle_gap(found[f"relu1:{k}"], a) <= STEP for k, a in enumerate(ANGLES))


def test_stimuli_that_do_not_split_into_angles_are_refused(wired):
    with pytest.raises(ValueError, match="do not split"):
        tuning_curve(wired, "relu1:0", fv.data.gratings([0, 45, 90], size=16), angles=[0, 45])


def test_effnet_early_layer_has_orientation_tuned_channels(effnet):
    found = find_edge_detectors(effnet, "blocks.1.depthwise_relu")
    assert len(found) >= 3
    for e in found[:3]:  # an independent sweep: preferred vs orthogonal gratings, phases averaged
        stim = fv.data.gratings([e.angle, e.angle + 90], size=64, freq=e.freq, phases=range(0, 360, 45))
        tc = tuning_curve(effnet, e.node, stim, angles=[e.angle, e.angle + 90])
        assert tc.responses[0] > 2 * tc.responses[1]


def test_stimuli_are_placed_at_the_receptive_field_centre(effnet):
    import functools

    angles = list(range(0, 360, 30))
    make = functools.partial(fv.data.edges, angles, size=64)
    tc = tuning_curve(effnet, "blocks.1.depthwise_relu:5", make, angles)
    assert tc.center == fv.circuits.receptive_field(effnet, "blocks.1.depthwise_relu:5", size=64).center
    assert tc.center == (35.0, 35.0)  # 3.5 px below and right of the image centre (TF "SAME")
    # the same numbers as placing the images by hand at that centre
    placed = fv.data.edges(angles, size=64, center=(35, 35))
    by_hand = tuning_curve(effnet, "blocks.1.depthwise_relu:5", placed, angles)
    torch.testing.assert_close(tc.responses, by_hand.responses)
    at_image = tuning_curve(effnet, "blocks.1.depthwise_relu:5", make, angles, at="image")
    assert at_image.center == (31.5, 31.5) and not torch.allclose(at_image.responses, tc.responses)


def test_shifts_measure_how_far_the_preference_moves(wired):
    import functools

    angles = list(range(0, 360, 15))
    toy = fv.models.toy.edges_and_curves()  # relu1:2 is an odd Gabor for edges at 90 degrees
    edge = tuning_curve(toy, "relu1:2", functools.partial(fv.data.edges, angles, size=32), angles, shifts=2)
    assert len(edge.shifts) == 4 and edge.shifted.shape == (4, len(angles))
    assert edge.period == 360 and abs(edge.preferred - 90) < 1
    assert edge.drift < 10  # an edge moved along or across keeps its direction
    with pytest.raises(ValueError, match="stimulus function"):
        tuning_curve(wired, "relu1:2", fv.data.edges(angles, size=32), angles, shifts=2)
    with pytest.raises(ValueError, match="angles="):
        tuning_curve(wired, "relu1:2", functools.partial(fv.data.edges, angles, size=32))


def test_edge_rule_separates_trained_from_randomized(effnet):
    counts = fv.circuits.control_counts(effnet, "blocks.1.depthwise_relu", find_edge_detectors)
    assert counts.trained >= 2 * max(counts.randomized), str(counts)
    found = counts.found
    assert all(e.edge_selectivity >= 0.5 and 0 <= e.edge_direction < 360 for e in found)
    # the grating orientation and the step-edge direction agree (both the edge's gradient, mod 180)
    agree = [angle_gap(e.angle, e.edge_direction % 180) <= 30 for e in found]
    assert sum(agree) >= 0.8 * len(found)
