"""atlas: two planted feature clusters land in separate cells, and the class atlas names their classes."""
import pytest
import torch
import torch.nn as nn
from PIL import Image

import featviz as fv


class TwoClusters(nn.Module):
    """relu1 channels 0-2 fire on reddish pixels, 3-5 on bluish ones; logits: class 0 = red, 1 = blue."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 1, bias=False)
        self.relu1 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            for c, k in enumerate((1.0, 1.5, 2.0)):
                self.conv.weight[c, :, 0, 0] = torch.tensor([k, 0.0, -k])
                self.conv.weight[3 + c, :, 0, 0] = torch.tensor([-k, 0.0, k])
            self.fc.weight.copy_(torch.tensor([[1.0] * 3 + [0.0] * 3, [0.0] * 3 + [1.0] * 3]))
        self.labels = ["red thing", "blue thing"]

    def forward(self, x):
        return self.fc(self.pool(self.relu1(self.conv(x))).flatten(1))


def two_kinds(n: int = 16, size: int = 12) -> torch.Tensor:
    """Images 0..n/2-1 reddish, the rest bluish, with per-pixel noise."""
    g = torch.Generator().manual_seed(0)
    x = 0.3 * torch.rand(n, 3, size, size, generator=g)
    x[: n // 2, 0] += 0.6
    x[n // 2 :, 2] += 0.6
    return x


def check_separated(a: fv.optvis.Atlas, n: int = 16) -> None:
    kind = (a.sample_image >= n // 2).long()  # 0 red, 1 blue
    cells = a.cell_of(a.coords)
    red = {tuple(c) for c in cells[kind == 0].tolist()}
    blue = {tuple(c) for c in cells[kind == 1].tolist()}
    assert red and blue and not red & blue  # no cell holds samples of both clusters
    assert (a.coords[kind == 0].mean(0) - a.coords[kind == 1].mean(0)).norm() > 0.5  # far apart in [0, 1]^2


def test_planted_clusters_separate_and_class_atlas_names_them():
    a = fv.atlas(TwoClusters(), "relu1", two_kinds(), grid=6, n_samples=400, min_count=2, reducer="pca",
                 size=12, steps=8, render_batch=8, transforms=[], progress=False)
    check_separated(a)
    assert int(a.counts.sum()) == 400 and len(a.renders) == len(a.cells)
    red_dirs = a.directions[:, :3].sum(1) > a.directions[:, 3:].sum(1)  # (K,) cell is a red cell
    assert a.classes.tolist() == (~red_dirs).long().tolist()  # red cells push class 0, blue cells class 1
    assert a.class_names == ["red thing", "blue thing"]
    assert len(a.plot("classes").axes) == 1 and a.mosaic().shape == (3, 72, 72)


@pytest.mark.slow
def test_planted_clusters_separate_with_umap():
    a = fv.atlas(TwoClusters(), "relu1", two_kinds(), grid=8, n_samples=600, steps=0, progress=False)
    check_separated(a)


def test_cli_builds_an_atlas_from_a_folder_of_photos(tmp_path, capsys):
    from featviz.cli import main

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, img in enumerate(two_kinds(4, 32)):
        Image.fromarray((img.permute(1, 2, 0).clamp(0, 1) * 255).byte().numpy()).save(photos / f"{i}.png")
    out = tmp_path / "out"
    code = main(["--quiet", "atlas", "efficientnet_lite0", "blocks.1", "--images", str(photos),
                 "--out", str(out), "--grid", "3", "--samples", "60", "--size", "32", "--steps", "2",
                 "--reducer", "pca", "--image-size", "64"])
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert names >= {"atlas.png", "atlas_classes.png", "atlas_cells.png", "atlas.json"}
