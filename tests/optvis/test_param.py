"""Image parameterisations: shapes, range, seeding, the 1/f spectrum and the colour matrix."""
import numpy as np
import pytest
import torch

from featviz.optvis import param


def test_color_matrix_is_lucids_matrix_over_its_largest_column_norm():
    m = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
    expected = m / np.linalg.norm(m, axis=0).max()
    np.testing.assert_allclose(param.COLOR_CORRELATION.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("make", [param.fft_image, param.pixel_image])
def test_images_have_batch_shape_and_lie_in_unit_range(make):
    _, image_fn = make((20, 30), batch=3, seed=1)
    img = image_fn()
    assert img.shape == (3, 3, 20, 30)
    assert img.min() > 0 and img.max() < 1  # a sigmoid: never exactly 0 or 1
    assert (img[0] - img[1]).abs().max() > 1e-4 and (img[1] - img[2]).abs().max() > 1e-4  # own draws
    # the range comes from the sigmoid: where the unsquashed image (same seed) lies inside (0, 1), the
    # squashed one is exactly its sigmoid
    raw = make((20, 30), batch=3, seed=1, sigmoid=False)[1]()
    inside = (raw > 0) & (raw < 1)
    assert inside.float().mean() > 0.2
    torch.testing.assert_close(img[inside], torch.sigmoid(raw[inside]))


@pytest.mark.parametrize("make", [param.fft_image, param.pixel_image])
def test_same_seed_same_image_different_seed_different_image(make):
    a, b, c = (make(16, seed=s)[1]() for s in (0, 0, 1))
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-4


def test_param_does_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    param.fft_image(16, seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_fft_image_matches_hand_built_inverse_fft_with_1_over_f_scaling():
    (spectrum,), image_fn = param.fft_image((8, 12), seed=0, decorrelate=False, sigmoid=False)
    fy, fx = np.fft.fftfreq(8)[:, None], np.fft.rfftfreq(12)[None, :]
    scale = 1 / np.maximum(np.sqrt(fx**2 + fy**2), 1 / 12)
    coeffs = (spectrum[..., 0] + 1j * spectrum[..., 1]).detach().numpy() * scale
    expected = np.clip(np.fft.irfft2(coeffs, s=(8, 12), norm="ortho") / 4, 0, 1)
    np.testing.assert_allclose(image_fn().detach().numpy(), expected, atol=1e-6)


def test_fft_spectrum_initial_std_is_sd():
    (spectrum,), _ = param.fft_image(64, batch=4, seed=0, sd=0.01)
    assert abs(spectrum.std().item() - 0.01) < 0.0005


def test_decorrelated_pixel_maps_through_color_matrix_then_sigmoid():
    (pixels,), image_fn = param.pixel_image(2, seed=0)
    with torch.no_grad():
        pixels.zero_()
        pixels[0, 0] = 1.0  # unit vector along the first decorrelated colour axis
    expected = torch.sigmoid(param.COLOR_CORRELATION[:, 0])
    torch.testing.assert_close(image_fn()[0, :, 0, 0], expected)


def test_bad_size_is_a_clear_error():
    with pytest.raises(ValueError, match="size must be"):
        param.fft_image(0)
