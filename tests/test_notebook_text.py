"""Sentences of the teaching notebooks and READMEs that issue 25 corrected (notebooks/src/*.py are the
sources; tests/test_notebooks.py checks that the .ipynb files match them and run). Each assertion is a
sentence a class would otherwise trip on: a wrong name, a claim its own numbers contradict, a figure an
exported page cannot show."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "notebooks" / "src"
SOURCES = sorted(SRC.glob("0*.py"))


def _src(prefix: str) -> str:
    return next(SRC.glob(f"{prefix}_*.py")).read_text()


def _markdown(text: str) -> str:
    """The markdown cells of a percent-format source, comment markers removed."""
    cells = re.split(r"^# %%.*$", text, flags=re.M)
    heads = re.findall(r"^# %%.*$", text, flags=re.M)
    md = [c for h, c in zip(heads, cells[1:]) if h.strip() == "# %% [markdown]"]
    return "\n".join(re.sub(r"^# ?", "", c, flags=re.M) for c in md)


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_every_notebook_states_level_time_and_setup(path: Path) -> None:
    head = _markdown(path.read_text())[:1500]
    for label in ("**Level:**", "**Time:**", "**Setup:**"):
        assert label in head, f"{path.name}: its introduction has no {label} line"


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_every_explorer_also_draws_its_static_figure(path: Path) -> None:
    """An exported HTML page cannot show a widget (it needs a kernel): the static figure is its own output."""
    text = path.read_text()
    if "fv.viz.explore" in text:
        assert ".figure(" in text, f"{path.name} shows an explorer but never its static .figure()"


def test_01_names_pytorchs_default_and_hes_bound():
    text = _src("01")
    assert "Kaiming-uniform" not in text, "'Kaiming' names two bounds: call 1/sqrt(N) PyTorch's default"
    assert "kaiming_uniform_(w, a=√5)" in text and "PyTorch's default" in text
    assert "checks.check_conv2d_weight(MyConv2d)" in text
    assert "equivariance holds only for shifts that are multiples of the stride".lower() in \
        _markdown(text).lower().replace("\n", " ")


def test_01_mlp_must_learn_the_task_before_the_comparison():
    text = _src("01")
    assert 'assert accuracy["MLP", False] > 0.8' in text


def test_02_explorer_sentence_matches_its_evidence():
    md = _markdown(_src("02")).replace("\n", " ")
    assert "unit 1 of `relu2` is a curve detector" not in md
    assert "wired by hand" in md and "no response found" in md


def test_04_a7_direction_units_and_signs():
    text = _src("04")
    assert "traced connections into" not in text, "A7's reversed sentence"
    assert "traced connections that leave" in text
    md = _markdown(text).replace("\n", " ")
    assert "Its *colour* is the sign of that one entry" in md and "compare edges into the same layer" in md


def test_04_b5_states_why_the_arc_through_the_centre_is_ignored():
    md = _markdown(_src("04")).replace("\n", " ")
    assert "odd Gabor" in md and "cancels" in md


def test_05_no_sentence_contradicts_its_mode():
    text = _src("05")
    assert "gradients shrink where the network saturates (measured" not in text
    assert "sin z" in _markdown(text).replace("\\sin", "sin"), "Ex3's text names the check's test function"
    assert "SIGMAS = (0.05, 0.15, 0.3)" in text


def test_06_has_exercises_and_a_summary():
    text = _src("06")
    assert "### Exercise 1" in text and "### Exercise 2" in text and "## Summary" in text
    assert "checks.check_reconstruct(reconstruct)" in text and "checks.check_map_cosine(map_cosine)" in text


def test_readmes_quote_the_bench_and_real_run_times():
    readme = (ROOT / "README.md").read_text()
    assert "1.6x faster" not in readme and "2.35–2.62x" in readme
    bench = (ROOT / "bench" / "README.md").read_text()
    assert "**2.62x**" in bench and "**2.35x**" in bench, "the README quotes these numbers"
    nb_readme = (ROOT / "notebooks" / "README.md").read_text()
    assert "well under a minute" not in nb_readme


EXPORTS = sorted((ROOT / "docs").glob("0*.html"))


@pytest.mark.parametrize("path", EXPORTS, ids=[p.stem for p in EXPORTS])
def test_exported_widgets_have_a_static_figure_beside_them(path: Path) -> None:
    """An exported page (docs/NN_*.html, `make notebooks`) shows a widget view only with a CDN and a kernel:
    every cell whose output is a widget view has a PNG figure in it or in a cell right before or after it."""
    cells = re.split(r'<div[^>]*class="jp-Cell ', path.read_text())
    for i, cell in enumerate(cells):
        if "application/vnd.jupyter.widget-view+json" in cell:
            near = "".join(cells[max(i - 1, 0):i + 2])
            assert "data:image/png" in near, (
                f"{path.name}: cell {i} shows a widget with no static figure beside it; an offline page "
                "shows nothing there (display the explorer's .figure() as its own output)")
