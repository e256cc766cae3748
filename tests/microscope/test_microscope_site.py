"""featviz.microscope's site folder: never deletes what it did not write, umask modes, lock, stale pages,
settings changes, train-mode models, arguments checked before any work, and the CLI around it."""
import json
import os
import re
import stat

import pytest
import torch
from microscope_helpers import toy_model
from torch import nn

from featviz import _io
from featviz.microscope import MicroscopeSettings, _channel, _store, build_microscope

FAST = MicroscopeSettings(size=16, steps=2, diversity=0, examples=0, tuning_angles=(), evidence=False)


def build(out, layers=("relu1",), channels=1, settings=FAST, model=None, **kwargs):
    return build_microscope(model or toy_model(), list(layers), out, settings=settings, channels=channels,
                            progress=False, **kwargs)


def test_refuses_a_non_empty_folder_that_is_not_a_site(tmp_path):
    (tmp_path / "notes" / ".cache.tmp").mkdir(parents=True)
    (tmp_path / "notes" / ".cache.tmp" / "keep.txt").write_text("mine")
    with pytest.raises(_store.SiteError, match="--force"):
        build(tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == [".cache.tmp", "keep.txt", "notes"]


def test_force_builds_beside_user_files_and_rebuilds_never_delete_them(tmp_path):
    user = [tmp_path / "notes" / ".cache.tmp" / "keep.txt", tmp_path / "data" / ".x.1.0a1b2c3d.tmp",
            tmp_path / "channels" / "relu1" / "my-notes.html"]
    for p in user:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("mine")
    build(tmp_path, force=True)
    build(tmp_path, channels=2)  # now a featviz site: no --force needed, and a changed build
    assert all(p.read_text() == "mine" for p in user)
    assert (tmp_path / "channels" / "relu1" / "1.html").is_file()


def test_only_the_builders_own_temp_names_are_cleaned(tmp_path):
    build(tmp_path)
    ours = _io.temp_path(tmp_path / "data" / "relu1" / "0")
    ours.mkdir()  # what a SIGKILLed build leaves
    theirs = tmp_path / "data" / "relu1" / ".cache.tmp"
    theirs.mkdir()
    build(tmp_path)
    assert not ours.exists() and theirs.is_dir()


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_files_and_folders_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        build(tmp_path / "site")
    finally:
        os.umask(old)
    paths = list((tmp_path / "site").rglob("*"))
    modes = {stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_file()}
    assert modes == {file_mode}
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_dir()} == {dir_mode}
    assert {"index.html", "fv.png", "meta.json", "manifest.json"} <= {p.name for p in paths}


def test_rendering_save_follows_the_umask(tmp_path):
    import featviz as fv

    old = os.umask(0o022)
    try:
        r = fv.optvis.Rendering(torch.rand(1, 3, 4, 4), torch.zeros(2, 1), torch.ones(1), ["a"], "obj")
        path = r.save(tmp_path / "r.png")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and list(tmp_path.iterdir()) == [path]


def test_a_second_build_is_refused_while_the_first_holds_the_lock(tmp_path):
    build(tmp_path)
    with _store.SiteLock(tmp_path):
        with pytest.raises(_store.SiteError, match=f"pid {os.getpid()}"):
            build(tmp_path, settings=MicroscopeSettings(size=24, steps=2, diversity=0, examples=0,
                                                        tuning_angles=()))
    assert json.loads((tmp_path / "manifest.json").read_text())["settings"]["size"] == 16  # untouched
    build(tmp_path)  # the lock is free again


def test_fewer_channels_remove_the_stale_pages_and_units(tmp_path):
    build(tmp_path, channels=3)
    assert (tmp_path / "channels" / "relu1" / "2.html").is_file()
    build(tmp_path, channels=1)
    assert sorted(p.name for p in (tmp_path / "channels" / "relu1").iterdir()) == ["0.html"]
    assert sorted(p.name for p in (tmp_path / "data" / "relu1").iterdir()) == ["0"]
    html = (tmp_path / "layers" / "relu1.html").read_text()
    assert "1 of 8 channels shown" in html and "channels/relu1/2.html" not in html


def test_a_dropped_layer_loses_its_pages(tmp_path):
    build(tmp_path, layers=("relu1", "relu2"), channels=1)
    build(tmp_path, layers=("relu2",), channels=1)
    assert not (tmp_path / "layers" / "relu1.html").exists()
    assert not (tmp_path / "channels" / "relu1").exists()
    assert not (tmp_path / "data" / "_links").exists()


def test_more_examples_recompute_only_the_examples(tmp_path, monkeypatch):
    settings = MicroscopeSettings(size=16, steps=2, diversity=0, examples=2, tuning_angles=(), evidence=False)
    build(tmp_path, settings=settings)
    fv_before = (tmp_path / "data" / "relu1" / "0" / "fv.png").read_bytes()
    calls = []
    original = _channel.ChannelWorker.compute
    monkeypatch.setattr(_channel.ChannelWorker, "compute", lambda s, *a: calls.append(a) or original(s, *a))
    build(tmp_path, settings=MicroscopeSettings(size=16, steps=2, diversity=0, examples=4, tuning_angles=(),
                                                evidence=False))
    assert [job[3] for job in calls] == [("examples",)]  # no new render
    assert (tmp_path / "data" / "relu1" / "0" / "fv.png").read_bytes() == fv_before
    facts = json.loads((tmp_path / "data" / "relu1" / "0" / "meta.json").read_text())["parts"]["examples"]
    assert len(facts["facts"]["examples"]["top"]) == 4


def batchnorm_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    net.input_size = 16
    return net.train()


def test_a_train_mode_model_resumes_and_stays_in_train_mode(tmp_path, monkeypatch):
    net = batchnorm_net()
    build(tmp_path, layers=("2",), model=net)
    assert net.training and net[1].training and all(p.requires_grad for p in net.parameters())
    calls = []
    monkeypatch.setattr(_channel.ChannelWorker, "compute", lambda s, *a: calls.append(a))
    build(tmp_path, layers=("2",), model=net)
    assert calls == [] and net.training


def test_layers_in_the_wrong_order_fail_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(_channel.ChannelWorker, "compute", lambda *a: pytest.fail("rendered"))
    with pytest.raises(ValueError, match="early to late.*relu1,relu2"):
        build(tmp_path / "site", layers=("relu2", "relu1"))
    assert not (tmp_path / "site").exists()


def test_connections_reach_past_a_dead_channel_without_warnings(tmp_path, recwarn):
    net = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 3, padding=1), nn.ReLU())
    net.input_size = 16
    with torch.no_grad():
        net[0].weight[1].zero_()
        net[0].bias[1] = -1.0  # channel 1 of layer "1" never responds
    build(tmp_path, layers=("1", "3"), channels=3, model=net)
    html = (tmp_path / "channels" / "1" / "1.html").read_text()
    assert "no response found" in html and 'src="../../data/1/1/fv.png"' not in html
    assert [str(w.message) for w in recwarn if issubclass(w.category, UserWarning)] == []


def test_cli_quiet_after_the_subcommand_and_a_summary(tmp_path, capsys):
    from featviz.cli import main

    argv = ["microscope", "edges_and_curves", "--layers", "relu1", "--channels", "1", "--size", "16",
            "--steps", "2", "--examples", "0", "--out", str(tmp_path / "site"), "--quiet"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "site" / "index.html")
    assert "featviz microscope: 3 pages (1 channel page over 1 layer)" in err and "open" in err
    manifest = json.loads((tmp_path / "site" / "manifest.json").read_text())
    assert manifest["model"] == "edges_and_curves" and manifest["settings"]["extras"] == []
    assert "it/s" not in err  # no progress bar


def test_cli_names_the_flag_of_a_wrong_layer_order(tmp_path, capsys):
    from featviz.cli import main

    code = main(["microscope", "edges_and_curves", "--layers", "relu2,relu1", "--out", str(tmp_path / "s")])
    assert code == 2 and "--layers" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_a_render_size_too_small_for_the_model_fails_before_any_work(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 2, 5), nn.ReLU(), nn.Conv2d(2, 2, 5))
    net.input_size = 32
    with pytest.raises(ValueError, match=r"cannot run on 6 px.*--size"):
        build(tmp_path / "site", layers=("2",), model=net, settings=MicroscopeSettings(size=6, steps=1))
    assert not (tmp_path / "site").exists()


def test_extras_are_built_only_when_asked_and_the_summary_says_their_cost(tmp_path, capsys):
    from featviz.cli import main
    from featviz.microscope._examples import bundled_photos
    from featviz.optvis import factorize

    base = ["microscope", "edges_and_curves", "--layers", "relu1", "--channels", "1", "--size", "16",
            "--steps", "2", "--examples", "2", "--no-evidence", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert main([*base, "--out", str(tmp_path / "extra"), "--extras", "caricature,groups,atlas"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"extras caricature \d+ s, groups \d+ s, atlas \d+ s \(caricature: one render", err)
    plain, extra = (tmp_path / "plain", tmp_path / "extra")
    for site, shown in ((plain, False), (extra, True)):
        channel = (site / "channels" / "relu1" / "0.html").read_text()
        layer = (site / "layers" / "relu1.html").read_text()
        assert ("<h2>Caricature</h2>" in channel) == shown and ("caricature.png" in channel) == shown
        assert ("<h2>Neuron groups</h2>" in layer) == shown
        assert ("<h2>Activation atlas</h2>" in layer) == shown
    for f in ("caricature.png", "caricature_photo.png"):
        assert (extra / "data" / "relu1" / "0" / f).is_file()
    # the groups the layer page names are fv.factorize's own, on the site's first 16 photos
    meta = json.loads((extra / "data" / "_layers" / "relu1" / "meta.json").read_text())
    f = factorize(toy_model(), "relu1", bundled_photos(64).tensor[:16], n_groups=4, seed=0)
    assert meta["groups"]["channels"] == [d.abs().argsort(descending=True)[:4].tolist() for d in f.directions]
    assert main([*base, "--out", str(tmp_path / "bad"), "--extras", "caricatur"]) == 2
    err = capsys.readouterr().err
    assert "--extras: unknown caricatur; choose from caricature,groups,atlas,explain" in err


def test_explain_pages_link_from_every_example_and_back_to_built_units(tmp_path, capsys):
    """--explain: each photo shown as a dataset example gets its fv.explain page, every example of it links
    there, the page explains the model's own top class, and its channel links lead to built pages only."""
    from microscope_helpers import missing_refs

    from featviz.cli import main
    from featviz.microscope import slug
    from featviz.microscope._examples import bundled_photos

    site = tmp_path / "site"
    assert main(["microscope", "edges_and_curves", "--layers", "relu1,relu2", "--channels", "1",
                 "--size", "16", "--steps", "2", "--examples", "2", "--no-evidence", "--quiet", "--explain",
                 "--out", str(site)]) == 0
    assert re.search(r"extras explain \d+ s", capsys.readouterr().err)
    channel = (site / "channels" / "relu2" / "0.html").read_text()
    hrefs = re.findall(r'href="(\.\./\.\./data/_explain/[^"]+/explain\.html)"', channel)
    assert len(hrefs) == 4  # 2 top + 2 bottom examples, each linked to its photo's page
    meta = json.loads((site / "channels" / "relu2" / "0.html").parent.parent.parent.joinpath(
        "data", "relu2", "0", "meta.json").read_text())
    names = [e["name"] for part in meta["parts"].values() for kind in ("top", "bottom")
             for e in part["facts"].get("examples", {}).get(kind, [])]
    assert sorted(hrefs) == sorted(f"../../data/_explain/{slug(n)}/explain.html" for n in names)
    import featviz as fv
    from featviz.core import preprocess_fn

    model = toy_model()
    photos = bundled_photos(int(getattr(model, "input_size", None) or 224))
    for n in set(names):
        page = site / "data" / "_explain" / slug(n) / "explain.html"
        unit = json.loads((page.parent / "meta.json").read_text())
        # no class output: the page explains the relu2 unit with a page that this photo excites most
        pages = sorted(int(f.stem) for f in (site / "channels" / "relu2").glob("*.html"))
        x = photos.tensor[photos.names.index(n)][None]
        with torch.no_grad():
            means = fv.hooked(model).run_with_cache(preprocess_fn(model)(x), names=["relu2"])[1]["relu2"]
        best = max(pages, key=lambda c: float(means[0, c].mean()))
        assert unit["target"].startswith(f"relu2:{best} ") and unit["layers"] == ["relu1", "relu2"]
        links = set(re.findall(r"\.\./\.\./\.\./channels/([^/]+)/(\d+)\.html", page.read_text()))
        assert links and all((site / "channels" / la / f"{c}.html").is_file() for la, c in links)
    # (the explanation pages build some src attributes in their script: '" + url + "' is not a file name)
    assert [(page, ref) for page, ref in missing_refs(site) if "'" not in ref] == []
    plain = tmp_path / "plain"  # without --explain: no pages, no links
    assert main(["microscope", "edges_and_curves", "--layers", "relu1,relu2", "--channels", "1",
                 "--size", "16", "--steps", "2", "--examples", "2", "--no-evidence", "--quiet",
                 "--out", str(plain)]) == 0
    assert not (plain / "data" / "_explain").exists()
    assert "_explain" not in (plain / "channels" / "relu2" / "0.html").read_text()
