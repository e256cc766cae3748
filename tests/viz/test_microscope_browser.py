"""The microscope site in a real browser: headless Chromium follows every link from file://index.html."""
from urllib.parse import urldefrag

import numpy as np
import pytest
from chromium_cdp import Chromium, find_or_install_chromium
from microscope_helpers import toy_site


@pytest.fixture(scope="module")
def chromium():
    binary = find_or_install_chromium()
    if binary is None:
        pytest.skip("chromium is not installed and `apt-get install -y chromium` failed here "
                    "(needs root and a Debian package mirror); the browser test needs it")
    return binary


@pytest.fixture(scope="module")
def crawl(chromium, tmp_path_factory):
    """The toy site (2 layers, 15 channels), every page reachable from index.html visited in Chromium."""
    out = toy_site(tmp_path_factory)
    root = (out / "index.html").as_uri()
    pages, queue = {}, [root]
    with Chromium(chromium) as browser:
        while queue:
            url = queue.pop()
            if url in pages:
                continue
            pages[url] = browser.open(url)
            queue += [urldefrag(u).url for u in pages[url].links if u.startswith(out.as_uri())]
        browser.open(root)
        shot = tmp_path_factory.getbasetemp() / "microscope-screenshot.png"  # kept as a test artifact
        browser.screenshot(str(shot))
    return out, pages, shot


def test_every_page_is_reachable_from_the_index(crawl):
    out, pages, _ = crawl
    on_disk = {p.as_uri() for p in out.rglob("*.html")}
    html_links = {u for u in pages if u.endswith(".html")}
    assert html_links == on_disk


def test_every_image_loads(crawl):
    _, pages, _ = crawl
    broken = [(url, src) for url, page in pages.items() for src, width in page.images if width == 0]
    assert broken == []
    assert sum(len(p.images) for p in pages.values()) > 15 * 3  # the channel pages do show images


def test_no_page_has_console_errors(crawl):
    _, pages, _ = crawl
    assert {url: page.errors for url, page in pages.items() if page.errors} == {}


def test_screenshot_is_a_png_of_the_index(crawl):
    _, _, path = crawl
    from PIL import Image

    with Image.open(path) as shot:
        assert shot.format == "PNG" and shot.size[0] == 1200
        assert len(np.unique(np.asarray(shot.convert("L")))) > 10  # not a blank page
