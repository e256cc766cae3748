"""Build the teaching notebooks: notebooks/src/NN_name.py (percent format) -> notebooks/NN_name.ipynb.

The built notebooks carry no outputs.

The sources use the "percent" cell format that VS Code, PyCharm and jupytext understand: ``# %%`` starts a
code cell, ``# %% [markdown]`` a text cell whose lines are written as comments (``# `` is removed).
A cell marker may end with ``hide`` (``# %% hide``) to collapse that code cell's source in Jupyter.

Usage:
    python notebooks/build.py            # rebuild every notebook from its source
    python notebooks/build.py --strip    # only strip outputs/execution counts from the .ipynb files
"""
from __future__ import annotations

import argparse
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
KERNEL = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _cells(text: str) -> list[nbformat.NotebookNode]:
    cells, kind, hide, lines = [], None, False, []

    def flush() -> None:
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body.split("\n"))
            cells.append(nbformat.v4.new_markdown_cell(body))
        elif kind == "code" and body:
            cell = nbformat.v4.new_code_cell(body)
            if hide:
                cell.metadata["jupyter"] = {"source_hidden": True}
            cells.append(cell)

    for line in text.split("\n"):
        if line.startswith("# %%"):
            flush()
            tag = line[4:].strip()
            kind, hide, lines = ("markdown" if tag == "[markdown]" else "code"), tag == "hide", []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def build(src: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=_cells(src.read_text()))
    nb.metadata["kernelspec"] = KERNEL
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{src.stem[:2]}-{i:03d}"
    out = HERE / f"{src.stem}.ipynb"
    nbformat.validate(nb)
    nbformat.write(nb, out)
    return out


def strip(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strip", action="store_true", help="strip outputs of notebooks/*.ipynb in place")
    parser.add_argument("names", nargs="*", help="source stems to build (default: all)")
    args = parser.parse_args()
    if args.strip:
        for path in sorted(HERE.glob("*.ipynb")):
            strip(path)
        return
    for src in sorted((HERE / "src").glob("*.py")):
        if not args.names or any(src.stem.startswith(n) for n in args.names):
            print("built", build(src).relative_to(HERE.parent))


if __name__ == "__main__":
    main()
