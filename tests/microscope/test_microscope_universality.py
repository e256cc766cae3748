"""featviz microscope with several models: one site per model, a landing page and a universality page, and
unit pages that link a planted shared unit to its match in the other model."""
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from featviz.microscope import MicroscopeSettings, _store, build_microscopes

FAST = MicroscopeSettings(size=16, steps=2, diversity=0, examples=0, tuning_angles=(), evidence=False)
PERM = [3, 0, 4, 1, 2]  # net_b's channel c is net_a's planted unit PERM[c]


def _net(weight: torch.Tensor) -> nn.Sequential:
    net = nn.Sequential(nn.Conv2d(3, weight.shape[0], 5, padding=2, bias=False), nn.ReLU()).eval()
    with torch.no_grad():
        net[0].weight.copy_(weight)
    net.input_size, net.interesting_layers = 24, ["1"]
    return net


def nets() -> tuple[nn.Module, nn.Module]:
    """net_a: 5 planted units + 2 of its own; net_b: the 5 planted units permuted + 3 of its own."""
    g = torch.Generator().manual_seed(0)
    planted = torch.randn(5, 3, 5, 5, generator=g)
    net_a = _net(torch.cat([planted, torch.randn(2, 3, 5, 5, generator=g)]))
    net_b = _net(torch.cat([planted[PERM], torch.randn(3, 3, 5, 5, generator=g)]))
    return net_a, net_b


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    out = tmp_path_factory.mktemp("sites")
    net_a, net_b = nets()
    build_microscopes({"net_a": net_a, "net_b": net_b}, out, settings=FAST, progress=False)
    return out


def hrefs(page: Path) -> list[str]:
    return re.findall(r'(?:href|src)="([^"#]+)"', page.read_text())


def test_landing_and_universality_pages_link_to_pages_that_exist(sites):
    assert (sites / "net_a" / "index.html").is_file() and (sites / "net_b" / "index.html").is_file()
    for page in ("index.html", "universality.html"):
        links = [h for h in hrefs(sites / page) if not h.startswith("data:")]
        assert links and all((sites / h).is_file() for h in links), page
    index = (sites / "index.html").read_text()
    assert 'href="net_a/index.html"' in index and 'href="net_b/index.html"' in index
    assert _store.read_marker(sites)["written"] == ["index.html", "style.css", "universality.html"]
    assert 'src="net_a/data/1/0/fv.png"' in index and 'src="net_b/data/1/0/fv.png"' in index  # thumbnails
    uni = (sites / "universality.html").read_text()
    assert "› universality" not in uni and uni.count(">universality<") == 1  # said once, not twice


def test_a_planted_unit_is_matched_side_by_side_and_its_page_links_to_its_match(sites):
    html = (sites / "universality.html").read_text()
    for u in range(5):
        assert f'href="net_a/channels/1/{u}.html"' in html
        assert f'href="net_b/channels/1/{PERM.index(u)}.html"' in html
    assert 'src="net_a/data/1/0/fv.png"' in html
    assert html.count("<td>1.00</td>") >= 5  # the planted units: the same filters, r = 1
    page = sites / "net_a" / "channels" / "1" / "0.html"
    text = page.read_text()
    assert "Matches in other models" in text
    target = f"../../../net_b/channels/1/{PERM.index(0)}.html"
    assert f'href="{target}"' in text and (page.parent / target).is_file()
    back = (sites / "net_b" / "channels" / "1" / f"{PERM.index(0)}.html").read_text()
    assert 'href="../../../net_a/channels/1/0.html"' in back


def test_a_rebuild_resumes_and_a_single_model_build_has_no_universality(sites, tmp_path):
    net_a, net_b = nets()
    before = (sites / "net_a" / "data" / "1" / "0" / "meta.json").read_text()
    build_microscopes({"net_a": net_a, "net_b": net_b}, sites, settings=FAST, progress=False)
    assert (sites / "net_a" / "data" / "1" / "0" / "meta.json").read_text() == before
    from featviz.microscope import build_microscope

    build_microscope(net_a, ["1"], tmp_path, settings=FAST, progress=False)
    assert not (tmp_path / "universality.html").exists()
    pages = list((tmp_path / "channels").rglob("*.html"))
    assert pages and all("Matches in other models" not in p.read_text() for p in pages)


def test_bad_names_and_one_model_fail_before_any_work(tmp_path):
    net_a, net_b = nets()
    with pytest.raises(ValueError, match="two or more"):
        build_microscopes({"a": net_a}, tmp_path / "s", settings=FAST, progress=False)
    with pytest.raises(ValueError, match="cannot be a site folder"):
        build_microscopes({"channels": net_a, "b": net_b}, tmp_path / "s", settings=FAST, progress=False)
    assert not (tmp_path / "s").exists()


def test_cli_builds_several_model_files(tmp_path, capsys):
    from featviz.cli import main

    files = []
    for name in ("first", "second"):
        path = tmp_path / f"{name}.py"
        path.write_text("import torch\nfrom torch import nn\ntorch.manual_seed(0)\n"
                        "model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())\n"
                        "model.input_size, model.interesting_layers = 16, ['1']\n")
        files.append(str(path))
    argv = ["microscope", *files, "--size", "16", "--steps", "2", "--examples", "0", "--no-evidence",
            "--out", str(tmp_path / "site"), "--quiet"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "site" / "index.html")
    assert (tmp_path / "site" / "first" / "channels" / "1" / "0.html").is_file()
    page = (tmp_path / "site" / "first" / "channels" / "1" / "0.html").read_text()
    assert 'href="../../../second/channels/1/0.html"' in page  # same seed: the same net
    assert '<span class="model">first</span>' in page  # named as given, not by its class (Sequential)
    assert "2 models" in err


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    """The planted pair built with 2 channels per layer: 3 of the 5 planted pairs touch a built unit."""
    out = tmp_path_factory.mktemp("partial_sites")
    net_a, net_b = nets()
    build_microscopes({"net_a": net_a, "net_b": net_b}, out, settings=FAST, channels=2, progress=False)
    return out


def test_a_partial_build_keeps_every_pair_that_touches_a_built_unit(partial):
    html = (partial / "universality.html").read_text()
    # planted pairs (a:u, b:PERM.index(u)) with a built side: u = 0 (both built), 1 (b:3 not built), 3 (b:0)
    for u in (0, 1, 3):
        row = f'href="net_a/channels/1/{u}.html"'
        assert row in html and f'href="net_b/channels/1/{PERM.index(u)}.html"' in html, u
    assert 'href="net_a/channels/1/4.html"' not in html  # a:4 ~ b:2: neither built
    assert "2 of its 2 responding built net_a units matched" in " ".join(html.split())
    links = [h for h in hrefs(partial / "universality.html") if not h.startswith("data:")]
    assert links and all((partial / h).is_file() for h in links)
    # the unbuilt partner has a short page that links back, and the built unit links to it
    short = (partial / "net_b" / "channels" / "1" / "3.html").read_text()
    assert "A short page" in short and 'href="../../../net_a/channels/1/1.html"' in short
    built = (partial / "net_a" / "channels" / "1" / "1.html").read_text()
    assert 'href="../../../net_b/channels/1/3.html"' in built


def test_when_nothing_matches_each_built_unit_shows_its_best_r_and_control(tmp_path):
    from featviz.circuits.universality import match_units
    from featviz.microscope._examples import bundled_photos

    net_a, _ = nets()
    torch.manual_seed(5)
    other = _net(torch.randn(6, 3, 5, 5))  # unrelated filters
    build_microscopes({"net_a": net_a, "other": other}, tmp_path, settings=FAST, channels=2,
                      min_correlation=0.999, progress=False)
    text = " ".join((tmp_path / "universality.html").read_text().split())
    assert "How close each came" in text
    m = match_units(net_a, "1", other, "1", bundled_photos(24).tensor, progress=False)
    for i in range(2):  # the numbers a reader sees are match_units' own, on the same photos
        r, ctl = float(m.best_correlation[i]), float(m.control_best_correlation[i])
        cells = (f'<td><a href="net_a/channels/1/{i}.html">1:{i}</a></td><td>1:{int(m.best[i])}</td>'
                 f'<td>{r:.2f}</td> <td class="meta">{ctl:.2f}</td>')
        assert cells in text, cells
