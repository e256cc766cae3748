"""The edge finder's calibrated defaults on planted edge units and decoys; criteria objects and edge_scan."""
import pytest
from circuit_models import edge_calibration_net

from featviz.circuits import EdgeCriteria, edge_scan, find_edge_detectors


@pytest.fixture(scope="module")
def planted():
    net, labels = edge_calibration_net()
    return net, labels, edge_scan(net, "1", size=64)


def test_default_criteria_name_every_odd_gabor_and_no_bar_blob_or_luminance_unit(planted):
    _, labels, scan = planted
    named = {int(e.node.rsplit(":", 1)[1]) for e in scan.detectors()}
    assert named == {i for i, edge in enumerate(labels) if edge}


def test_step_edges_are_what_rejects_bar_detectors(planted):
    net, labels, scan = planted
    bars = {i for i in range(32, 48)}                      # even Gabors: oriented, but polarity-blind
    gratings = edge_scan(net, "1", size=64, step_edges=False)
    gratings_only = {int(e.node.rsplit(":", 1)[1]) for e in gratings.detectors()}
    assert bars & gratings_only and not bars & {int(e.node.rsplit(":", 1)[1]) for e in scan.detectors()}


def test_find_edge_detectors_is_edge_scan_with_criteria(planted):
    net, _, scan = planted
    strict = EdgeCriteria(min_osi=0.5)
    direct = find_edge_detectors(net, "1", size=64, criteria=strict)
    assert [e.node for e in direct] == [e.node for e in scan.detectors(strict)]
    assert [e.node for e in find_edge_detectors(net, "1", size=64, min_osi=0.5)] == [e.node for e in direct]
