"""Notebook 04's exercise checks (notebooks/solutions.py): each accepts the reference solution and rejects a
plausible wrong answer with a message that says what is wrong."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

import featviz as fv

SOLUTIONS = Path(__file__).resolve().parent.parent / "notebooks" / "solutions.py"


@pytest.fixture(scope="module")
def S():
    spec = importlib.util.spec_from_file_location("notebook_solutions_04", SOLUTIONS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model():
    return fv.models.efficientnet_lite0()


def _rejects(check, fn, *args, match: str) -> None:
    with pytest.raises(AssertionError, match=match) as err:
        check(fn, *args)
    assert len(str(err.value)) > 40, f"failure message too terse: {err.value!r}"


# ----------------------------------------------------------------------------- receptive-field calculator


def _rf(layers, position, *, jump_in_size=True, padding=True, last_stride=True, rounding=False):
    size, jump, start = 1, 1, 0.0
    jumps = []
    for k, s, p in layers:
        size += (k - 1) * (jump if jump_in_size else 1)
        start += ((k - 1) / 2 - (p if padding else 0)) * jump
        jumps.append(jump)
        jump *= s
    step = jump if last_stride else jumps[-1]
    centre = start + position * step
    return size, float(int(centre)) if rounding else centre


def test_rf_check_accepts_the_solution_and_efficientnet(S, model):
    chains = {"blocks.1.depthwise_relu": [(3, 2, 0), (3, 1, 1), (1, 1, 0), (1, 1, 0), (3, 2, 0)]}
    S.check_receptive_field_1d(S.receptive_field_1d, model, chains)
    S.check_receptive_field_1d(_rf)


@pytest.mark.parametrize("wrong, match", [
    (dict(jump_in_size=False), "as if every layer had stride 1"),
    (dict(padding=False), "ignores padding"),
    (dict(last_stride=False), "ALL strides"),
    (dict(rounding=True), "half pixel"),
])
def test_rf_check_rejects_plausible_mistakes(S, wrong, match):
    def fn(layers, position=0):
        return _rf(layers, position, **wrong)

    _rejects(S.check_receptive_field_1d, fn, match=match)


def test_rf_check_names_nan_and_exceptions(S):
    _rejects(S.check_receptive_field_1d, lambda layers, position=0: (3, math.nan), match="not finite")
    _rejects(S.check_receptive_field_1d, lambda layers, position=0: 1 / 0, match="raised ZeroDivisionError")
    _rejects(S.check_receptive_field_1d, lambda layers, position=0: None, match=r"return \(size, centre\)")


def test_rf_check_compares_with_the_library_on_the_model(S, model):
    # torch-style symmetric padding instead of the model's TF SAME padding: the centre is off
    chains = {"blocks.4": [(3, 2, 1), (3, 1, 1), (3, 2, 1), (3, 1, 1), (5, 2, 2), (5, 1, 2)]}
    _rejects(S.check_receptive_field_1d, S.receptive_field_1d, model, chains,
             match="fv.circuits.receptive_field gives 67, 119")


# ----------------------------------------------------------------------------- orientation selectivity


def _osi(r, angles, *, double=True, radians=True, rectify=True, dim=0):
    r = torch.as_tensor(r, dtype=torch.float32)
    r = r.clamp_min(0) if rectify else r
    a = torch.as_tensor(angles, dtype=torch.float32)
    a = torch.deg2rad(a) if radians else a
    a = (2 * a if double else a).reshape(-1, *([1] * (r.dim() - 1)))
    c, s = (r * a.cos()).sum(dim), (r * a.sin()).sum(dim)
    return torch.sqrt(c**2 + s**2) / r.sum(dim)


def test_osi_check_accepts_the_solution(S):
    S.check_orientation_selectivity(S.orientation_selectivity)
    S.check_orientation_selectivity(_osi)


@pytest.mark.parametrize("wrong, match", [
    (dict(double=False), "periodic over 180"),
    (dict(radians=False), "radians"),
    (dict(rectify=False), "rectify"),
    (dict(dim=None), "dim 0"),
])
def test_osi_check_rejects_plausible_mistakes(S, wrong, match):
    dim = wrong.pop("dim", 0)

    def fn(r, angles):
        if dim is None:  # reduces over everything: one number for the whole batch
            r = torch.as_tensor(r, dtype=torch.float32)
            return _osi(r.reshape(len(angles), -1).sum(1), angles, **wrong)
        return _osi(r, angles, **wrong)

    _rejects(S.check_orientation_selectivity, fn, match=match)


def test_osi_check_names_nan(S):
    _rejects(S.check_orientation_selectivity, lambda r, a: torch.full(r.shape[1:], math.nan), match="NaN")


# ----------------------------------------------------------------------------- grating responses


def _gratings(model, layer, angles, size=64, freq=0.25, n_phases=8, *, how="right"):
    rf = fv.circuits.receptive_field(model, layer, size=size)
    phases = [360 * k / n_phases for k in range(n_phases)]
    images = fv.data.gratings(list(angles), size=size, freq=freq, phases=phases, center=rf.center)
    x = images if how == "no preprocess" else model.preprocess(images)
    with torch.no_grad():
        _, cache = fv.hooked(model).run_with_cache(x, names=[layer], stop_at_last=True)
    a, (i, j) = cache[layer], rf.position
    if how == "map mean":
        return a.mean((2, 3)).reshape(len(angles), n_phases, -1).mean(1)
    if how == "phase 0":
        return a[:, :, i, j].reshape(len(angles), n_phases, -1)[:, 0]
    if how == "phase-major":
        return a[:, :, i, j].reshape(n_phases, len(angles), -1).mean(0)
    return a[:, :, i, j].reshape(len(angles), n_phases, -1).mean(1)


def test_grating_check_accepts_the_solution(S, model):
    S.check_grating_responses(S.grating_responses, model, "blocks.1.depthwise_relu")
    S.check_grating_responses(_gratings, model, "blocks.1.depthwise_relu")


@pytest.mark.parametrize("how, match", [
    ("map mean", "averaged over the whole map"),
    ("phase 0", "phase 0 only"),
    ("phase-major", "angle-major"),
    ("no preprocess", "preprocess"),
])
def test_grating_check_rejects_plausible_mistakes(S, model, how, match):
    def fn(model, layer, angles, size=64, freq=0.25, n_phases=8):
        return _gratings(model, layer, angles, size, freq, n_phases, how=how)

    _rejects(S.check_grating_responses, fn, model, "blocks.1.depthwise_relu", match=match)


def test_grating_check_rejects_a_wrong_shape(S, model):
    def fn(model, layer, angles, size=64):
        return torch.zeros(len(angles) * 8, 96)   # phases not averaged away

    _rejects(S.check_grating_responses, fn, model, "blocks.1.depthwise_relu", match="expected .12, 96.")


# ----------------------------------------------------------------------------- fold BatchNorm


def _fold(weight, bn, *, eps=True, std=True, mean=True, scale_mean=True):
    var = bn.running_var + (bn.eps if eps else 0)
    scale = bn.weight / (torch.sqrt(var) if std else var)
    m = bn.running_mean * (scale if scale_mean else 1) if mean else 0
    return (weight * scale[:, None, None, None]).detach(), (bn.bias - m).detach()


@pytest.fixture(scope="module")
def stem(model):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return model.stem.conv, model.stem.bn, model.preprocess(x)


def test_fold_check_accepts_the_solution(S, stem):
    S.check_fold_batchnorm(S.fold_batchnorm, *stem)
    S.check_fold_batchnorm(_fold, *stem)


@pytest.mark.parametrize("wrong, match", [
    (dict(eps=False), "left out eps"),
    (dict(std=False), "not by the variance"),
    (dict(mean=False), "running mean must be subtracted"),
    (dict(scale_mean=False), "running mean is scaled too"),
])
def test_fold_check_rejects_plausible_mistakes(S, stem, wrong, match):
    _rejects(S.check_fold_batchnorm, lambda w, bn: _fold(w, bn, **wrong), *stem, match=match)


def test_fold_check_names_nan_shape_and_exceptions(S, stem):
    def nan_bias(w, bn):
        fw, fb = _fold(w, bn)
        return fw, fb * math.nan

    _rejects(S.check_fold_batchnorm, nan_bias, *stem, match="folded bias has 32 NaN")
    # a scale broadcast over the INPUT channels: (O, C) mismatch raises inside the student's code
    _rejects(S.check_fold_batchnorm, lambda w, bn: (w * bn.weight[None, :, None, None], bn.bias), *stem,
             match="raised RuntimeError")
    _rejects(S.check_fold_batchnorm, lambda w, bn: (w[:, :1], bn.bias), *stem, match="OUTPUT channel")


# ----------------------------------------------------------------------------- read the toy's wiring


@pytest.fixture(scope="module")
def toy():
    toy = fv.models.toy.edges_and_curves()
    return fv.circuits.weights(toy, "relu1", "conv2"), toy.ground_truth["conv2"]


def _wiring(weights, k, *, centre=True, swap=False, positive_only=False, sort=True):
    ch = weights.shape[-1] // 2 if centre else 0
    out = [(int(c), int(j if swap else i) - ch, int(i if swap else j) - ch, float(weights[k, c, i, j]))
           for c, i, j in torch.nonzero(weights[k] > 0 if positive_only else weights[k]).tolist()]
    return sorted(out) if sort else out[::-1]


def test_wiring_check_accepts_the_solution(S, toy):
    S.check_read_wiring(S.read_wiring, *toy)
    S.check_read_wiring(_wiring, *toy)


@pytest.mark.parametrize("wrong, match", [
    (dict(centre=False), "subtract 4"),
    (dict(swap=True), "swapped"),
    (dict(positive_only=True), r"missing \[\(4, 0, 0, -1.0\)\]"),
    (dict(sort=False), "not sorted"),
])
def test_wiring_check_rejects_plausible_mistakes(S, toy, wrong, match):
    _rejects(S.check_read_wiring, lambda w, k: _wiring(w, k, **wrong), *toy, match=match)
