"""A small microscope site with every part (partial build, the user's photos in class folders, diversity,
tuning, evidence): no page references a file that was not written, dead units are never captioned as
exciting, caches stay out of the published folder, dataset examples avoid the padding."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from microscope_helpers import evidence_net, missing_refs
from PIL import Image

from featviz.viz.microscope import MicroscopeSettings, build_microscope

SETTINGS = MicroscopeSettings(size=16, steps=2, diversity=2, examples=2, tuning_angles=(0, 90),
                              evidence_random=3, evidence_photos=4)


def class_photos(folder: Path) -> Path:
    """Six photos in two class folders ('stripes', 'plain')."""
    for k in range(3):
        (folder / "stripes").mkdir(parents=True, exist_ok=True)
        (folder / "plain").mkdir(parents=True, exist_ok=True)
        img = Image.new("RGB", (40, 40), (200, 40 * k, 20))
        for x in range(0, 40, 4 + k):
            for y in range(40):
                img.putpixel((x, y), (0, 0, 0))
        img.save(folder / "stripes" / f"s{k}.png")
        Image.new("RGB", (40, 40), (30 + 60 * k, 120, 200)).save(folder / "plain" / f"p{k}.png")
    return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    photos = class_photos(tmp_path_factory.mktemp("photos"))
    out = tmp_path_factory.mktemp("site")
    build_microscope(evidence_net(), ["1", "3"], out, settings=SETTINGS, channels=2, images=photos,
                     progress=False)
    return out


def test_no_page_references_a_file_that_was_not_written(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 6 and missing_refs(site) == []
    short = [p for p in (site / "channels").rglob("*.html") if "A short page" in p.read_text()]
    assert short  # the partial build has short pages, checked too


def test_caches_stay_in_one_unlinked_cache_folder(site):
    cached = sorted(p.relative_to(site) for p in site.rglob("*.pt"))
    assert cached and all(p.parts[0] == ".featviz-cache" for p in cached)  # activations and curve scans
    assert {p.parts[1] for p in cached} == {"acts", "evidence"}
    assert all(".featviz-cache" not in p.read_text() for p in site.rglob("*.html"))


class Gate(torch.nn.Module):
    """ReLU as a function call: render's redirect (ReLU modules only) cannot lift a unit that is off."""

    def forward(self, x):
        return torch.nn.functional.relu(x)


def red_net() -> torch.nn.Module:
    """Channel 0 responds only to saturated red (10 (R - G - B) - 8 > 0): off for every noise image near
    mid-grey, so the optimisation from noise gets no gradient. Channel 1 can never respond (bias -20)."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), Gate())
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[10.0, -10, -10], [10, -10, -10]])[:, :, None, None])
        net[0].bias.copy_(torch.tensor([-8.0, -20.0]))
    net.input_size = 32
    return net


def hand_mean(image: torch.Tensor, c: int) -> float:
    """Channel c's mean activation, computed by hand from the planted weights."""
    r, g, b = image
    return float(torch.relu(10 * (r - g - b) - (8 if c == 0 else 20)).mean())


def test_a_unit_dead_from_noise_is_optimised_from_its_top_photo_and_no_tile_lies(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    red = Image.new("RGB", (32, 32), (128, 128, 128))
    red.paste((250, 5, 5), (8, 8, 20, 20))
    red.save(photos / "red_patch.png")
    Image.new("RGB", (32, 32), (40, 160, 90)).save(photos / "green.png")
    settings = MicroscopeSettings(size=16, steps=16, diversity=2, examples=2, tuning_angles=(),
                                  evidence=False)
    build_microscope(red_net(), ["1"], tmp_path / "site", settings=settings, images=photos, progress=False)
    meta = json.loads((tmp_path / "site" / "data" / "1" / "0" / "meta.json").read_text())
    fv_facts = meta["parts"]["fv"]["facts"]
    assert fv_facts["start"]["name"] == "red_patch" and fv_facts["start"]["found"] and not fv_facts["dead"]
    image = torch.from_numpy(np.asarray(Image.open(tmp_path / "site" / "data" / "1" / "0" / "fv.png"),
                                        dtype=np.float32) / 255).permute(2, 0, 1)
    assert hand_mean(image, 0) > 0
    page = (tmp_path / "site" / "channels" / "1" / "0.html").read_text()
    assert 'src="../../data/1/0/fv.png"' in page and "Started from the photo" in page
    # every diversity tile shown excites the unit (the planted weights, by hand)
    div = meta["parts"]["diversity"]["facts"]["diversity"]
    tiles = np.asarray(Image.open(tmp_path / "site" / "data" / "1" / "0" / "diversity.png"), dtype=np.float32)
    tiles = torch.from_numpy(tiles / 255).permute(2, 0, 1)
    assert tiles.shape[-1] == div["kept"] * 18 - 2 and div["kept"] >= 1
    assert all(hand_mean(tiles[:, :, 18 * k:18 * k + 16], 0) > 0 for k in range(div["kept"]))
    # the unit nothing excites: "no response found", and the page does not claim photos excite it
    never = (tmp_path / "site" / "channels" / "1" / "1.html").read_text()
    assert "no response found" in never and "Photos do excite it" not in never
    assert "diversity.png" not in never and "No photo makes this channel respond" in never
