"""README screenshot: an EfficientNet-Lite0 microscope site built from a folder of photos ->
assets/microscope.png, a channel page with its evidence and clickable connections (partner feature
visualizations), taken by headless Chromium (``tests/viz/chromium_cdp.py``).

The bundled sample photos are written to a temporary folder first and passed as ``images=`` (what
``--images DIR`` does with the user's photos). Two layers, one channel each (their partners get feature
visualizations for the connections), a shorter optimisation than the
default so it finishes in minutes on a laptop CPU.

Usage: .venv/bin/python docs/generate/microscope_screenshot.py [--out assets/microscope.png] [--site DIR]
"""
import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

import featviz as fv
from featviz.microscope import MicroscopeSettings, build_microscope

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "assets" / "microscope.png"))
    ap.add_argument("--site", default=None, help="site folder to build or reuse (default: a temporary one)")
    ap.add_argument("--page", default="channels/blocks.4/0.html")
    ap.add_argument("--width", type=int, default=1100)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "viz"))
    from chromium_cdp import Chromium, find_chromium

    tmp = Path(tempfile.mkdtemp(prefix="featviz-shot-"))
    photos = tmp / "my_photos"
    photos.mkdir()
    images, names = fv.data.sample_images(size=224)
    for image, name in zip(images, names):  # "the user's photos": JPEG files in a folder
        Image.fromarray((image * 255).round().byte().permute(1, 2, 0).numpy()).save(photos / f"{name}.jpg")
    site = Path(args.site) if args.site else tmp / "site"
    settings = MicroscopeSettings(size=96, steps=32, diversity=2, examples=6)
    build_microscope(fv.models.efficientnet_lite0(), ["blocks.2", "blocks.4"], site, settings=settings,
                     channels=1, images=photos)
    with Chromium(find_chromium()) as browser:  # no binary: says to run `make browser-deps`
        browser.viewport(args.width, 900)
        page = browser.open((site / args.page).as_uri())
        assert not page.errors, page.errors
        browser.screenshot(args.out)
    with Image.open(args.out) as shot:
        print(f"{args.out}: {shot.size[0]}x{shot.size[1]} px of {site / args.page}")


if __name__ == "__main__":
    main()
