"""Normalize equals torchvision's Normalize and stays a plain callable on the input's device/dtype."""
import pytest
import torch
from torch import nn
from torchvision.transforms import Normalize as TvNormalize

import featviz as fv


def test_normalize_matches_torchvision():
    x = torch.rand(2, 3, 5, 5)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    torch.testing.assert_close(fv.data.Normalize(mean, std)(x), TvNormalize(mean, std)(x))


def test_normalize_follows_input_dtype_and_is_not_a_module():
    norm = fv.data.Normalize(0.5, 0.5)
    x = torch.rand(1, 3, 2, 2, dtype=torch.float64)
    assert norm(x).dtype == torch.float64 and not isinstance(norm, nn.Module)
    torch.testing.assert_close(norm.inverse(norm(x)), x)


def test_normalize_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        fv.data.Normalize(0.5, 0.5)(torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="one per RGB channel"):
        fv.data.Normalize((0.5, 0.5), 1.0)
