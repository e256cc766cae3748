"""featviz.microscope pages: clickable connections with partner thumbnails, output units with class names,
navigation, the jump box, dataset examples from the user's photos (top and bottom, ReLU6 ties, cached)."""
import json
import re
from pathlib import Path

import pytest
import torch
from microscope_helpers import toy_model
from PIL import Image
from torch import nn

from featviz.microscope import MicroscopeSettings, _examples, build_microscope, default_layers

FAST = MicroscopeSettings(size=16, steps=2, diversity=0, examples=2, tuning_angles=(), evidence=False)


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    """The toy model with 2 channels per layer: most connections point outside the built channels."""
    out = tmp_path_factory.mktemp("partial")
    build_microscope(toy_model(), ["relu1", "relu2"], out, settings=FAST, channels=2, progress=False)
    return out


def link_items(html: str) -> list[str]:
    return re.findall(r'<ul class="links">(.*?)</ul>', html, re.S)


def test_every_connection_shows_the_partners_visualization_or_a_placeholder_and_links_to_its_page(partial):
    checked = shown = 0
    forward, back = set(), set()  # (page, target) of links from built pages to short pages, and back
    for page in (partial / "channels").rglob("*.html"):
        html = page.read_text()
        short = "A short page" in html
        for block in link_items(html):
            for item in re.findall(r"<li>(.*?)</li>", block, re.S):
                href = re.search(r'<a href="([^"]+)">', item).group(1)
                thumbs = re.findall(r'src="([^"]+/fv\.png)"', item)
                assert (page.parent / href).is_file(), (page, item)
                if "(short page)" in item:  # a partner: rendered nothing, a placeholder says so
                    assert not thumbs and 'class="unrendered small">not rendered' in item, (page, item)
                else:
                    assert len(thumbs) == 1 or 'class="dead small">no response found' in item, (page, item)
                assert all((page.parent / t).is_file() for t in thumbs)
                target = (page.parent / href).resolve()
                if short:
                    back.add((target, page.resolve()))
                else:
                    checked += 1
                    if "(short page)" in item:
                        forward.add((page.resolve(), target))
                shown += len(thumbs)
    assert checked == 2 * 4 + 2 * 4 and shown > 0  # 2 built channels per layer, top-4 each way
    assert forward and back == forward  # every short page links back to each built page that links to it


def test_connection_strengths_are_multiples_of_the_layer_pairs_mean(partial):
    meta = json.loads((partial / "data" / "_links" / "relu1__relu2" / "meta.json").read_text())
    w = toy_model().conv2.weight.detach()  # adjacent layers: expanded weights = the conv's weights
    norms = w.flatten(2).norm(dim=2)
    d, strengths = 0, meta["upstream"]["0"]
    for s, rel in strengths:
        assert rel == pytest.approx(float(norms[d, s] / norms.mean()), rel=1e-3)
    assert {s for s, _ in strengths} == set(norms[d].nonzero().flatten().tolist())  # its 4 wired inputs
    assert [r for _, r in strengths] == sorted((r for _, r in strengths), reverse=True)
    assert "× average" in (partial / "channels" / "relu2" / "0.html").read_text()


def test_partner_channels_get_short_pages_with_examples_but_no_render(partial):
    manifest = json.loads((partial / "manifest.json").read_text())
    extra = {la["name"]: la["extra"] for la in manifest["layers"]}
    assert extra["relu1"] and all(c >= 2 for c in extra["relu1"])
    for c in extra["relu1"]:  # the layer's photo statistics are computed anyway: its partners get examples
        page = (partial / "channels" / "relu1" / f"{c}.html").read_text()
        assert "is a connection partner of" in page and "Nothing was rendered for it" in page
        assert "Dataset examples" in page and "Strongest inputs" not in page  # no connections of its own
        assert not (partial / "data" / "relu1" / str(c) / "fv.png").exists()
        assert (partial / "data" / "relu1" / str(c) / "top0.jpg").is_file()


def test_every_page_has_the_layer_list_title_and_neighbours(partial):
    for page in partial.rglob("*.html"):
        html = page.read_text()
        assert "EdgesAndCurves" in re.search(r"<title>(.*?)</title>", html).group(1)
        assert html.count('class="layer-list"') == 1 and "relu2.html" in html
    html = (partial / "channels" / "relu1" / "0.html").read_text()
    assert 'href="1.html">channel 1 →' in html
    assert all(re.search(r"<img (?![^>]*alt=)", p.read_text()) is None for p in partial.rglob("*.html"))


def test_index_has_a_jump_box_that_knows_every_unit_and_a_guide(partial):
    html = (partial / "index.html").read_text()
    units = json.loads(re.search(r'id="unit-index">(.*?)</script>', html, re.S).group(1))
    pages = {str(p.relative_to(partial)) for p in (partial / "channels").rglob("*.html")}
    assert set(units.values()) == pages and units["relu2:1"] == "channels/relu2/1.html"
    assert '<form id="jump" class="jump" hidden>' in html  # shown by the script only: no JS, no dead box
    assert "How to read this site" in html and "mean activation over all positions" in html


class Classifier(nn.Module):
    """Two conv channels, then 3 classes with names: an output layer of shape (B, 3)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(2, 3)
        self.input_size, self.labels, self.interesting_layers = 16, ["cat", "dog", "tripod"], ["relu"]

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).mean((2, 3)))


def test_output_units_come_by_default_with_class_names_and_connections(tmp_path):
    model = Classifier()
    assert default_layers(model) == ["relu", "fc"]
    settings = MicroscopeSettings(size=16, steps=2, diversity=2, examples=2, tuning_angles=(), evidence=False)
    build_microscope(model, None, tmp_path, settings=settings, progress=False)
    html = (tmp_path / "channels" / "fc" / "1.html").read_text()
    assert "fc:1 “dog”" in html and "Strongest inputs from relu" in html
    meta = json.loads((tmp_path / "data" / "_links" / "relu__fc" / "meta.json").read_text())
    w = model.fc.weight.detach().abs()  # gradient of a mean-pooled linear readout: weight / positions
    assert [s for s, _ in meta["upstream"]["1"]] == w[1].argsort(descending=True).tolist()


def relu6_net():
    """One ReLU6 channel = 20 * (brightness - 0.5): images brighter than 0.8 all sit at the cap of 6."""
    net = nn.Sequential(nn.Conv2d(3, 1, 1), nn.ReLU6())
    with torch.no_grad():
        net[0].weight.fill_(20 / 3)
        net[0].bias.fill_(-10.0)
    net.input_size = 8
    return net


def photo_folder(folder: Path, levels) -> Path:
    folder.mkdir()
    for i, v in enumerate(levels):
        Image.new("RGB", (8, 8), (round(v * 255),) * 3).save(folder / f"img{i}.png")
    return folder


def test_ties_at_the_relu6_cap_are_ordered_by_the_pre_activation_and_zeros_never_excite(tmp_path):
    levels = [0.9, 0.2, 1.0, 0.85, 0.4, 0.95]  # 0.2 and 0.4 give activation 0
    photos = _examples.image_folder(photo_folder(tmp_path / "photos", levels), 8)
    stats = _examples.layer_stats(relu6_net(), photos, ["1"], tmp_path / "cache", progress=False)["1"]
    _, facts = _examples.example_files(relu6_net(), "1", 0, stats, photos, k=6)
    assert [e["name"] for e in facts["top"]] == ["img2", "img5", "img0", "img3"]
    assert [e["value"] for e in facts["top"]] == [6.0] * 4
    assert [e["name"] for e in facts["bottom"]] == ["img1", "img4"] and facts["pre"]


def test_user_images_stream_in_batches_and_the_activations_are_cached(tmp_path, monkeypatch):
    folder = photo_folder(tmp_path / "photos", [i / 10 for i in range(10)])
    loads = []
    original = _examples.PhotoSet.load
    monkeypatch.setattr(_examples.PhotoSet, "load", lambda s, idx: loads.append(len(idx)) or original(s, idx))
    build_microscope(relu6_net(), ["1"], tmp_path / "site", settings=FAST, images=folder, progress=False)
    assert max(loads) <= 32 and sum(loads[:1]) == 10  # one batch of 10 for the statistics, then crops only
    loads.clear()
    more = MicroscopeSettings(size=16, steps=2, diversity=0, examples=3, tuning_angles=(), evidence=False)
    build_microscope(relu6_net(), ["1"], tmp_path / "site", settings=more, images=folder, progress=False)
    assert loads == [3, 3]  # statistics from the cache: only the 3 top and 3 bottom photos are read
    page = (tmp_path / "site" / "channels" / "1" / "0.html").read_text()
    assert page.count('loading="lazy"') >= 6 and "img9" in page and "10 of your photos" in page
