"""The API reference (docs/api/*.md, rendered by mkdocstrings) has an entry for every public name.

"Public" means: every name in the ``__all__`` of every featviz module whose dotted path has no component
starting with ``_``. A name is documented when a ``::: path`` entry of a docs/api page renders it. The test
models how mkdocstrings (griffe) reads an entry, because that is where names went missing:

* a path is resolved component by component, and a *submodule* wins over a package attribute of the same
  name: ``::: featviz.circuits`` does not render the function ``trace``, because ``featviz.circuits.trace``
  is the module ``featviz/circuits/trace.py`` (and submodules are not rendered). Such a function needs its
  own entry, ``::: featviz.circuits.trace.trace``;
* a module entry renders the names in its ``__all__`` (or, without ``__all__``, the public names it
  defines), unless its options say ``members: false`` or list the members;
* an object without a docstring is not rendered at all (``show_if_no_docstring`` is off): a constant needs
  an attribute docstring (a string literal right after the assignment).

When mkdocs is installed (the ``[docs]`` extra; not part of ``[dev]``), the strict build is run too and every
anchor this model predicts is looked up in the built HTML, so the model above is itself checked.

The main entry points must also document every parameter (Google-style ``Args:``, one entry per
parameter) and annotate its type: the reference shows name, type, default and meaning in one table.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import featviz

ROOT = Path(__file__).resolve().parent.parent
API_PAGES = sorted((ROOT / "docs" / "api").glob("*.md"))

# The entry points a student reaches for first: their reference lists every parameter (type, default,
# meaning).
MAIN_ENTRY_POINTS = [
    "featviz.optvis.render.render", "featviz.viz.explore.explore", "featviz.circuits.trace.trace",
    "featviz.circuits.weights.weights", "featviz.circuits.evidence.evidence",
    "featviz.circuits.receptive_field.receptive_field", "featviz.models.predict.predict",
    "featviz.optvis.factorize.factorize", "featviz.optvis.invert.invert", "featviz.optvis.atlas.atlas",
    "featviz.hooks.hooked",
]


# ----------------------------------------------------------------------------- reading the pages


def _entries() -> list[tuple[str, str, dict]]:
    """[(page, path, options)] of every ``::: path`` line; options: ``members`` (False or a list) if set."""
    out = []
    for page in API_PAGES:
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^:::\s+([\w.]+)\s*$", line)
            if not m:
                continue
            options: dict = {}
            for follow in lines[i + 1:]:
                if follow and not follow.startswith(" "):
                    break
                mm = re.match(r"^\s+members:\s*(.*)$", follow)
                if mm:
                    value = mm.group(1).strip()
                    listed = [v.strip(" '\"") for v in value.strip("[]").split(",") if v.strip()]
                    options["members"] = False if value.lower() == "false" else listed
            out.append((page.name, m.group(1), options))
    return out


def _is_submodule(module: ModuleType, name: str) -> bool:
    if not hasattr(module, "__path__"):
        return False
    return importlib.util.find_spec(f"{module.__name__}.{name}") is not None


def _resolve(path: str) -> object:
    """The object griffe renders for ``path``: at each step a submodule wins over an attribute of its name."""
    parts = path.split(".")
    obj: object = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        if isinstance(obj, ModuleType) and _is_submodule(obj, part):
            obj = importlib.import_module(".".join(parts[: i + 1]))
        else:
            obj = getattr(obj, part)
    return obj


def _members(module: ModuleType) -> list[str]:
    """The names a module entry renders (before the docstring filter)."""
    if hasattr(module, "__all__"):
        names = list(module.__all__)
    else:  # the names the module itself defines at top level (griffe skips what it imports)
        tree = ast.parse(inspect.getsource(module))
        names = []
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, ast.Assign):
                names += [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.append(node.target.id)
    return [n for n in names if not n.startswith("_") and not _is_submodule(module, n)]


def _key(obj: object, name: str) -> tuple:
    """How a documented object is recognised: callables, classes, modules by id; values by (id, name)."""
    if inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismodule(obj) or callable(obj):
        return ("obj", id(obj))
    return ("value", id(obj), name)


def documented() -> dict[tuple, str]:
    """{key of a rendered object: its anchor (the id of its heading in the built HTML)}."""
    anchors: dict[tuple, str] = {}
    for _page, path, options in _entries():
        obj = _resolve(path)
        anchors.setdefault(_key(obj, path.rsplit(".", 1)[-1]), path)
        if isinstance(obj, ModuleType) and options.get("members", True) is not False:
            names = _members(obj)
            if isinstance(options.get("members"), list):
                names = [n for n in names if n in options["members"]]
            for name in names:
                value = getattr(obj, name)
                if _has_docstring(obj, name, value):
                    anchors.setdefault(_key(value, name), f"{path}.{name}")
    return anchors


# ----------------------------------------------------------------------------- docstrings


def _attribute_docstring(module: ModuleType, name: str, seen: frozenset = frozenset()) -> str | None:
    """The string literal after ``name = ...`` in ``module``'s source (follows ``from x import name``)."""
    if module.__name__ in seen:
        return None
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return None
    body = tree.body
    for i, node in enumerate(body):
        targets = (node.targets if isinstance(node, ast.Assign) else
                   [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            nxt = body[i + 1] if i + 1 < len(body) else None
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) \
                    and isinstance(nxt.value.value, str):
                return nxt.value.value
            return None
        if isinstance(node, ast.ImportFrom) and node.module and any(
                (a.asname or a.name) == name for a in node.names):
            return _attribute_docstring(importlib.import_module(node.module), name, seen | {module.__name__})
    return None


def _has_docstring(module: ModuleType, name: str, value: object) -> bool:
    if inspect.ismodule(value) or inspect.isclass(value) or inspect.isroutine(value):
        return bool((value.__doc__ or "").strip())
    return bool(_attribute_docstring(module, name))


# ----------------------------------------------------------------------------- the public names


def public_modules() -> list[ModuleType]:
    mods = [featviz]
    for info in pkgutil.walk_packages(featviz.__path__, "featviz."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        mods.append(importlib.import_module(info.name))
    return [m for m in mods if hasattr(m, "__all__")]


def public_names() -> list[tuple[str, object]]:
    out = []
    for module in public_modules():
        for name in module.__all__:
            if name.startswith("_"):  # __version__: shown in the package docstring's example
                continue
            out.append((f"{module.__name__}.{name}", module, name, getattr(module, name)))
    return out


# ----------------------------------------------------------------------------- tests


def test_every_public_name_has_an_api_entry() -> None:
    anchors = documented()
    pages = "\n".join(page.read_text() for page in API_PAGES)
    missing = []
    for qual, _module, name, value in public_names():
        home = (value.__module__ or "") if inspect.isclass(value) or inspect.isroutine(value) else "featviz"
        if not home.startswith("featviz"):   # a re-export (featviz.nn.Sequential is torch's): named in prose
            if qual not in pages:
                missing.append(qual)
        elif _key(value, name) not in anchors:
            missing.append(qual)
    assert not missing, (
        f"{len(missing)} public names have no entry in docs/api/*.md (or are hidden: a function whose name "
        "is also a submodule's is resolved to the module; an object without a docstring is not rendered): "
        + ", ".join(missing))


def test_the_clashing_names_are_documented_as_functions() -> None:
    """The names that went missing because a submodule of the same name shadowed them."""
    anchors = documented()
    for qual in ["featviz.render", "featviz.viz.explore", "featviz.circuits.trace",
                 "featviz.circuits.weights", "featviz.circuits.evidence", "featviz.circuits.receptive_field",
                 "featviz.models.predict",
                 "featviz.factorize", "featviz.invert", "featviz.atlas"]:
        module, name = qual.rsplit(".", 1)
        value = getattr(importlib.import_module(module), name)
        assert inspect.isfunction(value), qual
        anchor = anchors.get(_key(value, name))
        assert anchor is not None, f"{qual} has no API entry"
        assert inspect.isfunction(_resolve(anchor)), f"{qual}'s entry {anchor} resolves to a module"


def test_resolve_prefers_the_submodule_as_griffe_does() -> None:
    # featviz.circuits.trace is both a module and (after the package's import) a function attribute
    assert inspect.isfunction(featviz.circuits.trace)
    assert inspect.ismodule(_resolve("featviz.circuits.trace"))
    assert inspect.isfunction(_resolve("featviz.circuits.trace.trace"))


def _args_section(doc: str) -> dict[str, str]:
    """{parameter: description} of a Google-style ``Args:`` section."""
    m = re.search(r"^Args:\n((?:[ \t]+.*\n|[ \t]*\n)*)", doc + "\n", re.M)
    if not m:
        return {}
    out: dict[str, str] = {}
    current = None
    for line in m.group(1).splitlines():
        mm = re.match(r"^    (\*{0,2}\w+)(?: \([^)]*\))?:\s*(.*)$", line)
        if mm:
            current = mm.group(1).lstrip("*")
            out[current] = mm.group(2)
        elif current and line.strip():
            out[current] += " " + line.strip()
    return out


@pytest.mark.parametrize("path", MAIN_ENTRY_POINTS)
def test_main_entry_points_document_every_parameter(path: str) -> None:
    fn = _resolve(path)
    sig = inspect.signature(fn)
    args = _args_section(inspect.getdoc(fn) or "")
    missing = [p for p in sig.parameters if p not in args]
    assert not missing, f"{path}: parameters without an entry in its docstring's Args section: {missing}"
    terse = [p for p, text in args.items() if len(text.split()) < 3]
    assert not terse, f"{path}: Args entries too short to say what the parameter means: {terse}"
    extra = [p for p in args if p not in sig.parameters]
    assert not extra, f"{path}: Args documents parameters the function does not have: {extra}"
    untyped = [p for p, v in sig.parameters.items() if v.annotation is inspect.Parameter.empty]
    assert not untyped, f"{path}: parameters without a type annotation (the reference shows none): {untyped}"
    assert sig.return_annotation is not inspect.Signature.empty, f"{path}: no return annotation"


def _mkdocs() -> list[str] | None:
    exe = shutil.which("mkdocs")
    if exe:
        return [exe]
    if importlib.util.find_spec("mkdocs") and importlib.util.find_spec("mkdocstrings"):
        return [sys.executable, "-m", "mkdocs"]
    return None


@pytest.mark.skipif(_mkdocs() is None, reason="mkdocs is not installed (pip install -e '.[docs]'): the "
                    "strict build and its anchors are not checked; the page entries are")
def test_strict_build_renders_every_predicted_anchor(tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = subprocess.run([*_mkdocs(), "build", "--strict", "-q", "-d", str(site)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    html = "\n".join(p.read_text() for p in (site / "api").rglob("index.html"))
    ids = set(re.findall(r'id="([\w.]+)"', html))
    anchors = sorted(set(documented().values()))
    absent = [a for a in anchors if a not in ids]
    assert not absent, f"the model of mkdocstrings predicted anchors the built pages lack: {absent}"
    for path in MAIN_ENTRY_POINTS:   # the parameter table: name, type, description, default
        start = html.index(f'id="{path}"')
        end = html.find('class="doc doc-heading"', start + len(path) + 40)
        section = html[start:end if end > 0 else None]
        assert "<th>Default</th>" in section, f"{path}: its entry has no parameter table with defaults"
        for name in inspect.signature(_resolve(path)).parameters:
            assert f"<code>{name}</code>" in section, f"{path}: parameter {name} is not in its table"
