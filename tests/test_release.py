"""Release: one version string, a CHANGELOG entry for it, a cheap ``import featviz``, and the built wheel
(not the editable install) working in a clean environment: assets inside, the CLI and microscope run.
"""

import configparser
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import featviz

ROOT = Path(__file__).resolve().parents[1]


def test_one_version_string_read_by_setup_cfg_and_in_the_changelog():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["version"] == "attr: featviz.__version__"
    assert f"## {featviz.__version__}" in (ROOT / "CHANGELOG.md").read_text()


def test_import_featviz_does_not_import_torchvision_or_matplotlib():
    code = (
        "import sys, featviz as fv; fv.hooked; fv.render; fv.circuits; "
        "print(sorted(m for m in ('torchvision', 'matplotlib', 'torch') if m in sys.modules))"
    )
    plain = subprocess.run(
        [sys.executable, "-c", "import sys, featviz; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert plain.stdout.strip() == "False", plain.stderr  # import featviz alone is cheap
    used = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert used.stdout.strip() == "['torch']", used.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        timeout=600,
        capture_output=True,
    )
    (path,) = out.glob("featviz-*.whl")
    return path


def test_wheel_holds_the_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = ROOT / "featviz" / "assets" / "templates"
    needed = {"featviz/assets/imagenet_labels.txt", "featviz/errors.py", "featviz/_compat.py"}
    needed |= {f"featviz/assets/templates/{p.name}" for p in templates.iterdir() if p.is_file()}
    assert needed <= names, needed - names
    assert not any(n.startswith(("tests/", "notebooks/", "bench/")) for n in names)
    assert any(n.endswith("entry_points.txt") for n in names)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> SimpleNamespace:
    """A fresh venv gets the wheel (no deps); the heavy dependencies come from this environment's
    site-packages through a .pth line (no download), where the editable install's hook is not active."""
    env = tmp_path_factory.mktemp("clean") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=300)
    py = env / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "_deps_from_dev_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)} | {"OMP_NUM_THREADS": "1"}
    return SimpleNamespace(env=env, py=py, site=site, clean=clean)


def test_wheel_runs_in_a_clean_environment(installed, tmp_path):
    env, py, site, clean = installed.env, installed.py, installed.site, installed.clean
    check = (
        "import importlib.metadata as md, json, featviz as fv; "
        "print(json.dumps([fv.__file__, fv.__version__, md.version('featviz'), "
        "len(fv.data.imagenet_labels())]))"
    )
    run = subprocess.run(
        [str(py), "-c", check], capture_output=True, text=True, cwd=tmp_path, env=clean, timeout=300
    )
    assert run.returncode == 0, run.stderr
    where, version, meta_version, n_labels = json.loads(run.stdout)
    assert where.startswith(str(site)) and version == meta_version == featviz.__version__ and n_labels == 1000
    site_dir = tmp_path / "site"
    cli = subprocess.run(
        [
            str(env / "bin" / "featviz"),
            "--quiet",
            "microscope",
            "edges_and_curves",
            "--layers",
            "relu1",
            "--channels",
            "1",
            "--size",
            "16",
            "--steps",
            "1",
            "--examples",
            "0",
            "--out",
            str(site_dir),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stderr
    assert (site_dir / "index.html").is_file() and list(site_dir.rglob("*.png"))
    bad = subprocess.run(
        [str(env / "bin" / "featviz"), "layers", "no_such_model"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean,
        timeout=300,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_wheel_runs_the_demo(installed, tmp_path):
    """``featviz demo`` from the wheel at its smallest settings (~12 s on one CPU thread): pretrained
    weights, render, trace and the HTML template all come from the installed package."""
    featviz_cmd = str(installed.env / "bin" / "featviz")
    run = dict(capture_output=True, text=True, cwd=tmp_path, env=installed.clean, timeout=600)
    helped = subprocess.run([featviz_cmd, "demo", "--help"], **run)
    assert helped.returncode == 0 and "--size" in helped.stdout and "--steps" in helped.stdout, helped.stderr
    out = tmp_path / "demo"
    demo = subprocess.run([featviz_cmd, "--quiet", "demo", "--out", str(out), "--size", "32", "--steps", "2"],
                          **run)
    assert demo.returncode == 0, demo.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == ["blocks.2.png", "blocks.7.png", "circuit.json", "circuit.png", "index.html",
                       "style.css"]
    html = (out / "index.html").read_text()
    assert "blocks.2.png" in html and "circuit.png" in html
    assert json.loads((out / "circuit.json").read_text())
