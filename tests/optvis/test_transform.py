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
    assert T.random_scale([1.5])(x, None).shape == (1, 3, 30, 15)


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
