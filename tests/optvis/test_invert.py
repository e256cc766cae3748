"""invert / caricature: on a small net, inversion matches the photo's activations (cosine >= 0.9)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

import featviz as fv
from featviz.optvis._layer import layer_activations
from featviz.optvis.invert import _Paired


def small_net() -> nn.Sequential:
    """Two bias-free convs; inputs mapped to [-1, 1], so a grey image has zero activations."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(),
                        nn.Conv2d(8, 16, 3, padding=1, bias=False))
    net.preprocess = lambda x: 2 * x - 1
    return net


def smooth_photos(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=32, mode="bilinear", align_corners=False)


def test_inversion_reaches_cosine_090_where_another_photo_has_040():
    net, photo = small_net(), smooth_photos(1, 1)
    acts = layer_activations(net, "2", torch.cat([photo, smooth_photos(1, 2)]))
    baseline = F.cosine_similarity(acts[:1].flatten(1), acts[1:].flatten(1))
    r = fv.invert(net, "2", photo, steps=64, progress=False)
    own = F.cosine_similarity(layer_activations(net, "2", r.images).flatten(1), acts[:1].flatten(1))
    assert baseline < 0.5 and r.activations.item() >= 0.9
    torch.testing.assert_close(own, r.activations, atol=1e-4, rtol=0)


def test_caricature_goes_further_along_the_photo_than_the_photo_itself():
    net, photo = small_net(), smooth_photos(1, 1)
    target_norm = layer_activations(net, "2", photo).norm()
    r = fv.caricature(net, "2", photo, steps=48, lr=0.1, progress=False)
    assert r.activations.item() > 1.3 * target_norm  # 17.4 vs 11.9


def test_target_gets_the_same_random_geometry_as_the_image():
    photo = smooth_photos(2, 3)
    paired = _Paired(fv.optvis.standard_transforms(), photo)
    out = paired(photo.clone(), torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, paired.take())
    assert paired.take() is photo  # nothing pending: the untransformed targets
