"""render(alpha=True): a unit with a 5x5 receptive field leaves everything outside it transparent."""
import pytest
import torch
import torch.nn as nn
from PIL import Image

import featviz as fv


def small_rf_alpha_render(param=fv.optvis.fft_image, steps: int = 96) -> fv.optvis.Rendering:
    """Centre unit of a 5x5 conv on a 24 px image: its receptive field is rows/cols 10..14."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU())
    return fv.render(net, fv.objectives.neuron("1", 0), size=24, steps=steps, lr=0.1, alpha=True,
                     param=param, transforms=[fv.optvis.jitter(2)], progress=False)


@pytest.fixture(scope="module")
def rendering():
    return small_rf_alpha_render()


def test_transparent_outside_the_receptive_field_opaque_inside(rendering):
    a = rendering.alpha[0, 0]  # (24, 24)
    outside = torch.ones_like(a, dtype=torch.bool)
    outside[7:18, 7:18] = False  # RF 10..14, +2 px jitter, +1 px margin
    assert rendering.alpha.shape == (1, 1, 24, 24) and rendering.images.shape == (1, 3, 24, 24)
    assert a[10:15, 10:15].mean() > 0.8 and a[outside].mean() < 0.1


def test_pixel_image_alpha_is_exactly_the_rf_plus_jitter():
    a = small_rf_alpha_render(fv.optvis.pixel_image, steps=48).alpha[0, 0]
    opaque = (a > 0.5).nonzero()
    assert opaque.min().item() >= 8 and opaque.max().item() <= 16  # rows/cols 10..14 +- 2 px jitter


def test_rgba_png_and_grid(rendering, tmp_path):
    path = rendering.save(tmp_path / "unit.png")
    im = Image.open(path)
    assert im.mode == "RGBA" and im.getpixel((0, 0))[3] < 40 and im.getpixel((12, 12))[3] > 200
    assert rendering.grid().shape == (4, 24, 24)
    both = fv.optvis.Rendering.cat([rendering, rendering])
    assert both.alpha.shape == (2, 1, 24, 24) and both[1].alpha.shape == (1, 1, 24, 24)


def test_alpha_needs_a_param_that_has_one():
    def rgb_only(size, batch, *, seed=0, device=None):
        return fv.optvis.pixel_image(size, batch, seed=seed, device=device)

    with pytest.raises(ValueError, match="alpha=True needs a param"):
        fv.render(nn.Sequential(nn.Conv2d(3, 2, 3)), "0:0", size=8, steps=1, alpha=True, param=rgb_only,
                  progress=False)
