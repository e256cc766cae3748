"""Teaching notebooks (notebooks/*.ipynb): each runs top to bottom in fast mode; none has stored outputs.

Fast mode is ``FEATVIZ_FAST=1`` (fewer optimisation steps, smaller images); the kernel runs on one thread
with Jupyter's inline matplotlib backend, so every figure is really drawn. A cell that raises fails the
test with the cell's traceback.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 150      # one cell; the whole suite of notebooks should take well under 4 minutes
NOTEBOOK_TIMEOUT_S = 240  # one notebook, kernel start included


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: code cells {dirty} have stored outputs or execution counts; "
        f"strip them (python notebooks/build.py --strip, or jupyter nbconvert --clear-output --inplace)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
@pytest.mark.timeout(NOTEBOOK_TIMEOUT_S)
def test_notebook_runs_in_fast_mode(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel is a child process and inherits this environment.
    monkeypatch.setenv("FEATVIZ_FAST", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name} raised while executing (FEATVIZ_FAST=1, python {sys.version.split()[0]}):"
                    f"\n{err}")
    # A teaching notebook shows the current API: a featviz DeprecationWarning (shown by Python for calls made
    # from __main__, i.e. from the notebook's own cells) means a cell uses an old call form.
    deprecated = _cells_with(nb, "DeprecationWarning")
    assert not deprecated, f"{path.name}: cells {deprecated} use a deprecated call:\n" + "\n".join(
        _cell_text(nb.cells[i])[:600] for i in deprecated)


def _cell_text(cell) -> str:
    return "".join(o.get("text", "") + "".join(str(v) for v in o.get("data", {}).values())
                   for o in cell.get("outputs", []))


def _cells_with(nb, needle: str) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and needle in _cell_text(c)]


def test_a_deprecated_call_in_a_cell_is_caught() -> None:
    # The check above must be able to fail: a cell whose output carries a DeprecationWarning is named.
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("old()")]
    nb.cells[1].outputs = [nbformat.v4.new_output(
        "stream", name="stderr", text="<cell>:1: DeprecationWarning: render_steps= is deprecated\n")]
    assert _cells_with(nb, "DeprecationWarning") == [1]


def _load_builder():
    spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOK_DIR / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_matches_its_source(path: Path) -> None:
    src = NOTEBOOK_DIR / "src" / f"{path.stem}.py"
    assert src.exists(), f"{path.name} has no source {src.relative_to(NOTEBOOK_DIR.parent)}"
    built = [(c.cell_type, c.source) for c in _load_builder()._cells(src.read_text())]
    committed = [(c.cell_type, c.source) for c in nbformat.read(path, as_version=4).cells]
    assert committed == built, (
        f"{path.name} differs from {src.name}; edit the source, then run "
        f"python notebooks/build.py {path.stem[:2]}"
    )


def test_notebooks_are_numbered_in_reading_order() -> None:
    names = [p.name for p in NOTEBOOKS]
    numbers = [name.split("_", 1)[0] for name in names]
    assert numbers == [f"{i:02d}" for i in range(1, len(names) + 1)], (
        f"notebooks should be numbered 01_, 02_, ... without gaps; found {names}"
    )
