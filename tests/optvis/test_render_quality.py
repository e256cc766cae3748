"""Planted models whose optimal image we know: rendered images must show the planted feature."""
import math

import pytest
import torch
import torch.nn as nn

import featviz as fv

ANGLES = [0, 30, 60, 90, 120, 150]  # degrees; wave-vector direction, x = column, y = row (down)


def gabor_model(angles=ANGLES, k=11, freq=0.2, sigma=2.5) -> nn.Module:
    """conv(3 -> len(angles), k x k) with one grey-scale Gabor filter per output channel, then ReLU."""
    conv = nn.Conv2d(3, len(angles), k, bias=False)
    yy, xx = torch.meshgrid(torch.arange(k) - k // 2, torch.arange(k) - k // 2, indexing="ij")
    with torch.no_grad():
        for c, a in enumerate(angles):
            th = math.radians(a)
            g = torch.exp(-(xx**2 + yy**2) / (2 * sigma**2)) * torch.cos(
                2 * math.pi * freq * (xx * math.cos(th) + yy * math.sin(th)))
            conv.weight[c] = (g - g.mean()) / 3
    return nn.Sequential(conv, nn.ReLU())


def dominant_orientation(img: torch.Tensor) -> float:
    """Power-weighted mean orientation (degrees, mod 180) of a (3, H, W) image's Fourier spectrum."""
    grey = img.mean(0) - img.mean()
    power = torch.fft.fft2(grey).abs() ** 2
    fy = torch.fft.fftfreq(grey.shape[0])[:, None].expand_as(power)
    fx = torch.fft.fftfreq(grey.shape[1])[None, :].expand_as(power)
    theta2 = 2 * torch.atan2(fy, fx)
    return math.degrees(0.5 * math.atan2((power * theta2.sin()).sum(), (power * theta2.cos()).sum())) % 180


def angle_diff(a: float, b: float) -> float:
    d = abs(a - b) % 180
    return min(d, 180 - d)


def test_gabor_channels_render_gratings_of_their_orientation():
    r = fv.render_layer(gabor_model(), "1", size=48, steps=64, progress=False)
    found = [dominant_orientation(img) for img in r.images]
    assert all(angle_diff(f, a) < 10 for f, a in zip(found, ANGLES)), found


def colour_model(sign: float = 1.0) -> nn.Module:
    """1x1 conv: channel c = colour c minus the mean of the other two (a pure colour detector)."""
    conv = nn.Conv2d(3, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_((1.5 * torch.eye(3) - 0.5 * torch.ones(3, 3))[:, :, None, None] * sign)
    return nn.Sequential(conv)


def test_colour_channels_render_their_colour():
    r = fv.render_layer(colour_model(), "0", size=24, steps=48, progress=False)
    dominant = r.images.mean((2, 3)).argmax(1)  # (3,) brightest colour of each image
    assert dominant.tolist() == [0, 1, 2]


def test_model_preprocess_attribute_is_applied():
    model = colour_model()
    model.preprocess = lambda x: 1 - x  # the model sees the negative: the optimum is the complement colour
    r = fv.render(model, "0:0", size=24, steps=48, progress=False)
    mean = r.images.mean((0, 2, 3))  # (3,)
    assert mean[0] < mean[1] and mean[0] < mean[2]


def test_preprocess_argument_overrides_the_model_attribute():
    model = colour_model()
    model.preprocess = lambda x: 1 - x
    r = fv.render(model, "0:0", size=24, steps=48, progress=False, preprocess=lambda x: x)
    assert r.images.mean((0, 2, 3)).argmax() == 0


@pytest.mark.parametrize("param", [fv.optvis.fft_image, fv.optvis.pixel_image])
def test_objective_increases_with_either_parameterisation(param):
    r = fv.render(gabor_model(), "1:2", size=32, steps=32, param=param, progress=False)
    assert r.losses[-8:].mean() > 2 * r.losses[:4].mean()
