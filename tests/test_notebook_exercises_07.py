"""Exercise checks of notebook 07 (notebooks/checks.py): each accepts the reference solution
(notebooks/solutions.py) and rejects a plausible wrong answer with a message that says what is wrong."""
from __future__ import annotations

import pytest
import torch
from exercise_helpers import load, rejects

import featviz as fv

_load, _rejects = load, rejects


def test_top_channels_accepts_the_solution_and_rejects_usual_mistakes(C, S):
    C.check_top_channels(S.top_channels)
    _rejects(C.check_top_channels, lambda a, k: a.topk(k, dim=0).indices, match="permute")
    _rejects(C.check_top_channels, lambda a, k: a.topk(k, dim=0).values.permute(1, 2, 0), match="INDICES")
    _rejects(C.check_top_channels, lambda a, k: a.topk(k, dim=0, largest=False).indices.permute(1, 2, 0),
             match="WEAKEST")
    _rejects(C.check_top_channels, lambda a, k: a.argsort(dim=0)[-k:].permute(1, 2, 0), match="wrong order")


def test_box_share_accepts_the_solution_and_rejects_usual_mistakes(C, S):
    C.check_box_share(S.box_share)

    def absolute(m, box):
        t, l, b, r = box
        return float(m.abs()[t:b, l:r].sum() / m.abs().sum())

    def signed(m, box):
        t, l, b, r = box
        return float(m[t:b, l:r].sum() / m.sum())

    def inclusive(m, box):
        t, l, b, r = box
        p = m.clamp(min=0)
        return float(p[t:b + 1, l:r + 1].sum() / p.sum())

    def unnormalised(m, box):
        t, l, b, r = box
        return float(m.clamp(min=0)[t:b, l:r].sum())

    _rejects(C.check_box_share, absolute, match="positive part")
    _rejects(C.check_box_share, signed, match="clamp")
    _rejects(C.check_box_share, inclusive, match="EXCLUSIVE")
    _rejects(C.check_box_share, unnormalised, match="Divide")


@pytest.fixture(scope="module")
def photo_groups():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3), torch.nn.ReLU(), torch.nn.Conv2d(5, 2, 3))
    ex = fv.explain(net, torch.rand(3, 12, 12, generator=torch.Generator().manual_seed(0)), layers=["1"],
                    target="2:0")
    return ex.groups("1", n=3), ex.attribution("1")


def test_group_shares_accepts_the_solution_and_rejects_usual_mistakes(C, S, photo_groups):
    groups, attr = photo_groups
    C.check_group_shares(S.group_shares, groups, attr)

    def raw(s, d, a):
        return ((s[:, None] * d[:, :, None, None]).abs() * a).sum((1, 2, 3))

    def signed(s, d, a):
        p = s[:, None] * d[:, :, None, None]
        return (p / p.sum(0) * a).sum((1, 2, 3))

    _rejects(C.check_group_shares, raw, groups, attr, match="Normalise")
    _rejects(C.check_group_shares, signed, groups, attr, match="magnitudes")
