"""A small microscope site with every part (partial build, the user's photos in class folders, diversity,
tuning, evidence): no page references a file that was not written, dead units are never captioned as
exciting, caches stay out of the published folder, dataset examples avoid the padding."""
from pathlib import Path

import pytest
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
