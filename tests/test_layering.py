"""The package's layers (ARCHITECTURE.md, DESIGN.md), checked from the source alone (AST; nothing imported).

Layers from the bottom; a module may import its own layer and the ones below::

    errors, _io, _compat, _templates, nn  ->  core  ->  data, models, hooks  ->  optvis  ->  circuits  ->  viz
        ->  explain, microscope  ->  cli, _commands, _modelfile, demo, featviz/__init__.py (the facade)

Rules, for every import in featviz/ (module level or inside a function, ``if TYPE_CHECKING:`` included):

(a) **layers**: a module never imports a higher layer. ``import featviz`` / ``from featviz import render``
    reach the facade (the top); ``from featviz import __version__`` (package metadata) does not.
(b) **analysis draws nothing**: analysis (core, hooks, data, models, optvis, circuits, explain) never imports
    drawing (``featviz.viz``, ``matplotlib``) or site code (``featviz.microscope``). The one allowance, which
    also lifts (a): ``featviz.viz`` imported inside a *delegate*, a function named in ``DELEGATES`` (plot,
    show, save, save_html, _repr_png_, _repr_html_, _repr_mimebundle_) whose body, past its docstring and
    imports, is ``return f(...)`` after at most two call-free assignments (``model = model or self.model``).
    matplotlib and site code: never (a delegate hands the drawing to viz).
(c) **no reaching into another package's privates**: ``featviz.<pkg>._name`` (a module whose name starts with
    ``_``) is imported only from inside ``featviz/<pkg>/``. The root package's own ``featviz._io``,
    ``featviz._compat``, ... are shared by all of featviz and are not covered.

``KNOWN_VIOLATIONS`` lists the (importer file, imported module) pairs that broke a rule when the test was
written (issue 19 is removing them); the test fails on a new one and on a listed one that is gone, so the
list can only shrink.
"""
from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "featviz"

LAYERS: list[tuple[str, ...]] = [
    ("errors", "_io", "_compat", "_templates", "nn"),
    ("core",),
    ("data", "models", "hooks"),
    ("optvis",),
    ("circuits",),
    ("viz",),
    ("explain", "microscope"),
    ("cli", "_commands", "_modelfile", "demo", "featviz"),  # "featviz": the facade, featviz/__init__.py
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}
ANALYSIS = {"core", "hooks", "data", "models", "optvis", "circuits", "explain"}
DRAWING_UNITS = {"viz"}
DRAWING_LIBRARIES = {"matplotlib"}
SITE_UNITS = {"microscope"}
# Functions that may import featviz.viz (rule b, and a's analysis -> viz edge): a result's figure or view
DELEGATES = {"plot", "show", "save", "save_html", "_repr_png_", "_repr_html_", "_repr_mimebundle_"}

# (importer file, imported module): each broke a rule on main when this test was written. Remove a line when
# the import is gone (the test says so); never add one: fix the import instead.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()  # empty since issue 19: every rule holds


@dataclass(frozen=True)
class Violation:
    importer: str   # featviz/circuits/evidence.py
    line: int
    imported: str   # featviz.viz.figures, or matplotlib.pyplot
    rule: str       # "a: ...", "b: ...", "c: ..."

    @property
    def key(self) -> tuple[str, str]:
        return self.importer, self.imported

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}: rule {self.rule}"


def unit_of_file(path: Path, root: Path) -> str:
    """featviz/circuits/x.py -> "circuits"; featviz/core.py -> "core"; featviz/__init__.py -> "featviz"."""
    rel = path.relative_to(root)
    if len(rel.parts) > 1:
        return rel.parts[0]
    return "featviz" if rel.stem == "__init__" else rel.stem


def unit_of_module(module: str) -> str | None:
    """featviz.viz.figures -> "viz"; featviz -> "featviz" (the facade); anything else -> None."""
    parts = module.split(".")
    if parts[0] != "featviz":
        return None
    return parts[1] if len(parts) > 1 else "featviz"


def _is_module(root: Path, dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    return (root / rel).is_dir() or (root / rel).with_suffix(".py").is_file()


def _package_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    return ".".join(rel.parts[:-1])  # a module's package; an __init__.py's is the package itself


def imports_of(path: Path, root: Path):
    """Yield (line, imported module, enclosing function or None) for every import in one file.

    ``from a.b import c`` yields ``a.b.c`` where c is a module of the tree, else ``a.b``;
    ``from featviz import __version__`` yields nothing (metadata). Relative imports are resolved against the
    file's package.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _package_of(path, root)

    seen = set()

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from visit(child, child)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if (child.lineno, alias.name) not in seen:
                        seen.add((child.lineno, alias.name))
                        yield child.lineno, alias.name, function
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in child.names:
                    if base == "featviz" and alias.name.startswith("__"):
                        continue  # package metadata (__version__)
                    sub = f"{base}.{alias.name}"
                    module = sub if base.startswith("featviz") and _is_module(root, sub) else base
                    if (child.lineno, module) not in seen:  # `from a import b, c`: one import of a
                        seen.add((child.lineno, module))
                        yield child.lineno, module, function
            yield from visit(child, function)

    yield from visit(tree, None)


def _is_delegate(function) -> bool:
    """A function named in DELEGATES whose body, past its docstring and imports, is ``return f(...)``, after
    at most two call-free assignments (argument defaults such as ``model = model or self.model``)."""
    if function is None or function.name not in DELEGATES:
        return False
    body = [s for s in function.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if not body or not (isinstance(body[-1], ast.Return) and isinstance(body[-1].value, ast.Call)):
        return False
    setup = body[:-1]
    return len(setup) <= 2 and all(
        isinstance(s, ast.Assign) and not any(isinstance(n, ast.Call) for n in ast.walk(s)) for s in setup)


def violations(root: Path = ROOT) -> list[Violation]:
    """Every import under ``root`` (a featviz source tree) that breaks rule a, b or c."""
    found = []
    for path in sorted(root.rglob("*.py")):
        importer_unit = unit_of_file(path, root)
        importer = str(path.relative_to(root.parent))
        for line, module, function in imports_of(path, root):
            unit = unit_of_module(module)
            top = module.split(".")[0]
            drawing = unit in DRAWING_UNITS or top in DRAWING_LIBRARIES
            delegate = unit in DRAWING_UNITS and _is_delegate(function)  # matplotlib: never, even there
            where = "" if function is None else f" (inside {function.name}()" + (
                ")" if function.name not in DELEGATES else ", not a one-statement delegate)"
                if unit in DRAWING_UNITS else ": a delegate leaves matplotlib to featviz.viz)")
            rules = []
            if unit is not None and unit != importer_unit:
                if unit not in LAYER or importer_unit not in LAYER:
                    missing = unit if unit not in LAYER else importer_unit
                    rules.append(f"a: {missing!r} has no layer in LAYERS")
                elif LAYER[unit] > LAYER[importer_unit] and not delegate:
                    rules.append(f"a: layer {importer_unit} ({LAYER[importer_unit]}) imports a higher layer, "
                                 f"{unit} ({LAYER[unit]}){where}")
                private = [p for p in module.split(".")[2:] if p.startswith("_") and not p.startswith("__")]
                if private:
                    rules.append(f"c: {importer_unit} imports {unit}'s private module {private[0]}")
            if importer_unit in ANALYSIS and (unit in SITE_UNITS or (drawing and not delegate)):
                kind = "site code" if unit in SITE_UNITS else "drawing"
                rules.append(f"b: analysis ({importer_unit}) imports {kind}{where}")
            found += [Violation(importer, line, module, rule) for rule in rules]
    return found


def _keys(found: list[Violation]) -> set[tuple[str, str]]:
    return {v.key for v in found}


def test_no_new_layering_violations():
    new = [v for v in violations() if v.key not in KNOWN_VIOLATIONS]
    assert not new, ("imports that break the layering (ARCHITECTURE.md; this file's docstring):\n"
                     + "\n".join(f"  {v}" for v in new))


def test_known_violations_only_shrink():
    gone = sorted(KNOWN_VIOLATIONS - _keys(violations()))
    assert not gone, ("these KNOWN_VIOLATIONS no longer occur; delete them from tests/test_layering.py so "
                      "they cannot come back:\n" + "\n".join(f"  {a} -> {b}" for a, b in gone))


def test_every_package_and_module_has_a_layer():
    units = {unit_of_file(p, ROOT) for p in ROOT.rglob("*.py")}
    missing = units - set(LAYER)
    assert not missing, f"give these a layer in LAYERS and ARCHITECTURE.md: {sorted(missing)}"
    assert {"core", "hooks", "optvis", "circuits", "viz", "featviz"} <= units  # the walk saw the real tree


def test_architecture_md_lists_the_same_layers():
    """ARCHITECTURE.md's layer table names the units of LAYERS, layer by layer (the doc cannot drift)."""
    table = {}
    for line in (ROOT.parent / "ARCHITECTURE.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].isdigit():
            names = re.findall(r"`([^`]+)`", cells[1])
            table[int(cells[0])] = tuple("featviz" if n == "featviz/__init__.py" else n for n in names)
    assert table == dict(enumerate(LAYERS)), table


# -- the checker itself: a planted tree with one violation of each rule, and a clean one --------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "featviz"
    for name, text in {"__init__.py": "", "viz/__init__.py": "", "circuits/__init__.py": "",
                       "microscope/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


CLEAN = {
    "core.py": "import torch\nfrom featviz import errors\nfrom featviz import __version__\n",
    "errors.py": "",
    "viz/figures.py": "import matplotlib.pyplot as plt\nfrom featviz.circuits.trace import Circuit\n"
                      "from featviz.viz import _helpers\n",
    "viz/_helpers.py": "",
    "circuits/trace.py": '''
        from featviz.core import parse
        from . import _graph
        class Circuit:
            def plot(self, model=None, **kwargs):
                """Draw it (featviz.viz.plot_circuit)."""
                from featviz.viz.figures import plot_circuit
                model = model if model is not None else self.model
                return plot_circuit(self, model, **kwargs)
        ''',
    "circuits/_graph.py": "",
    "microscope/plan.py": "from featviz.viz import figures\nfrom featviz.circuits import trace\n",
    "cli.py": "import featviz as fv\nfrom featviz.microscope import plan\n",
}


def test_the_checker_passes_a_clean_tree(tmp_path):
    assert violations(_tree(tmp_path, CLEAN)) == []


@pytest.mark.parametrize("file, text, imported, rule", [
    ("core.py", "from featviz.circuits import trace\n", "featviz.circuits.trace", "a: layer core (1)"),
    ("core.py", "def f():\n    import featviz.viz.figures\n", "featviz.viz.figures", "a: layer core"),
    ("circuits/x.py", "import featviz\n", "featviz", "a: layer circuits"),           # the facade is the top
    ("circuits/x.py", "import matplotlib.pyplot as plt\n", "matplotlib.pyplot",
     "b: analysis (circuits) imports drawing"),
    ("circuits/x.py", "class E:\n    def plot(self):\n        import matplotlib.pyplot as plt\n"
                      "        fig = plt.figure()\n        return fig\n", "matplotlib.pyplot",
     "b: analysis (circuits) imports drawing (inside plot(): a delegate leaves matplotlib to featviz.viz)"),
    ("circuits/x.py", "class E:\n    def plot(self):\n        import matplotlib.pyplot as plt\n"
                      "        return plt.imshow(self.x)\n", "matplotlib.pyplot",
     "b: analysis (circuits) imports drawing (inside plot(): a"),       # matplotlib even in a delegate
    ("circuits/x.py", "class E:\n    def plot(self):\n        from featviz.viz import figures\n"
                      "        fig = figures.f(self)\n        fig.text(0, 0, 'x')\n        return fig\n",
     "featviz.viz.figures", "b: analysis (circuits) imports drawing (inside plot(), not"),  # draws more
    ("circuits/x.py", "class E:\n    def summary(self):\n        from featviz.viz import figures\n"
                      "        return figures.f(self)\n", "featviz.viz.figures",
     "b: analysis (circuits) imports drawing (inside summary())"),
    ("circuits/x.py", "class E:\n    def plot(self):\n        from featviz.microscope import plan\n"
                      "        return plan.f(self)\n", "featviz.microscope.plan",
     "b: analysis (circuits) imports site code"),
    ("cli.py", "from featviz.viz import _helpers\n", "featviz.viz._helpers", "c: cli imports viz's private"),
    ("microscope/x.py", "from featviz.circuits._graph import g\n", "featviz.circuits._graph",
     "c: microscope imports circuits's private module _graph"),
    ("newpkg/x.py", "from featviz import core\n", "featviz.core", "a: 'newpkg' has no layer"),
])
def test_the_checker_catches_each_rule(tmp_path, file, text, imported, rule):
    found = violations(_tree(tmp_path, {**CLEAN, file: text}))
    assert {(v.importer, v.imported) for v in found} == {(f"featviz/{file}", imported)}, found
    hit = [v for v in found if v.rule.startswith(rule)]
    assert hit, [v.rule for v in found]
    line = 1 + next(i for i, text_line in enumerate(text.splitlines()) if "import" in text_line)
    assert str(hit[0]).startswith(f"featviz/{file}:{line} imports {imported}: rule {rule}")  # file:line, rule


def test_the_checker_resolves_relative_and_from_imports(tmp_path):
    root = _tree(tmp_path, {**CLEAN, "core.py": "from .viz import figures\nfrom .circuits.trace import C\n"})
    found = {(v.line, v.imported, v.rule[0]) for v in violations(root)}
    assert found == {(1, "featviz.viz.figures", "a"), (1, "featviz.viz.figures", "b"),
                     (2, "featviz.circuits.trace", "a")}
