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


def _code_cell(prefix: str, marker: str) -> str:
    """The code cell of notebook ``prefix``'s source that contains ``marker``."""
    cells = re.split(r"^# %%.*$", _src(prefix), flags=re.M)
    (cell,) = [c for c in cells if marker in c]
    return cell


@pytest.fixture(scope="module")
def field_code():
    """Notebook 04's effective-receptive-field functions, run from its source (what the notebook runs)."""
    import numpy as np
    import torch

    import featviz as fv

    namespace = {"fv": fv, "torch": torch, "np": np}
    exec(_code_cell("04", "def effective_field("), namespace)   # noqa: S102 - the notebook's own cell
    return namespace


def test_04_effective_field_is_smaller_than_the_theoretical_one_and_the_sentence_says_so(field_code, effnet,
                                                                                          photos):
    import torch

    images = photos[0][2:4]                       # the two photos of fast mode
    m, rf = field_code["effective_field"](effnet, "blocks.4", images)
    stats = field_code["field_stats"](m, rf)
    # independent of field_stats: the gradient lives inside the theoretical field (its definition) ...
    top, left, bottom, right = (int(v + 0.5) for v in rf.box)        # pixel edges -> the pixels inside
    assert bottom - top == rf.size[0]
    assert float(m.sum() - m[max(top, 0):bottom, max(left, 0):right].sum()) < 1e-6
    # ... and 90% of it sits in a much smaller centred square (Luo et al. 2016), recomputed by brute force
    (r0, c0) = rf.center

    def square(q):
        lo_r, lo_c = max(int(r0 - q / 2 + 0.5), 0), max(int(c0 - q / 2 + 0.5), 0)
        return m[lo_r:int(r0 + q / 2 + 0.5), lo_c:int(c0 + q / 2 + 0.5)]

    side = next(q for q in range(1, 2 * 224, 2) if float(square(q).sum()) >= 0.9)
    assert abs(stats["square"] - side) <= 2, (stats, side)
    assert stats["square"] < 0.75 * stats["theoretical"] == 0.75 * rf.size[0], stats
    sentence = field_code["field_sentence"]("blocks.4", stats)
    assert f"**{rf.size[0]} px**" in sentence and f"**{stats['square']}-px**" in sentence
    assert "much smaller than the theoretical one" in sentence
    rows = torch.arange(224.0)
    p = m.sum(1)
    mu = float((p * rows).sum())
    sigma = float((p * (rows - mu) ** 2).sum()) ** 0.5
    within1, within2 = (float(p[(rows - mu).abs() <= n * sigma].sum()) for n in (1, 2))
    assert ("roughly Gaussian" in sentence) == (abs(within1 - 0.683) < 0.08 and abs(within2 - 0.954) < 0.04)


def test_04_field_sentence_follows_its_numbers(field_code):
    sentence = field_code["field_sentence"]
    same = {"theoretical": 11, "square": 11, "sigma": 2.0, "within1": 0.7, "within2": 0.95, "outside": 0.0,
            "mass": 0.9}
    assert "as large as the theoretical one" in sentence("x", same) and "smaller" not in sentence("x", same)
    assert "**smaller than" in sentence("x", {**same, "square": 9})
    assert "much smaller" in sentence("x", {**same, "square": 7})
    assert "not Gaussian" in sentence("x", {**same, "within1": 0.9})


def test_04_angle_axes_say_which_angle():
    text = _src("04")
    for bare in ('"grating angle (degrees)"', '"bulge direction (degrees)"', '"edge direction (degrees)"',
                 '"direction of bulge (degrees)"'):
        assert bare not in text, f"an axis labelled {bare} does not say which angle or which way round"
    assert "GRATING_ANGLE = \"grating orientation θ (degrees: the wave's direction; 0 = vertical" in text
    assert text.count("xlabel=GRATING_ANGLE") >= 1 and text.count("xlabel=EDGE_ANGLE") >= 2
    assert text.count("xlabel=BULGE_ANGLE") >= 3
