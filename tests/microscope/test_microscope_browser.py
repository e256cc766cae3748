"""The microscope site in a real browser: headless Chromium follows every link from file://index.html at a
desktop width (1400 px) and a phone width (390 px), and measures what a reader would meet."""
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import numpy as np
import pytest
import torch
from chromium_cdp import SKIP_REASON, Chromium, find_chromium
from microscope_helpers import EVIDENCE_SETTINGS, evidence_net, toy_model, toy_site
from test_microscope_universality import nets as planted_nets

from featviz.microscope import MicroscopeSettings, build_microscope, build_microscopes

FAST = MicroscopeSettings(size=16, steps=2, diversity=0, examples=0, tuning_angles=(), evidence=False)

WIDTHS = {"desktop": (1400, False), "phone": (390, True)}

# What a reader meets on the page: sideways overflow, visible text under 12 px or under 4.5:1 contrast,
# images without alt text, and each connection's (has a link, shows the partner) pair (its feature
# visualization, "no response found" or, for a partner that rendered nothing, a "not rendered" placeholder).
_MEASURE_JS = """
(() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = c => { const v = c.slice(0, 3).map(x => { x /= 255;
      return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const background = el => { for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c; } return [255, 255, 255]; };
  const small = [], low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || el.closest("script") || !el.checkVisibility()) continue;
    const cs = getComputedStyle(el), text = node.textContent.trim().slice(0, 30);
    if (parseFloat(cs.fontSize) < 12) small.push(text + " " + cs.fontSize);
    const a = lum(rgb(cs.color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push(text + " " + ratio.toFixed(2));
  }
  return {overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
          placeholders: document.querySelectorAll(".unrendered").length,
          small: small, low: low,
          figures: Array.from(document.images).filter(i => i.src.endsWith(".svg"))
                                             .map(i => [i.src, i.getBoundingClientRect().width]),
          noAlt: Array.from(document.images).filter(i => !(i.getAttribute("alt") || "").trim())
                                            .map(i => i.src),
          connections: Array.from(document.querySelectorAll("ul.links:not(.matches) > li")).map(li => [
            !!li.querySelector("a[href$='.html']"),
            !!li.querySelector("img[src$='fv.png']") || !!li.querySelector(".dead, .unrendered")])};
})()
"""


@pytest.fixture(scope="module")
def chromium():
    binary = find_chromium()
    if binary is None:
        pytest.skip(SKIP_REASON)
    return binary


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """The full toy site (2 layers, 15 channels), a partial one (2 channels per layer: most connections
    lead to short pages of partner channels; with every --extras), a tiny net's site with the evidence section
    and a partial two-model site."""
    partial = tmp_path_factory.mktemp("partial_site")
    build_microscope(toy_model(), ["relu1", "relu2"], partial,
                     settings=MicroscopeSettings(size=32, steps=4, evidence=False,
                                                 extras=("caricature", "groups", "atlas")), channels=2,
                     progress=False)
    evidence = tmp_path_factory.mktemp("evidence_site")
    build_microscope(evidence_net(), ["1", "3"], evidence, settings=EVIDENCE_SETTINGS, channels=2,
                     progress=False)
    assert "<h2>Evidence</h2>" in (evidence / "channels" / "3" / "0.html").read_text()
    models = tmp_path_factory.mktemp("two_models")  # a partial multi-model site: short match pages
    build_microscopes(dict(zip(("net_a", "net_b"), planted_nets())), models, settings=FAST, channels=2,
                      progress=False)
    assert "<h2>Activation atlas</h2>" in (partial / "layers" / "relu2.html").read_text()
    assert "<h2>Caricature</h2>" in (partial / "channels" / "relu1" / "0.html").read_text()
    return {"full": toy_site(tmp_path_factory), "partial": partial, "evidence": evidence, "models": models}


@pytest.fixture(scope="module")
def crawl(chromium, sites, tmp_path_factory):
    """Every page reachable from each site's index.html, visited at each width: (site, width) -> pages."""
    visits, shots = {}, {}
    with Chromium(chromium) as browser:
        for name, out in sites.items():
            for width_name, (width, mobile) in WIDTHS.items():
                browser.viewport(width, mobile=mobile)
                root = (out / "index.html").as_uri()
                pages, queue = {}, [root]
                while queue:
                    url = queue.pop()
                    if url in pages:
                        continue
                    page = browser.open(url)
                    page.measured = browser.evaluate(_MEASURE_JS)
                    pages[url] = page
                    queue += [urldefrag(u).url for u in page.links
                              if u.startswith(out.as_uri()) and u.endswith(".html")]
                visits[(name, width_name)] = pages
                if name == "full":
                    browser.open(root)
                    shots[width_name] = tmp_path_factory.getbasetemp() / f"microscope-{width_name}.png"
                    browser.screenshot(str(shots[width_name]))  # kept as test artifacts
    return visits, shots


def _path(url: str) -> Path:
    return Path(unquote(urlparse(url).path))


def test_every_page_is_reachable_from_the_index(crawl, sites):
    visits, _ = crawl
    for (name, _), pages in visits.items():
        assert set(pages) == {p.as_uri() for p in sites[name].rglob("*.html")}


def test_every_link_and_image_resolves(crawl):
    visits, _ = crawl
    for pages in visits.values():
        broken = [(url, src) for url, page in pages.items() for src, width in page.images if width == 0]
        dead_links = [(url, u) for url, page in pages.items() for u in page.links
                      if u.startswith("file:") and not _path(urldefrag(u).url).exists()]
        assert broken == [] and dead_links == []
        shown = sum(len(p.images) + p.measured["placeholders"] for p in pages.values())  # a partner that
        assert shown >= 2 * len(pages)  # rendered nothing shows a "not rendered" placeholder, no image


def test_no_page_has_console_errors(crawl):
    visits, _ = crawl
    for pages in visits.values():
        assert {url: page.errors for url, page in pages.items() if page.errors} == {}


@pytest.mark.parametrize("width", list(WIDTHS))
def test_nothing_scrolls_sideways_and_text_is_readable(crawl, width):
    visits, _ = crawl
    for (_, w), pages in visits.items():
        if w != width:
            continue
        for url, page in pages.items():
            m = page.measured
            assert (m["overflow"], m["small"], m["low"], m["noAlt"]) == (0, [], [], []), url


def test_every_connection_has_a_thumbnail_and_a_link(crawl):
    visits, _ = crawl
    for (name, _), pages in visits.items():
        connections = [c for page in pages.values() for c in page.measured["connections"]]
        assert (connections or name == "models") and all(link and thumb for link, thumb in connections)


def test_the_jump_box_goes_to_a_unit(chromium, sites):
    with Chromium(chromium) as browser:
        browser.open((sites["full"] / "index.html").as_uri())
        visible = browser.evaluate("!document.getElementById('jump').hidden")
        browser.evaluate("document.getElementById('jump-input').value = 'relu2:3';"
                         "document.getElementById('jump').requestSubmit(); 0")
        import time

        href, deadline = "", time.monotonic() + 30  # generous: the machine may be busy
        while not href.endswith("channels/relu2/3.html") and time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                href = browser.evaluate("location.href")
            except RuntimeError:  # the page is between documents
                pass
    assert visible and href.endswith("channels/relu2/3.html")


def test_screenshots_are_pngs_of_the_index(crawl):
    _, shots = crawl
    from PIL import Image

    for width_name, path in shots.items():
        with Image.open(path) as shot:
            assert shot.format == "PNG" and shot.size[0] == WIDTHS[width_name][0]
            assert len(np.unique(np.asarray(shot.convert("L")))) > 10  # not a blank page


def dotted_net():
    """Layers named blocks.0.relu and blocks.1.relu (8 channels each): short names for the jump box."""
    from collections import OrderedDict

    from torch import nn

    def block(c_in):
        return nn.Sequential(OrderedDict(conv=nn.Conv2d(c_in, 8, 3, padding=1), relu=nn.ReLU()))

    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict(blocks=nn.Sequential(block(3), block(8))))
    net.input_size = 16
    return net


@pytest.fixture(scope="module")
def dotted(tmp_path_factory):
    out = tmp_path_factory.mktemp("dotted_site")
    build_microscope(dotted_net(), ["blocks.0.relu", "blocks.1.relu"], out, settings=FAST, channels=1,
                     progress=False)
    return out


JUMPS = {  # query -> the page it opens, or words of the message it shows
    "": "type a unit",
    "2": "give a layer and a channel",
    "blocks.1.relu:0": "channels/blocks.1.relu/0.html",
    "blocks.1:0": "channels/blocks.1.relu/0.html",       # a short layer name
    "blocks.1 0": "channels/blocks.1.relu/0.html",       # a space instead of ':'
    "blocks.0": "layers/blocks.0.relu.html",             # a layer alone: its page
    "blocks.1:9": "has channels 0 to 7",
    "blocks 1": "could be",                              # ambiguous: blocks.0.relu or blocks.1.relu
    "conv:1": "no layer called conv",
}


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_jump_box_resolves_short_names_and_says_what_is_missing(chromium, dotted, width):
    import json

    manifest = json.loads((dotted / "manifest.json").read_text())["layers"][1]
    missing = min(set(range(8)) - set(manifest["channels"]) - set(manifest["extra"]))  # a unit without a page
    jumps = {**JUMPS, f"blocks.1:{missing}": "not built in this site"}
    with Chromium(chromium) as browser:
        browser.viewport(WIDTHS[width][0], mobile=WIDTHS[width][1])
        browser.open((dotted / "index.html").as_uri())
        got = {q: browser.evaluate(f"resolveUnit({json.dumps(q)})") for q in jumps}
        browser.evaluate(f"document.getElementById('jump-input').value = 'blocks.1:{missing}';"
                         "document.getElementById('jump').requestSubmit(); 0")
        shown = browser.evaluate("document.getElementById('jump-miss').textContent")
        overflow = browser.evaluate("document.documentElement.scrollWidth"
                                    " - document.documentElement.clientWidth")
    for q, want in jumps.items():
        r = got[q]
        if want.endswith(".html"):
            assert r.get("href") == want and (dotted / want).is_file(), (q, r)
        else:
            assert "href" not in r and want in r["message"], (q, r)
    assert f"blocks.1.relu:{missing} is a unit of this model but not built in this site (built: 0" in shown
    assert overflow == 0


def svg_text_px(path: Path, shown_width: float) -> float:
    """The smallest font size in an SVG figure, in CSS px, when the figure is shown ``shown_width`` px wide
    (its viewBox width maps onto that)."""
    import re

    head = path.read_text()
    view_w = float(re.search(r'viewBox="[\d.-]+ [\d.-]+ ([\d.]+) [\d.]+"', head).group(1))
    sizes = [float(v) for v in re.findall(r"font[^;\"]*?([\d.]+)px", head)]
    assert sizes, f"{path}: no text elements (svg.fonttype should be 'none')"
    return min(sizes) * shown_width / view_w


def test_figures_are_svg_shown_at_their_drawn_size_with_text_of_12_px_or_more(crawl):
    visits, _ = crawl
    seen = set()
    for (_, width), pages in visits.items():
        for url, page in pages.items():
            for src, shown in page.measured["figures"]:
                path = _path(src)
                seen.add(path.name)
                assert svg_text_px(path, shown) >= 12, (url, width, src, shown)
    assert {"tuning.svg", "evidence0.svg", "evidence3.svg"} <= seen
