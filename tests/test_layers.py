"""The package imports one way: a declared layer order, no cycles, no deferred project imports.

Every module of ``gradexplain/`` is parsed with ``ast`` (nothing is imported), and every import —
at the top, inside a function, under ``typing.TYPE_CHECKING`` — becomes an edge of the import
graph.  The test fails on

* a module that is in no layer (place it in :data:`LAYERS`),
* an import of a module in a higher layer (data flows input → IR → torch/SymPy → Report → output),
* any cycle,
* an import inside a function of a project module (only the entry layer may defer them, so that
  ``--help`` stays instant), or of a third-party module without a ``# heavy`` marker (deferring is
  only for torch, SymPy, numpy and typer's rich help module).

``TYPE_CHECKING`` imports are exempt from the layer order and the cycle check: they never run.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, run_subprocess

PACKAGE = ROOT / "gradexplain"

# Lowest first.  A module may import modules of its own layer or of a lower one.  A package name
# (``ops``, ``render``) stands for the package and every module inside it.
LAYERS: list[tuple[str, set[str]]] = [
    ("base: errors, limits, comparison, formatting, options", {"__init__", "errors", "limits", "compare", "format", "sample_files", "bignum", "files", "sanitize", "bulk",
                                                               "i18n", "options", "phrases"}),
    ("IR", {"ir"}),
    ("the op registry", {"ops", "symfuncs"}),
    ("text ↔ IR", {"binding", "parse", "printer", "rules", "formula"}),
    ("the torch side", {"execute", "values", "graph_link", "autograd", "misconceptions"}),
    ("SymPy", {"symbolic", "program"}),
    ("the Report", {"report"}),
    ("pipeline", {"train", "numeric", "torch_report", "hessian", "expect", "explain", "check", "record", "recorded",
                  "session", "run"}),
    ("renderers", {"render"}),
    ("entry points", {"cli", "cli_help", "api", "batch", "usage", "__main__"}),
]
ENTRY = {"cli", "api", "batch", "__main__"}  # may defer project imports (marked ``# heavy``): --help must not load torch
HEAVY = {"torch", "sympy", "numpy", "typer"}  # typer: only typer.rich_utils (rich Markdown, pygments: ~0.27 s), for a help screen

# Project modules that are themselves a heavy dependency (SymPy's function classes with PyTorch's
# conventions): the registry defers them, marked ``# heavy``, so listing ops never imports SymPy.
HEAVY_PROJECT = {"symfuncs"}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    deferred: bool  # inside a function
    type_only: bool  # under TYPE_CHECKING
    heavy: bool  # the line says ``# heavy``


def modules() -> dict[str, Path]:
    """``render.text`` → its file, for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        found[".".join(parts)] = path
    return found


def resolve(importer: str, path: Path, node: ast.ImportFrom | ast.Import, known: dict[str, Path]) -> list[str]:
    """The modules an import statement names: project modules by their dotted name (without
    ``gradexplain.``), third-party ones as ``!name``."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
        return [n.removeprefix("gradexplain.") if n.startswith("gradexplain") else "!" + n.split(".")[0]
                for n in names]
    if node.level == 0:
        if not (node.module or "").startswith("gradexplain"):
            return ["!" + (node.module or "").split(".")[0]]
        base = node.module.removeprefix("gradexplain").lstrip(".")
    else:
        package = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)] if node.level > 1 else package
        base = ".".join([*package, *( [node.module] if node.module else [])])
    out = []
    for alias in node.names:  # ``from . import misconceptions`` names a module
        full = f"{base}.{alias.name}" if base else alias.name
        out.append(full if full in known else (base or "__init__"))
    return out


def type_checking_nodes(tree: ast.Module) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside |= {id(n) for n in ast.walk(node)}
    return inside


def imports() -> list[Import]:
    known = modules()
    found = []
    for name, path in known.items():
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source)
        type_only = type_checking_nodes(tree)
        deferred: set[int] = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                deferred |= {id(n) for n in ast.walk(fn) if n is not fn}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not (isinstance(node, ast.ImportFrom) and
                                                                        node.module == "__future__"):
                for target in resolve(name, path, node, known):
                    found.append(Import(name, target, node.lineno, id(node) in deferred, id(node) in type_only,
                                        "# heavy" in lines[node.lineno - 1]))
    return found


def layer_of(module: str) -> int | None:
    top = module.split(".")[0]
    for i, (_, members) in enumerate(LAYERS):
        if module in members or top in members:
            return i
    return None


def group(module: str) -> str:
    """The name a layer lists: a package for its modules (``render`` for ``render.text``)."""
    top = module.split(".")[0]
    return top if any(top in members for _, members in LAYERS) else module


def project_edges() -> list[Import]:
    return [i for i in imports() if not i.imported.startswith("!") and not i.type_only and i.imported != i.importer]


def test_every_module_is_in_a_layer():
    unplaced = sorted(m for m in modules() if layer_of(m) is None)
    assert not unplaced, (f"modules in no layer: {', '.join(unplaced)} — add each to LAYERS in tests/test_layers.py "
                          "(the lowest layer whose modules it may import)")


def test_imports_go_down_the_layers():
    bad = []
    for i in project_edges():
        low, high = layer_of(i.imported), layer_of(i.importer)
        if low is not None and high is not None and low > high:
            bad.append(f"{i.importer}:{i.line} imports {i.imported} ({LAYERS[low][0]} is above {LAYERS[high][0]})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    for i in project_edges():
        graph.setdefault(i.importer, set()).add(i.imported)
    cycles, state, stack = [], {}, []

    def visit(m: str) -> None:
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "open":
                cycles.append(" → ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_deferred_imports_are_only_for_heavy_dependencies():
    bad = []
    for i in imports():
        if not i.deferred or i.type_only:
            continue
        where = f"{i.importer}:{i.line}"
        if not i.imported.startswith("!"):
            if group(i.importer) in ENTRY | {"__init__"} and i.heavy:  # __init__: the API loaded on first use
                continue
            if group(i.imported) in HEAVY_PROJECT and i.heavy:
                continue
            bad.append(f"{where} imports {i.imported} inside a function: import project modules at the top")
        elif i.imported[1:] not in HEAVY:
            bad.append(f"{where} imports {i.imported[1:]} inside a function: only {', '.join(sorted(HEAVY))} may "
                       "be deferred")
        elif not i.heavy:
            bad.append(f"{where} defers {i.imported[1:]} without the '# heavy' marker")
    assert not bad, "\n".join(bad)


GETTEXT_NAMES = {"_", "N_"}  # gettext's public names, by convention spelled like private ones


def test_no_private_names_are_imported_across_modules():
    bad = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__" and \
                    (node.level > 0 or (node.module or "").startswith("gradexplain")):
                bad += [f"{name}:{node.lineno} imports {a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__") and a.name not in GETTEXT_NAMES]
    assert not bad, "\n".join(bad)


def test_the_scan_sees_deferred_relative_and_type_checking_imports():
    edges = {(i.importer, i.imported, i.deferred, i.type_only) for i in imports()}
    assert ("explain", "torch_report", False, False) in edges
    assert ("render.text", "render.backward", False, False) in edges
    assert ("cli", "explain", True, False) in edges  # deferred, in the entry layer
    assert any(i.importer == "format" and i.imported == "!torch" and i.deferred and i.heavy for i in imports())
    assert layer_of("render.text") == layer_of("render") and layer_of("nowhere") is None


# ---------------------------------------------------------------- what the commands load


SYMPY_LOADED = "import sys, runpy; sys.argv = ['gradexplain'] + sys.argv[1:]\n" \
               "try:\n    runpy.run_module('gradexplain.cli', run_name='__main__')\n" \
               "except SystemExit:\n    pass\nprint('sympy' in sys.modules)"


def loads_sympy(*args: str) -> bool:
    p = subprocess.run([sys.executable, "-c", SYMPY_LOADED, *args], capture_output=True, text=True, timeout=120,
                       env={"NO_COLOR": "1", "PATH": "", "HOME": str(ROOT)})
    assert p.stderr == "" or "error" not in p.stderr, p.stderr
    return p.stdout.strip().splitlines()[-1] == "True"


def test_graph_does_not_import_sympy():
    assert not loads_sympy("graph", "y = x*2; z = dot(y, y)*3; z", "x=1,2,3")
    assert run_subprocess("graph", "2*dot(x,x)", "x=1,2,3").code == 0


def test_ops_does_not_import_sympy():
    assert not loads_sympy("ops")


def test_graph_of_an_elementwise_op_does_not_import_sympy():
    assert not loads_sympy("graph", "sin(x).sum()", "x=1,2,3")
