"""fv.render's schedule= and early_stop= (issue 21): the lr per step, when an item stops, what it costs."""
import math

import pytest
import torch
import torch.nn as nn

import featviz as fv
from featviz.errors import BadValue
from featviz.optvis import RenderSettings
from featviz.optvis._steps import Convergence, lr_at
from featviz.optvis.objectives import INPUT, Objective, batch, channel, diversity


def _pixels(size, batch, *, seed=0, device=None):
    """Images = the parameters themselves (no sigmoid, no colour matrix), starting at 0."""
    h, w = (size, size) if isinstance(size, int) else size
    raw = torch.zeros(batch, 3, h, w, requires_grad=True)
    return [raw], lambda: raw + 0  # a new tensor each call, as a real parameterisation gives


def _mean_pixel() -> Objective:
    return Objective(lambda acts: acts[INPUT].flatten(1).mean(1), "mean pixel", [INPUT], per_item=True)


@pytest.mark.parametrize("schedule, expected", [
    ("constant", [0.1, 0.1, 0.1, 0.1]),
    # by hand: 0.1 * (1 + cos(pi * k / 4)) / 2 for k = 0..3 = 0.1, 0.1 * 1.7071 / 2, 0.05, 0.1 * 0.2929 / 2
    ("cosine", [0.1, 0.0853553, 0.05, 0.0146447]),
    ("linear", [0.1, 0.075, 0.05, 0.025]),
])
def test_each_step_moves_the_pixels_by_the_schedules_lr(schedule, expected):
    # a constant gradient: Adam's step is then exactly lr (m_hat / sqrt(v_hat) = 1), so each step's pixel
    # change is that step's learning rate
    r = fv.render(nn.Identity(), _mean_pixel(), size=4, steps=4, lr=0.1, param=_pixels, transforms=(),
                  redirect_steps=0, schedule=schedule, thresholds=range(1, 5), progress=False)
    at = [0.0] + [float(r.snapshots[t][0, 0, 0, 0].detach()) for t in range(1, 5)]
    moves = [b - a for a, b in zip(at, at[1:])]
    assert moves == pytest.approx(expected, abs=1e-6)
    assert [lr_at(schedule, 0.1, t, 4) for t in range(1, 5)] == pytest.approx(expected, abs=1e-6)


def _two_items_net():
    """Conv 1x1: channel 0 = channel 1 = mean of the colours; counts the batch size of every forward."""
    net = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.fill_(1 / 3)
    seen = []
    net[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    return net, seen


# item 0: a planted optimum (1 at a mean pixel of 0.5, reached in ~10 steps); item 1: grows without end
_near_half = Objective(lambda acts: 1 - (acts["0"][:, 0].flatten(1).mean(1) - 0.5) ** 2, "near 0.5", ["0"])


def test_a_converged_item_stops_leaves_the_batch_and_keeps_its_image():
    net, seen = _two_items_net()
    obj = batch(_near_half, 0) + batch(channel("0", 1), 1)
    r = fv.render(net, obj, size=4, steps=80, lr=0.05, batch=2, param=_pixels, transforms=(),
                  redirect_steps=0, early_stop=0.01, thresholds=range(1, 81), progress=False)
    stop = seen.count(2) - 1  # steps with both items (the final measuring pass sees both too)
    assert 32 <= stop < 80 and seen == [2] * stop + [1] * (80 - stop) + [2]
    assert torch.equal(r.images[0], r.snapshots[stop][0])  # frozen at its stop step, not moved by Adam
    assert not torch.equal(r.snapshots[stop][0], r.snapshots[stop - 1][0])
    assert float(r.activations[0]) == pytest.approx(1.0, abs=0.01)  # at the optimum (0.75 at the start)
    assert torch.equal(r.images[1], r.snapshots[80][1]) and float(r.images[1].mean()) > 3  # ran all steps
    assert r.losses.shape == (80, 2) and (r.losses[stop:, 0] == r.losses[stop - 1, 0]).all()


def test_an_objective_that_couples_items_stops_only_all_together():
    net, seen = _two_items_net()
    both = batch(_near_half, 0) + batch(channel("0", 1), 1)
    coupled = Objective(lambda acts: both(acts), "coupled", ["0"])  # per item in fact, but not declared
    assert not coupled.per_item
    r = fv.render(net, coupled, size=4, steps=60, lr=0.05, batch=2, param=_pixels, transforms=(),
                  redirect_steps=0, early_stop=0.01, thresholds=[60], progress=False)
    assert seen == [2] * 61  # item 1 never converges: every step, both items
    assert torch.equal(r.images, r.snapshots[60])


def test_the_run_ends_when_every_item_converged():
    net, seen = _two_items_net()
    r = fv.render(net, _near_half, size=4, steps=200, lr=0.05, batch=2, param=_pixels, transforms=(),
                  redirect_steps=8, early_stop=0.01, progress=False)
    assert len(seen) < 100 and seen[-1] == 2 and r.losses.shape == (200, 2)
    assert len(seen) - 1 >= 32  # not before 2 windows of 16 steps


def test_convergence_by_hand():
    conv = Convergence(batch=3, tol=0.1, window=2)
    rows = [[1.0, 1.0, 0.0], [2.0, 1.0, 0.0], [2.0, 1.0, 0.0], [2.2, 3.0, 0.0]]
    done = [conv.update(torch.tensor(r)).tolist() for r in rows]
    # step 4: item 0 (2 + 2.2) / 2 = 2.1 vs (1 + 2) / 2 = 1.5: gain 0.6 / 2.1 = 0.29; item 1 2 vs 1: 0.5;
    # item 2: dead (both means 0), converged
    assert done == [[False] * 3] * 3 + [[False, False, True]]
    assert conv.update(torch.tensor([2.2, 3.0, 0.0])).tolist() == [True, False, True]  # 2.2 vs 2.1: 0.045


def test_per_item_follows_the_algebra():
    assert channel("a", 0).per_item and (channel("a", 0) - 2 * channel("a", 1)).per_item
    assert not (channel("a", 0) + diversity("a")).per_item
    assert not fv.objectives.direction("a", torch.eye(2)).per_item  # row i of the vectors is item i
    assert fv.objectives.direction("a", [1.0, 0.0]).per_item
    assert not Objective(lambda acts: acts["a"].sum((1, 2, 3)), "own", ["a"]).per_item


def test_without_the_new_settings_render_is_as_before():
    # numbers from the code before schedule/early_stop existed (main at 9b3f0eb), same call
    model = fv.models.toy.edges_and_curves()
    r = fv.render(model, "relu2:6", size=24, steps=6, progress=False)
    assert float(r.images.double().sum()) == pytest.approx(864.9256475269794, rel=1e-9)
    assert float(r.losses.double().sum()) == pytest.approx(0.06578788254410028, rel=1e-6)
    g = fv.render_layer(model, "relu1", channels=[0, 3, 5], size=24, steps=6, progress=False)
    assert float(g.images.double().sum()) == pytest.approx(2643.856082648039, rel=1e-9)
    assert g.activations.tolist() == pytest.approx([0.051331471651792526, 0.05467991530895233,
                                                    0.05556817725300789], rel=1e-6)
    s = fv.render(model, "relu2:6", size=24, steps=6, schedule="constant", early_stop=None, progress=False)
    assert torch.equal(s.images, r.images)


def test_render_layer_stops_batches_at_different_steps_and_joins_them():
    model = fv.models.toy.edges_and_curves()
    g = fv.render_layer(model, "relu1", channels=range(4), batch_size=2, size=16, steps=64, early_stop=0.5,
                        progress=False)
    assert g.losses.shape == (64, 4) and len(g) == 4
    assert (g.losses[-1] == g.losses[-2]).all()  # tol 0.5: stopped well before step 64


@pytest.mark.parametrize("bad", [{"schedule": "cos"}, {"schedule": None}, {"early_stop": 0},
                                 {"early_stop": 1.5}, {"early_stop": True}, {"early_stop": "0.1"}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(BadValue, match=next(iter(bad))):
        RenderSettings(**bad)


@pytest.mark.parametrize("bad", [{"schedule": "cos"}, {"early_stop": 0}, {"early_stop": -0.1}])
def test_bad_keywords_are_refused_by_render(bad):
    with pytest.raises(BadValue, match=next(iter(bad))):
        fv.render(nn.Identity(), _mean_pixel(), size=4, steps=2, param=_pixels, progress=False, **bad)


def test_settings_carry_the_new_fields():
    s = RenderSettings(steps=48, lr=0.1, schedule="cosine", early_stop=0.02)
    assert s.to_dict()["schedule"] == "cosine" and s.to_dict()["early_stop"] == 0.02
    assert s.replace(early_stop=None).early_stop is None
    assert RenderSettings.resolve(s, schedule=None, early_stop=0.05) == s.replace(early_stop=0.05)
    assert repr(RenderSettings()) == "RenderSettings()"  # the defaults are fv.render's, unchanged
    assert math.isclose(lr_at("cosine", 0.1, 48, 48), 0.1 * (1 - math.cos(math.pi / 48)) / 2)
