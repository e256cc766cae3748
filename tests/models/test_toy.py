"""The toy network's documented wiring is its weights, and its units prefer the documented stimuli."""
import re

import pytest
import torch

import featviz as fv
from featviz.models import toy


@pytest.fixture(scope="module")
def model():
    return fv.models.toy.edges_and_curves()


def test_docstring_table_equals_conv2_weights(model):
    row = r"^(\d)\s{4}.+?\s{2,}((?:\(-?\d, -?\d, -?\d, -?\d\)(?:, )?)+)$"  # k, name, inputs
    rows = re.findall(row, toy.__doc__, flags=re.M)
    assert len(rows) == 7
    expected = torch.zeros(7, 8, 9, 9)
    for k, inputs in rows:
        for c, dr, dc, w in re.findall(r"\((-?\d), (-?\d), (-?\d), (-?\d)\)", inputs):
            expected[int(k), int(c), 4 + int(dr), 4 + int(dc)] = float(w)
    torch.testing.assert_close(model.conv2.weight.detach(), expected)
    assert (model.conv2.bias == -1).all()


def test_ground_truth_dict_equals_conv2_weights(model):
    rebuilt = torch.zeros_like(model.conv2.weight)
    for k, unit in enumerate(model.ground_truth["conv2"]):
        for c, dr, dc, w in unit["inputs"]:
            rebuilt[k, c, 4 + dr, 4 + dc] = w
    torch.testing.assert_close(model.conv2.weight.detach(), rebuilt)


def test_edge_units_prefer_edges_at_their_documented_angle(model):
    angles = list(range(0, 360, 5))
    with torch.no_grad():
        response = model.relu1(model.conv1(fv.data.edges(angles)))[:, :, 32, 32]  # (angles, 8)
    preferred = [angles[i] for i in response.argmax(dim=0)]
    assert preferred == [unit["angle"] for unit in model.ground_truth["conv1"]]


def test_edge_units_prefer_gratings_along_their_angle(model):
    angles, phases = list(range(0, 180, 5)), list(range(0, 360, 15))
    stimuli = fv.data.gratings(angles, phases=phases)  # angle-major
    with torch.no_grad():
        response = model.relu1(model.conv1(stimuli))[:, :, 32, 32]
    best_over_phase = response.view(len(angles), len(phases), 8).amax(dim=1)  # (angles, 8)
    preferred = [angles[i] for i in best_over_phase.argmax(dim=0)]
    assert preferred == [unit["angle"] % 180 for unit in model.ground_truth["conv1"]]


def test_edge_units_ignore_a_uniform_image(model):
    with torch.no_grad():
        assert model.relu1(model.conv1(torch.full((1, 3, 16, 16), 0.7)))[..., 3:-3, 3:-3].abs().max() < 1e-5


def test_curve_units_prefer_curves_bulging_toward_their_angle(model):
    angles = list(range(0, 360, 15))
    stimuli = fv.data.curves(angles, curvatures=[8], size=64, length=0.2)  # radius 8 px
    with torch.no_grad():
        response = model(stimuli)[:, :4, 24:41, 24:41].amax(dim=(2, 3))  # (angles, 4 curve units)
    for k in range(4):
        angle = model.ground_truth["conv2"][k]["angle"]
        assert angles[response[:, k].argmax()] == angle
        assert response[angles.index(angle), k] > 4 * response[angles.index((angle + 180) % 360), k]


def test_corner_unit_fires_on_its_corner_only(model):
    quadrants = torch.zeros(2, 3, 64, 64)
    quadrants[0, :, :32, 32:] = 1.0  # bright region up-right of the centre: corner └
    quadrants[1, :, 32:, :32] = 1.0  # bright region down-left: corner ┐
    with torch.no_grad():
        response = model(quadrants)[:, 4:6, 28:37, 28:37].amax(dim=(2, 3))
    assert response[0, 0] > 0.5 and response[1, 1] > 0.5
    assert response[0, 1] < 0.05 and response[1, 0] < 0.05
