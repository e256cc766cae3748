"""predict: resizes any size to model.input_size, normalises with model.preprocess, returns (label, p)."""
import math

import pytest
import skimage.data
import torch
from torch import nn

import featviz as fv


class MeanColour(nn.Module):
    """Planted classifier: logits = 10 * mean of each RGB channel; classes red, green, blue."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.input_size, self.labels = 8, ["red", "green", "blue"]

    def forward(self, x):
        assert x.shape[-2:] == (8, 8)
        return self.scale * x.mean(dim=(2, 3))


def test_predict_probabilities_on_a_planted_model_with_odd_size():
    image = torch.zeros(1, 3, 13, 17)
    image[:, 0] = 1.0  # pure red
    (top,) = fv.models.predict(MeanColour(), image, k=2)
    expected = math.exp(10) / (math.exp(10) + 2)
    assert top[0][0] == "red" and abs(top[0][1] - expected) < 1e-5
    assert abs(top[1][1] - 1 / (math.exp(10) + 2)) < 1e-5


def test_predict_applies_model_preprocess():
    model = MeanColour()
    model.preprocess = fv.data.Normalize(mean=(1.0, 0.0, 0.0), std=1.0)  # cancels the red
    image = torch.zeros(1, 3, 8, 8)
    image[:, 0], image[:, 2] = 1.0, 0.5
    assert fv.models.predict(model, image, k=1)[0][0][0] == "blue"


def test_predict_a_raw_photo_of_odd_size_batch_of_one(effnet):
    chelsea = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1)[None].float() / 255  # 300 x 451
    (top5,) = fv.models.predict(effnet, chelsea)
    assert len(top5) == 5 and top5[0][0] in {"tabby", "tiger cat", "Egyptian cat"}
    assert all(a[1] >= b[1] for a, b in zip(top5, top5[1:]))


def test_predict_rejects_unbatched_or_int64_images():
    with pytest.raises(ValueError, match=r"images\[None\]"):
        fv.models.predict(MeanColour(), torch.rand(3, 8, 8))
    with pytest.raises(TypeError, match="uint8 in 0..255"):
        fv.models.predict(MeanColour(), torch.zeros(1, 3, 8, 8, dtype=torch.int64))


def test_predict_reads_uint8_as_0_to_255():  # the one uint8 rule: x / 255
    x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    assert fv.models.predict(MeanColour(), x, k=3) == fv.models.predict(MeanColour(), x.float() / 255, k=3)
