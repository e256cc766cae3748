"""Stimuli follow the documented angle convention (x right, y up, degrees counter-clockwise)."""
import math

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


def _centroid(img: torch.Tensor) -> tuple[float, float]:
    h, w = img.shape
    rows, cols = torch.meshgrid(torch.arange(float(h)), torch.arange(float(w)), indexing="ij")
    return float((img * rows).sum() / img.sum()), float((img * cols).sum() / img.sum())


def test_centred_dot_centroid_is_the_subpixel_centre():
    img = fv.data.dots(size=40, radius=4, center=(10.5, 20.25))[0, 0]
    row, col = _centroid(img)
    assert abs(row - 10.5) < 1e-4                            # a half pixel: symmetric samples, exact
    assert abs(col - 20.25) < 0.02                           # a quarter pixel: the 1-px ramp is ~0.01 off
    default = fv.data.dots(size=40, radius=4)[0, 0]          # default: the image centre (19.5, 19.5)
    assert max(abs(v - 19.5) for v in _centroid(default)) < 1e-4
    with pytest.raises(ValueError, match="not both"):
        fv.data.dots([(1, 2)], center=(3, 4))


@pytest.mark.parametrize("angle, offset, pixel", [(90, 0, (20, 16)), (90, 5, (15, 16)), (90, -3, (23, 16)),
                                                   (0, 4, (20, 20)), (180, 4, (20, 12))])
def test_line_lies_at_its_offset_along_the_normal(angle, offset, pixel):
    img = fv.data.lines([angle], offsets=[offset], size=40, length=0.5, width=1, center=(20, 16))[0, 0]
    assert float(img[pixel]) == pytest.approx(1.0)
    axis = 0 if angle == 90 else 1                           # 90: a horizontal line; 0 / 180: vertical
    profile = img.sum(1 - axis)                              # brightness per row (90) or per column
    assert int(profile.argmax()) == pixel[axis] and float(profile.max()) == pytest.approx(21.0)
    assert float(profile.sum()) == pytest.approx(21.0)       # pixels -10..10 along it, 1 px wide, no more


def test_lines_are_curves_at_curvature_zero_and_angle_major():
    ln = fv.data.lines([30, 120], offsets=[0, 3], size=32, center=(14.5, 17))
    assert ln.shape == (4, 3, 32, 32)
    arcs = fv.data.curves([30, 120], curvatures=0, size=32, center=(14.5, 17))
    torch.testing.assert_close(ln[[0, 2]], arcs)
    assert not torch.equal(ln[0], ln[1])


@pytest.mark.parametrize("radius", [5.0, 9.5])
def test_ring_pixels_lie_at_the_radius_from_the_centre(radius):
    center = (20.5, 17.0)
    img = fv.data.circles([radius], size=48, width=1, center=center)[0, 0]
    rows, cols = torch.nonzero(img > 0.5, as_tuple=True)
    dist = torch.sqrt((rows - center[0]) ** 2 + (cols - center[1]) ** 2)
    assert len(dist) > 2 * math.pi * radius * 0.8            # a closed ring, not a few pixels
    assert float((dist - radius).abs().max()) <= 0.5


@pytest.mark.parametrize("radius", [3.0, 7.5, 12.0])
def test_disc_mean_is_its_area_fraction(radius):
    img = fv.data.circles([radius], size=40, filled=True, center=(19, 21.5))[0, 0]
    assert float(img.mean()) == pytest.approx(math.pi * radius**2 / 40**2, rel=0.03)


def test_curves_shifted_centre_is_the_rolled_image():
    base = fv.data.curves([0, 135], curvatures=[0, 4], size=64, length=0.4)
    dr, dc = 5, -7
    shifted = fv.data.curves([0, 135], curvatures=[0, 4], size=64, length=0.4, center=(31.5 + dr, 31.5 + dc))
    torch.testing.assert_close(shifted, base.roll((dr, dc), dims=(-2, -1)))
    assert float(base[:, :, :8].sum() + base[:, :, -8:].sum()) == 0  # away from the borders: roll is exact


def test_gratings_and_edges_are_anchored_at_the_centre():
    g = fv.data.gratings([0, 90], size=32, freq=0.1, center=(6, 25))[:, 0]
    assert float(g[0, 3, 25]) == pytest.approx(1.0) and float(g[1, 6, 3]) == pytest.approx(1.0)  # crests
    e = fv.data.edges([45], size=32, center=(10, 12))[0, 0]
    assert float(e[10, 12]) == pytest.approx(0.5)            # the edge line passes through the centre
    assert float(e[10 - 3, 12 - 3]) == pytest.approx(0.5)    # ... and runs at 45 + 90 (up-left)
    assert float(e[10 - 3, 12 + 3]) == 1.0                   # up-right is the bright side


def test_corner_at_90_has_its_vertex_at_the_centre_and_arms_below():
    img = fv.data.corners([90], size=48, length=0.25, width=1, center=(20, 24))[0, 0]
    assert float(img[20, 24]) == pytest.approx(1.0)
    assert float(img[:19].sum()) == 0                        # nothing above the vertex
    for k in (3, 8):                                         # arms at 225 and 315 degrees
        assert float(img[20 + k, 24 - k]) == pytest.approx(1.0)
        assert float(img[20 + k, 24 + k]) == pytest.approx(1.0)
        assert float(img[20 + k, 24]) == 0
    rows, cols = torch.nonzero(img > 0.5, as_tuple=True)
    assert int(rows.max()) == 20 + 8                         # 12 px arms: 12 / sqrt(2) = 8.5 rows down


@pytest.mark.parametrize("angle", [0, 90, 200])
def test_corner_bisector_points_at_its_angle(angle):
    img = fv.data.corners([angle], size=64, opening=60)[0, 0]
    cx, cy = _centroid(img)[1] - 31.5, 31.5 - _centroid(img)[0]    # centroid seen from the vertex
    assert _angle_diff(_direction(cx, cy), angle + 180) < 1   # the arms trail behind the vertex
