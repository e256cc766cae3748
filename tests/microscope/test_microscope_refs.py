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

from featviz.microscope import MicroscopeSettings, build_microscope

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


def dark_detector() -> torch.nn.Module:
    """relu(1 - mean of a 9 x 9 patch), zero padding 4: the zeros beyond the edge excite it most, so without
    the padding rule every top example would be a corner sliver."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 9, padding=4), torch.nn.ReLU())
    with torch.no_grad():
        net[0].weight.fill_(-1 / 243)
        net[0].bias.fill_(1.0)
    net.input_size = 24
    return net


def hand_inside(i: int, n: int = 24, k: int = 9, pad: int = 4) -> float:
    """Fraction of a k-wide field at map index i (stride 1, padding pad) that lies inside n pixels."""
    lo, hi = i - pad, i - pad + k  # pixel edges, image 0 .. n
    return (min(hi, n) - max(lo, 0)) / k


def test_positions_whose_field_is_mostly_padding_are_not_examples(tmp_path):
    from featviz.microscope import _examples

    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(4):
        Image.new("RGB", (24, 24), (150 + 20 * k,) * 3).save(folder / f"bright{k}.png")
    photos = _examples.image_folder(folder, 24)
    net = dark_detector()
    raw = net(photos.load(range(4)))[:, 0].flatten(1).argmax(1)  # without the rule: the corner, every photo
    assert raw.tolist() == [0] * 4
    stats = _examples.layer_stats(net, photos, ["1"], tmp_path / "cache", progress=False)["1"]
    inside = [[hand_inside(i) * hand_inside(j) for j in range(24)] for i in range(24)]
    assert stats.skipped == sum(f < 0.75 for row in inside for f in row)  # best-placed position: 1.0
    for flat in stats.top_pos[:, 0].tolist():
        assert inside[flat // 24][flat % 24] >= 0.75
    _, facts = _examples.example_files(net, "1", 0, stats, photos, k=2)
    assert facts["skipped"] == stats.skipped and facts["positions"] == 576


def test_photos_are_named_by_their_class_folder_and_a_photo_in_both_lists_is_explained(site):
    page = (site / "channels" / "1" / "0.html").read_text()
    assert '<span class="label">stripes</span>' in page or '<span class="label">plain</span>' in page
    meta = json.loads((site / "data" / "1" / "0" / "meta.json").read_text())
    ex = meta["parts"]["examples"]["facts"]["examples"]
    assert all(e["label"] == e["name"].split("/")[0] and e["label_from"] == "folder"
               for e in ex["top"] + ex["bottom"])
    for p in (site / "channels").rglob("*.html"):
        m = json.loads((site / "data" / p.parent.name / p.stem / "meta.json").read_text())
        e = m["parts"].get("examples", {}).get("facts", {}).get("examples", {})
        both = {x["name"] for x in e.get("top", [])} & {x["name"] for x in e.get("bottom", [])}
        assert bool(both) == ("in both lists" in p.read_text()), p


def test_without_class_folders_the_models_top_prediction_is_shown_as_such(tmp_path):
    from featviz.microscope import _examples

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3))
    net.input_size, net.labels = 16, ["cat", "dog", "fish"]
    photos = _examples.bundled_photos(16)
    stats = _examples.layer_stats(net, photos, ["1"], tmp_path, progress=False)["1"]
    _, facts = _examples.example_files(net, "1", 0, stats, photos, k=3)
    with torch.no_grad():
        probs = net(photos.tensor).softmax(1)
    for e in facts["top"]:
        i = photos.names.index(e["name"])
        assert e["label_from"] == "model" and e["label"] == net.labels[int(probs[i].argmax())]
        assert e["p"] == pytest.approx(float(probs[i].max()), abs=1e-3)


def test_a_photo_that_both_excites_and_inhibits_is_explained(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 1), torch.nn.ReLU())  # R - G: + on red, - on green
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, -1.0, 0.0])[None, :, None, None])
        net[0].bias.zero_()
    net.input_size = 16
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(2):
        img = Image.new("RGB", (16, 16), (0, 200, 0))
        img.paste((200 + 20 * k, 0, 0), (0, 0, 8, 16))  # left half red, right half green
        img.save(folder / f"half{k}.png")
    Image.new("RGB", (16, 16), (0, 0, 200)).save(folder / "blue.png")  # R - G = 0: in neither list
    settings = MicroscopeSettings(size=16, steps=2, diversity=0, examples=2, tuning_angles=(), evidence=False)
    build_microscope(net, ["1"], tmp_path / "site", settings=settings, images=folder, progress=False)
    text = " ".join((tmp_path / "site" / "channels" / "1" / "0.html").read_text().split())
    assert "half0, half1 are in both lists" in text and text.count("also inhibits it") == 2
    assert "blue" not in text


def test_the_evidence_inputs_are_labelled_linked_and_counted_against_the_sites_photos(site):
    import re

    for page in (site / "channels" / "3").glob("*.html"):
        html = page.read_text()
        if "A short page" in html:
            continue
        meta = json.loads((site / "data" / "3" / page.stem / "meta.json").read_text())
        up = meta["parts"]["evidence"]["facts"]["evidence"]["upstream"]
        block = html[html.index('id="by-attribution"'):html.index('<table class="evidence">')]
        assert f"over {up['selected_on']} of the site's 6 photos" in " ".join(block.split())
        items = re.findall(r"<li>(.*?)</li>", block, re.S)
        named = [c for c, _ in up["excitatory"] + up["inhibitory"]]
        assert len(items) == len(named)
        for c, item in zip(named, items):  # each named unit linked to its page, in the facts' order
            assert f'<a href="../1/{c}.html">' in item and (page.parent.parent / "1" / f"{c}.html").is_file()
        assert 'id="by-weight"' in html and 'href="#by-attribution"' in html


def test_the_pager_says_when_it_enters_short_pages_and_the_layer_grid_shows_them(site):
    import re

    entered = 0
    for layer in ("1", "3"):
        folder = site / "channels" / layer
        short = {p.stem for p in folder.glob("*.html") if "A short page" in p.read_text()}
        grid = (site / "layers" / f"{layer}.html").read_text()
        assert all(f'href="../channels/{layer}/{c}.html"' in grid for c in short)
        for page in folder.glob("*.html"):
            pager = re.search(r'<nav class="pager".*?</nav>', page.read_text(), re.S).group(0)
            for href, text in re.findall(r'<a href="(\d+)\.html">([^<]*)</a>', pager):
                assert ("(short page)" in text) == (href in short), (page, href, text)
                entered += href in short
    assert entered  # the partial build's pager does walk into short pages


def test_a_unit_that_ignores_every_grating_has_no_preferred_orientation(tmp_path):
    net = red_net()  # off for every grating (grey, black and white: R - G - B <= 0)
    settings = MicroscopeSettings(size=16, steps=2, diversity=0, examples=0, tuning_angles=(0, 45, 90),
                                  evidence=False)
    build_microscope(net, ["1"], tmp_path, settings=settings, channels=1, progress=False)
    page = " ".join((tmp_path / "channels" / "1" / "0.html").read_text().split())
    assert "does not respond to any of these gratings" in page and "preferred 0°" not in page
