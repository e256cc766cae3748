"""Transforms: sizes, exact geometry on hand-made images, seeding, differentiability."""
import pytest
import torch

from featviz.optvis import transform as T


def test_pad_adds_constant_border():
    x = torch.zeros(1, 3, 4, 4)
    y = T.pad(2, value=0.5)(x, None)
    assert y.shape == (1, 3, 8, 8)
    assert y[..., 0, :].eq(0.5).all() and y[..., 2:6, 2:6].eq(0).all()


def test_jitter_is_a_crop_of_the_input():
    x = torch.arange(100.0).reshape(1, 1, 10, 10)
    y = T.jitter(3)(x, torch.Generator().manual_seed(0))
    dy, dx = divmod(int(y[0, 0, 0, 0]), 10)
    assert y.shape == (1, 1, 7, 7) and dy <= 3 and dx <= 3
    assert torch.equal(y, x[..., dy : dy + 7, dx : dx + 7])


def test_rotate_by_90_degrees_matches_rot90():
    x = torch.rand(2, 3, 9, 9)
    y = T.random_rotate([90])(x, None)
    ref = torch.rot90(x, 1, dims=(-2, -1))
    ref_other = torch.rot90(x, -1, dims=(-2, -1))
    assert min((y - ref).abs().max(), (y - ref_other).abs().max()) < 1e-5


def test_rotate_by_zero_is_identity():
    x = torch.rand(2, 3, 9, 7)
    torch.testing.assert_close(T.random_rotate([0])(x, None), x, atol=1e-5, rtol=0)


def test_scale_resizes_by_the_factor():
    x = torch.rand(1, 3, 20, 10)
    y = T.random_scale([1.5])(x, None)
    assert y.shape == (1, 3, 30, 15)
    ref = torch.nn.functional.interpolate(x, size=(30, 15), mode="bilinear", align_corners=False)
    torch.testing.assert_close(y, ref)
    # by hand: bilinear keeps a horizontal ramp a ramp; 2x on a ramp 0..7 puts the centre pixels at
    # (j + 0.5) / 2 - 0.5 of the input, clamped at the borders
    ramp = torch.arange(8.0).repeat(1, 1, 4, 1)
    up = T.random_scale([2.0])(ramp, None)[0, 0, 0]
    want = ((torch.arange(16.0) + 0.5) / 2 - 0.5).clamp(0, 7)
    torch.testing.assert_close(up, want)


def test_standard_transforms_seeded_and_differentiable():
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    t = T.standard_transforms()
    a = t(x, torch.Generator().manual_seed(3))
    b = t(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_jitter_larger_than_image_is_a_clear_error():
    with pytest.raises(ValueError, match="jitter"):
        T.jitter(8)(torch.zeros(1, 3, 4, 4), None)


SCALES, ANGLES = [1 + (i - 5) / 50 for i in range(11)], list(range(-10, 11)) + 5 * [0]


def chain(width=12, d1=8, scales=SCALES, angles=ANGLES, d2=4):
    return T.compose([T.pad(width, 0.5), T.jitter(d1), T.random_scale(scales), T.random_rotate(angles),
                      T.jitter(d2)])


def test_fused_without_scale_or_rotation_is_the_chains_exact_crop():
    x = torch.rand(2, 3, 20, 17)
    for seed in range(4):
        a = chain(3, 4, [1.0], [0], 2)(x, torch.Generator().manual_seed(seed))
        b = T.random_pad_scale_rotate(3, 4, [1.0], [0], 2)(x, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)


def test_fused_rotation_by_90_degrees_matches_rot90():
    x = torch.rand(2, 3, 9, 9)
    y = T.random_pad_scale_rotate(0, 0, [1.0], [90], 0)(x, None)
    assert min((y - torch.rot90(x, k, dims=(-2, -1))).abs().max() for k in (1, -1)) < 1e-5


def test_standard_transforms_draw_the_chains_geometry():
    """Same seed, same size and the same picture away from the image's edge (the chain interpolates twice)."""
    x = torch.nn.functional.interpolate(torch.rand(2, 3, 6, 6), size=64, mode="bicubic", align_corners=False)
    inside = T.random_pad_scale_rotate(12, 8, SCALES, ANGLES, 4, fill=0.0)
    for seed in range(6):
        a = chain()(x, torch.Generator().manual_seed(seed))
        b = T.standard_transforms()(x, torch.Generator().manual_seed(seed))
        far = torch.nn.functional.max_pool2d(
            (inside(torch.ones_like(x), torch.Generator().manual_seed(seed)) < 0.999).float(), 11, 1, 5) == 0
        assert a.shape == b.shape and far.sum() > 0.4 * far.numel()
        assert (a - b).abs()[far].max() < 0.02
