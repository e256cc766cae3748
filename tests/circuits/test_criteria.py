"""Finder criteria: one frozen base for CurveCriteria and EdgeCriteria; old keyword thresholds override."""
import dataclasses

import pytest

import featviz as fv
from featviz.circuits import CurveCriteria, EdgeCriteria, edge_scan, find_curve_detectors, find_edge_detectors


def test_both_criteria_share_one_frozen_base_with_replace_and_to_dict():
    for crit in (CurveCriteria(), EdgeCriteria()):
        with pytest.raises(dataclasses.FrozenInstanceError):
            crit.min_response = 0.5
        changed = crit.replace(min_response=0.5, **{next(iter(crit.to_dict())): None})  # None: unchanged
        assert changed.min_response == 0.5 and crit.min_response == 0.1
        assert {k: v for k, v in changed.to_dict().items() if k != "min_response"} == \
               {k: v for k, v in crit.to_dict().items() if k != "min_response"}
    assert type(CurveCriteria()).replace is type(EdgeCriteria()).replace  # one implementation


def test_an_unknown_threshold_is_named_with_the_ones_there_are():
    with pytest.raises(TypeError, match="no threshold min_osi.*min_curve_vs_line"):
        CurveCriteria().replace(min_osi=0.3)
    with pytest.raises(TypeError, match="no threshold min_osy"):  # fails before any scan runs
        find_edge_detectors(fv.models.toy.edges_and_curves(), "relu1", min_osy=0.3)
    with pytest.raises(TypeError, match="must be a CurveCriteria"):
        find_curve_detectors(fv.models.toy.edges_and_curves(), "relu2", criteria=EdgeCriteria())


def test_old_keyword_thresholds_override_the_criteria_object(wired):
    scan = edge_scan(wired, "relu1", size=32)
    strict = EdgeCriteria(min_osi=0.99, min_edge_selectivity=0.99)
    loose = [d.node for d in scan.detectors()]
    assert [d.node for d in scan.detectors(strict)] == [] and len(loose) == 8
    assert [d.node for d in scan.detectors(strict, min_osi=0.2, min_edge_selectivity=0.5)] == loose
    by_keyword = find_edge_detectors(wired, "relu1", size=32, min_osi=0.99)
    by_object = find_edge_detectors(wired, "relu1", size=32, criteria=EdgeCriteria(min_osi=0.99))
    assert [d.node for d in by_keyword] == [d.node for d in by_object] == []
