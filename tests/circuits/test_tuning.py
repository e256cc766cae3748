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
