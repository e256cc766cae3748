"""Partner short pages (issue 21): connection partners render nothing by default, say what they are, link back
to every built page that names them and show a placeholder, not a broken image; ``partner_renders=True``
(``--partner-renders``) brings back a feature visualization each, and sites built that way resume."""
import dataclasses
import json
import re
import shlex

import pytest
from microscope_helpers import EVIDENCE_SETTINGS, evidence_net, file_hashes, missing_refs, toy_model

from featviz.cli import main
from featviz.microscope import MicroscopeSettings, _channel, _examples, build_microscope

LAYERS = ["relu1", "relu2"]
SETTINGS = MicroscopeSettings(size=32, steps=3, examples=2, evidence=False)  # flags the CLI has: its command


def counting_renders(monkeypatch) -> list[str]:
    """Every objective the microscope's renders optimise (``_channel.render``), as a string, in order."""
    calls, real = [], _channel.render

    def render(model, objective, *args, **kwargs):
        calls.append(str(objective))
        return real(model, objective, *args, **kwargs)

    monkeypatch.setattr(_channel, "render", render)
    return calls


def partners_of(site) -> dict[tuple[str, int], set[str]]:
    """Independent of the pages: each partner (from the connections' meta.json) -> the built pages that
    name it (paths relative to the site)."""
    named: dict[tuple[str, int], set[str]] = {}
    for src, dst in zip(LAYERS, LAYERS[1:]):
        meta = json.loads((site / "data" / "_links" / f"{src}__{dst}" / "meta.json").read_text())
        for d, lst in meta["upstream"].items():
            for s, _ in lst:
                named.setdefault((src, s), set()).add(f"channels/{dst}/{d}.html")
        for s, lst in meta["downstream"].items():
            for d, _ in lst:
                named.setdefault((dst, d), set()).add(f"channels/{src}/{s}.html")
    return {u: pages for u, pages in named.items() if u[1] >= 2}  # channels 0, 1 are built


def note_links(site, layer: str, c: int) -> set[str]:
    html = (site / "channels" / layer / f"{c}.html").read_text()
    note = re.search(r'<div class="note">(.*?)</div>', html, re.S).group(1)
    return {str((site / "channels" / layer / h).resolve().relative_to(site.resolve()))
            for h in re.findall(r'href="([^"]+)"', note)}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A toy site of 2 channels per layer, built with a count of the renders (the partners: about 10)."""
    out = tmp_path_factory.mktemp("partners")
    with pytest.MonkeyPatch.context() as mp:
        calls = counting_renders(mp)
        build_microscope(toy_model(), LAYERS, out, settings=SETTINGS, channels=2, progress=False)
    return out, calls


def test_partners_render_nothing_only_the_requested_channels_do(site):
    out, calls = site
    assert len(partners_of(out)) >= 6
    requested = {f"{n}:{c}" for n in LAYERS for c in (0, 1)}
    assert {re.search(r"\w+:\d+", o).group(0) for o in calls} == requested
    assert len(calls) <= 4 * len(requested)  # fv and diversity each (and retries from a photo for dead ones)
    for layer, c in partners_of(out):
        assert not (out / "data" / layer / str(c) / "fv.png").exists()


def test_each_partner_page_says_what_it_is_and_links_back_to_every_page_that_names_it(site):
    out, _ = site
    for (layer, c), pages in partners_of(out).items():
        html = (out / "channels" / layer / f"{c}.html").read_text()
        assert "A short page" in html and "is a connection partner of" in html
        assert "not built in this site" in html
        assert note_links(out, layer, c) == pages, (layer, c)
        for page in pages:  # and each of those pages links to it
            assert f'href="../{layer}/{c}.html"' in (out / page).read_text()


def test_no_page_shows_a_missing_image_and_partners_get_a_placeholder(site):
    out, _ = site
    assert missing_refs(out) == []
    for (layer, c) in partners_of(out):
        assert 'class="unrendered big"' in (out / "channels" / layer / f"{c}.html").read_text()
        grid = (out / "layers" / f"{layer}.html").read_text()
        cell = re.search(rf'<a class="cell" href="../channels/{layer}/{c}.html">(.*?)</a>', grid, re.S)[1]
        assert "<img" not in cell and "not rendered" in cell


def test_the_command_on_a_partner_page_builds_it_in_full_and_keeps_the_built_units(site, tmp_path):
    out, _ = site
    layer, c = min(partners_of(out), key=lambda u: u[1])
    work = tmp_path / "site"
    work.mkdir()
    for path, _ in file_hashes(out).items():  # a copy of the site, so the module's site stays as built
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes((out / path).read_bytes())
    before = file_hashes(work / "data" / "relu2" / "0")
    html = (out / "channels" / layer / f"{c}.html").read_text()
    cli = re.search(r"<code>(featviz microscope [^<]*)</code>", html).group(1)
    args = shlex.split(cli.replace(str(out), str(work)))[1:]
    assert args[0] == "microscope" and f"--channels {c + 1}" in cli
    assert main(["--quiet", *args[:1], "edges_and_curves", *args[2:]]) == 0  # MODEL: the toy's zoo name
    page = (work / "channels" / layer / f"{c}.html").read_text()
    assert "A short page" not in page and (work / "data" / layer / str(c) / "fv.png").is_file()
    assert file_hashes(work / "data" / "relu2" / "0") == before  # a built unit is kept, not rebuilt


def test_partner_renders_brings_back_a_feature_visualization_per_partner(tmp_path, monkeypatch):
    opt_in = dataclasses.replace(SETTINGS, partner_renders=True)
    calls = counting_renders(monkeypatch)
    build_microscope(toy_model(), LAYERS, tmp_path, settings=opt_in, channels=2, progress=False)
    partners = partners_of(tmp_path)
    assert {f"{n}:{c}" for n, c in partners} <= {re.search(r"\w+:\d+", o).group(0) for o in calls}
    for layer, c in partners:
        assert (tmp_path / "data" / layer / str(c) / "fv.png").is_file()
        page = (tmp_path / "channels" / layer / f"{c}.html").read_text()
        assert f'src="../../data/{layer}/{c}/fv.png"' in page and "was rendered" in page
    assert missing_refs(tmp_path) == []
    # the requested units' keys do not depend on the option: a default rebuild renders nothing and keeps
    # (and shows) the partners' feature visualizations
    calls.clear()
    build_microscope(toy_model(), LAYERS, tmp_path, settings=SETTINGS, channels=2, progress=False)
    assert calls == []
    layer, c = next(iter(partners))
    assert f'src="../../data/{layer}/{c}/fv.png"' in (tmp_path / "channels" / layer / f"{c}.html").read_text()


def test_partner_examples_never_cost_a_pass_over_the_photos_of_their_own(tmp_path, monkeypatch):
    build_microscope(toy_model(), LAYERS, tmp_path, settings=SETTINGS, channels=2, progress=False)
    layer, c = next(iter(partners_of(tmp_path)))
    passes, real = [], _examples._streamed_stats
    monkeypatch.setattr(_examples, "_streamed_stats", lambda hm, photos, layers, *a: passes.append(layers)
                        or real(hm, photos, layers, *a))
    for f in (tmp_path / ".featviz-cache" / "acts").iterdir():  # no statistics cached any more ...
        f.unlink()
    for f in (tmp_path / "data" / layer / str(c)).iterdir():  # ... and a partner without its examples
        f.unlink()
    (tmp_path / "data" / layer / str(c)).rmdir()
    build_microscope(toy_model(), LAYERS, tmp_path, settings=SETTINGS, channels=2, progress=False)
    assert passes == []  # the built channels need no statistics: none computed for the partner alone
    page = (tmp_path / "channels" / layer / f"{c}.html").read_text()
    assert "is a connection partner of" in page and "Dataset examples" not in page


def test_evidence_partners_link_back_to_the_pages_whose_evidence_names_them(tmp_path, monkeypatch):
    calls = counting_renders(monkeypatch)
    build_microscope(evidence_net(), ["1", "3"], tmp_path, settings=EVIDENCE_SETTINGS, channels=2,
                     progress=False)
    assert {re.search(r"\w+:\d+", o).group(0) for o in calls} <= {"1:0", "1:1", "3:0", "3:1"}
    named = {}
    for d in (0, 1):  # independent of the pages: the evidence facts of the built units of layer 3
        meta = json.loads((tmp_path / "data" / "3" / str(d) / "meta.json").read_text())
        up = meta["parts"]["evidence"]["facts"]["evidence"]["upstream"]
        for s, _ in up["excitatory"] + up["inhibitory"]:
            if s >= 2:
                named.setdefault(s, set()).add(f"channels/3/{d}.html")
    assert named
    for s, pages in named.items():
        html = (tmp_path / "channels" / "1" / f"{s}.html").read_text()
        assert pages <= {str((tmp_path / "channels" / "1" / h).resolve().relative_to(tmp_path.resolve()))
                         for h in re.findall(r'href="([^"]+)"', html.split('<div class="note">')[1]
                                             .split("</div>")[0])}
        assert "by attribution" in html
    assert missing_refs(tmp_path) == []


def test_the_cli_flag_turns_partner_renders_on(tmp_path, monkeypatch):
    from pathlib import Path

    import featviz._commands as commands

    seen = []

    def fake_build(model, layers, out, *, settings, **kw):  # only the settings matter here
        seen.append(settings.partner_renders)
        (Path(out) / "index.html").parent.mkdir(parents=True, exist_ok=True)
        (Path(out) / "index.html").write_text("")
        return Path(out) / "index.html"

    monkeypatch.setattr(commands, "build_microscope", fake_build)
    base = ["--quiet", "microscope", "edges_and_curves", "--layers", "relu1"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--partner-renders", "--out", str(tmp_path / "b")]) == 0
    assert seen == [False, True]
