"""maco_image: only the phase moves, the magnitude stays natural, the attribution map sits on the RF."""
import pytest
import torch
import torch.nn as nn

import featviz as fv
from featviz.optvis.maco import maco_image, natural_spectrum


def small_rf_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU())  # centre unit of a 24 px image sees rows 10..14


def test_render_raises_the_objective_and_attribution_stays_on_the_receptive_field():
    r = fv.render(small_rf_net(), fv.objectives.neuron("1", 0), size=24, steps=32, lr=0.25, param=maco_image,
                  transforms=[fv.optvis.jitter(2)], progress=False)
    assert r.losses[-4:].mean() > r.losses[:4].mean() + 0.1
    a = r.alpha[0, 0]
    outside = torch.ones_like(a, dtype=torch.bool)
    outside[8:17, 8:17] = False  # RF 10..14 +- 2 px jitter
    assert a[outside].max() == 0 and a[10:15, 10:15].mean() > 0.3


def test_phase_is_the_only_parameter_and_magnitude_is_the_photos():
    params, image_fn = maco_image(16, batch=2, seed=1)
    assert len(params) == 1 and params[0].shape == (2, 3, 16, 9)
    assert params[0].abs().max() <= torch.pi
    spec = natural_spectrum(16, 16)
    assert spec[:, 0, 1].mean() > 4 * spec[:, 8, 8].mean()  # natural images: 1/f-like fall-off


def test_maco_has_no_alpha_channel_to_optimise():
    with pytest.raises(ValueError, match="alpha=True needs a param"):
        fv.render(small_rf_net(), "1:0", size=16, steps=1, alpha=True, param=maco_image, progress=False)
