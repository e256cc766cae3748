"""Stimuli follow the documented angle convention (x right, y up, degrees counter-clockwise)."""
import numpy as np
import pytest
import torch

import featviz as fv


def _direction(vx: float, vy: float) -> float:
    return float(np.degrees(np.arctan2(vy, vx)) % 360)


def _angle_diff(a: float, b: float, period: float = 360) -> float:
    return abs((a - b + period / 2) % period - period / 2)


@pytest.mark.parametrize("angle", [0, 30, 75, 120, 165])
def test_grating_fft_peak_points_at_its_angle(angle):
    img = fv.data.gratings([angle], size=128, freq=0.25)[0, 0].numpy() - 0.5
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(img)))
    row, col = np.unravel_index(spectrum.argmax(), spectrum.shape)
    fx, fy = col - 64, 64 - row  # frequency axes with y up
    assert _angle_diff(_direction(fx, fy), angle, period=180) < 3


def test_grating_phases_are_angle_major_and_in_degrees():
    g = fv.data.gratings([0, 90], size=32, phases=[0, 180])
    assert g.shape == (4, 3, 32, 32)
    torch.testing.assert_close(g[1], 1 - g[0])           # same angle, phase + 180 deg
    torch.testing.assert_close(g[2], g[0].transpose(-1, -2).flip(-2))  # 90 deg = rotated image


@pytest.mark.parametrize("angle", [0, 45, 100, 200, 315])
def test_edge_gradient_points_at_its_angle(angle):
    img = fv.data.edges([angle], size=64)[0, 0].numpy()
    d_row, d_col = np.gradient(img)
    assert _angle_diff(_direction(d_col.sum(), -d_row.sum()), angle) < 2
    assert img.min() == 0 and img.max() == 1


@pytest.mark.parametrize("angle", [0, 90, 135, 250])
def test_curve_bulges_toward_its_angle(angle):
    img = fv.data.curves([angle], curvatures=[4], size=64)[0, 0]
    rows, cols = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    cx = float((img * (cols - 31.5)).sum() / img.sum())
    cy = float((img * (31.5 - rows)).sum() / img.sum())
    assert _angle_diff(_direction(cx, cy), angle + 180) < 3  # the ends bend away from the angle
    assert img[31:33, 31:33].max() > 0.9  # the arc's midpoint is at the image centre


@pytest.mark.parametrize("angle", [0, 60, 90])
def test_straight_curve_runs_perpendicular_to_its_angle(angle):
    img = fv.data.curves([angle], curvatures=[0], size=64)[0, 0]
    rows, cols = torch.nonzero(img > 0.5, as_tuple=True)
    x, y = (cols - 31.5).numpy(), (31.5 - rows).numpy()
    _, vecs = np.linalg.eigh(np.cov(np.stack([x, y])))
    assert _angle_diff(_direction(*vecs[:, -1]), angle + 90, period=180) < 2


def test_dot_centre_is_at_row_col():
    img = fv.data.dots([(10, 40)], size=64, radius=3)[0, 0]
    rows, cols = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    assert abs(float((img * rows).sum() / img.sum()) - 10) < 1e-4
    assert abs(float((img * cols).sum() / img.sum()) - 40) < 1e-4


def test_bad_stimulus_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="cycles per pixel"):
        fv.data.gratings([0], freq=2)
    with pytest.raises(ValueError, match="angles is empty"):
        fv.data.edges([])
    with pytest.raises(ValueError, match="curvatures must be >= 0"):
        fv.data.curves([0], curvatures=[-1])
