"""Code-shape metrics of the featviz package (issue 19's before/after table), from the source alone (AST).

Prints, per package (``featviz/<pkg>/`` or a top-level module): files and lines; then functions over 40 lines,
functions over 8 parameters, function-level imports, and the package-level import graph (an edge ``a -> b``
when a module of ``a`` imports ``b`` at any level).

    python bench/code_metrics.py            # table
    python bench/code_metrics.py --json     # the same numbers as JSON
"""
from __future__ import annotations

import argparse
import ast
import json
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "featviz"


def package_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def module_package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "featviz" or len(parts) < 2:
        return None
    return parts[1]


def metrics() -> dict:
    files: Counter = Counter()
    lines: Counter = Counter()
    long_fns: list[str] = []
    many_params: list[str] = []
    local_imports: Counter = Counter()
    edges: dict[str, set] = defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        pkg = package_of(path)
        text = path.read_text()
        files[pkg] += 1
        lines[pkg] += len(text.splitlines())
        tree = ast.parse(text)
        rel = path.relative_to(ROOT.parent)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 40:
                    long_fns.append(f"{rel}:{node.name} ({n} lines)")
                a = node.args
                every = a.posonlyargs + a.args + a.kwonlyargs
                params = [p.arg for p in every if p.arg not in ("self", "cls")]
                if len(params) > 8:
                    many_params.append(f"{rel}:{node.name} ({len(params)} parameters)")
                for sub in ast.walk(node):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)) and sub is not node:
                        local_imports[pkg] += 1
            if isinstance(node, ast.ImportFrom) and node.module:
                target = module_package(node.module)
                if target is None and node.module == "featviz":
                    for alias in node.names:
                        if (ROOT / alias.name).is_dir() or (ROOT / f"{alias.name}.py").is_file():
                            edges[pkg].add(alias.name)
                elif target and target != pkg:
                    edges[pkg].add(target)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    target = module_package(alias.name)
                    if target and target != pkg:
                        edges[pkg].add(target)
    return {
        "files": dict(files), "lines": dict(lines),
        "total_files": sum(files.values()), "total_lines": sum(lines.values()),
        "functions_over_40_lines": sorted(long_fns), "functions_over_8_parameters": sorted(many_params),
        "function_level_imports": dict(local_imports),
        "total_function_level_imports": sum(local_imports.values()),
        "import_graph": {k: sorted(v) for k, v in sorted(edges.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    m = metrics()
    if args.json:
        print(json.dumps(m, indent=1))
        return
    local = m["function_level_imports"]
    print(f"{'package':<14}{'files':>6}{'lines':>8}{'fn-level imports':>18}")
    for pkg in sorted(m["files"], key=lambda p: -m["lines"][p]):
        print(f"{pkg:<14}{m['files'][pkg]:>6}{m['lines'][pkg]:>8}{local.get(pkg, 0):>18}")
    total = m["total_function_level_imports"]
    print(f"{'total':<14}{m['total_files']:>6}{m['total_lines']:>8}{total:>18}")
    print(f"\nfunctions over 40 lines: {len(m['functions_over_40_lines'])}")
    print(f"functions over 8 parameters: {len(m['functions_over_8_parameters'])}")
    for f in m["functions_over_8_parameters"]:
        print("   ", f)
    print("\nimport graph (package -> packages it imports):")
    for k, v in m["import_graph"].items():
        print(f"  {k:<12} -> {', '.join(v)}")


if __name__ == "__main__":
    main()
