"""factorize: planted co-active channel groups are recovered (directions and where they are active)."""
import pytest
import torch
import torch.nn as nn
from sklearn.decomposition import NMF

import featviz as fv
from featviz.errors import BadType, BadValue

GROUPS = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]  # channels of group g read input colour g only


def grouped_net() -> nn.Sequential:
    """1x1 conv 3 -> 9 + ReLU: channels 3g..3g+2 = relu(w * colour g), w = 1, 1.5, 2."""
    conv = nn.Conv2d(3, 9, 1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        for g, chans in enumerate(GROUPS):
            for j, c in enumerate(chans):
                conv.weight[c, g] = 1.0 + 0.5 * j
    return nn.Sequential(conv, nn.ReLU())


def blob_images(n: int = 12, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Each colour channel is on (random strength) in its own random rectangle, independently."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 3, size, size)
    for i in range(n):
        for c in range(3):
            r0, c0 = torch.randint(0, size - 5, (2,), generator=g).tolist()
            x[i, c, r0 : r0 + 5, c0 : c0 + 5] = 0.3 + 0.7 * torch.rand(1, generator=g)
    return x


def group_of(direction: torch.Tensor) -> tuple[int, float]:
    mass = torch.stack([direction[ch].abs().sum() for ch in GROUPS])
    return int(mass.argmax()), float(mass.max() / mass.sum())


@pytest.mark.parametrize("method", ["nmf", "ica"])
def test_planted_groups_are_recovered(method):
    # NMF: sparse co-active blobs; ICA needs independent non-Gaussian sources: uniform noise per colour
    noise = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    images = blob_images() if method == "nmf" else noise
    f = fv.factorize(grouped_net(), "1", images, n_groups=3, method=method)
    found = [group_of(d) for d in f.directions]
    assert sorted(g for g, _ in found) == [0, 1, 2]
    assert min(purity for _, purity in found) > 0.95
    for k, (g, _) in enumerate(found):  # the group's map is where its colour is on
        corr = torch.corrcoef(torch.stack([f.spatial[:, k].flatten(), images[:, g].flatten()]))[0, 1]
        assert corr > 0.95


def test_sklearn_instance_and_shapes():
    f = fv.factorize(grouped_net(), "1", blob_images(4), method=NMF(3, init="nndsvda", max_iter=400))
    assert f.directions.shape == (3, 9) and f.spatial.shape == (4, 3, 16, 16) and f.method == "NMF"


def test_nmf_on_negative_activations_says_what_to_do():
    with pytest.raises(BadValue, match=r"NMF needs non-negative.*after a ReLU \(e\.g\. 1\).*'pca'"):
        fv.factorize(grouped_net(), "0", blob_images(2), n_groups=3, preprocess=lambda x: x - 0.5)
    with pytest.raises(BadType):
        fv.factorize(grouped_net(), "1", blob_images(2), method=object())


def test_groups_render_in_one_batched_run():
    f = fv.factorize(grouped_net(), "1", blob_images(), n_groups=3)
    r = f.render(grouped_net(), size=16, steps=32, lr=0.1, transforms=[], progress=False)
    assert r.images.shape == (3, 3, 16, 16)
    for k, (g, _) in enumerate(group_of(d) for d in f.directions):  # group k's render is its colour
        means = r.images[k].mean((1, 2))  # (3,) mean R, G, B
        assert means[g] == means.max() and means[g] > means.min() + 0.05
    assert len(f.plot(r, n_images=2).axes) == 3 * 4
