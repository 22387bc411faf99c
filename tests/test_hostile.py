"""Hostile and broken input: a clean exit with one ``error:`` line, hard limits, nothing executed.

The cases live in bench/hostile.py (which also prints the README table from them); every one runs
here through the real entry point, ``gradexplain.cli.main``, in-process.
"""
from __future__ import annotations

import ast
import json
import sys
import time

import pytest
import torch

from conftest import ROOT, run_subprocess

sys.path.insert(0, str(ROOT / "bench"))
from hostile import CASES, TIME_LIMIT_S, materialise, run_case, run_main  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Import torch and SymPy once, so no case's time includes the imports."""
    run_main(["eval", "2*dot(x,x)", "x=1,2,3"])


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.kind.split()[0]}" for i, c in enumerate(CASES, 1)])
def test_hostile_input_ends_cleanly(case, tmp_path):
    out = run_case(case, tmp_path)
    _, sentinel = materialise(case, tmp_path)
    assert out.exception is None, repr(out.exception)
    assert out.code in case.codes, out.stderr or out.stdout[-500:]
    assert "Traceback" not in out.stderr + out.stdout
    assert out.seconds <= TIME_LIMIT_S
    assert not sentinel.exists(), "a payload was executed"
    if out.code == 2:
        lines = out.stderr.splitlines()
        assert lines[0].startswith("error:") and len(out.error_lines) == 1, out.stderr
        assert len(lines) == 1 or (len(lines) == 3 and lines[2].strip() == "^"), out.stderr  # caret optional
        assert len(lines) == 3 or not case.caret, "a parse error shows where"


def test_payload_in_a_real_process_creates_nothing(tmp_path):
    sentinel = tmp_path / "PWNED"
    for args in (["eval", f"__import__('os').system('touch {sentinel}')"],
                 ["eval", "2*x", f"x=__import__('os').system('touch {sentinel}')"]):
        r = run_subprocess(*args)
        assert r.code == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
    assert not sentinel.exists()


def test_debug_shows_the_traceback():
    args = ("eval", "dot(x, y)", "x=1,2", "y=1,2,3")
    assert "Traceback" in run_subprocess(*args, "--debug").stderr
    plain = run_main(list(args))
    assert plain.code == 2 and "Traceback" not in plain.stderr


@pytest.mark.parametrize("args, option", [
    (["eval", "x*9**9**9", "x=1"], "--max-exponent"),
    (["eval", "sum(x)", "x=ones(10**9)"], "--max-elements"),
    (["eval", "x" + "+x" * 5000, "x=1"], "--max-chars"),
    (["eval", "exp(" * 101 + "x" + ")" * 101, "x=1"], "--max-depth"),
    (["eval", "y = x; " * 201 + "y", "x=1"], "--max-statements"),
    (["eval", "sum(x)", "x=ones(20)", "--max-elements", "10"], "--max-elements"),
])
def test_each_limit_names_its_option(args, option):
    out = run_main(args)
    assert out.code == 2 and len(out.error_lines) == 1
    assert f"raise it with {option}" in out.error_lines[0]


def test_raising_a_limit_lets_the_input_through():
    assert run_main(["eval", "sum(x)", "x=ones(20)", "--max-elements", "10"]).code == 2
    assert run_main(["eval", "sum(x)", "x=ones(20)", "--max-elements", "20"]).code == 0


def test_symbolic_budget_covers_the_whole_run():
    from gradexplain.limits import run_budget
    from gradexplain.symbolic import SymbolicTimeout, budget

    with run_budget(0.01):
        time.sleep(0.02)
        with pytest.raises(SymbolicTimeout, match="--symbolic-timeout"):
            with budget(10):
                pass


def test_past_the_symbolic_budget_torch_is_still_reported():
    out = run_main(["eval", "--json", "--symbolic-timeout", "0.001", "sum(softmax(x, dim=0) * log(x))", "x=1,2,3"])
    assert out.code == 0, out.stderr
    grad = out_json(out)["grads"]["x"]
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    (torch.softmax(x, 0) * torch.log(x)).sum().backward()
    assert grad["torch"] == pytest.approx(x.grad.tolist())
    if grad["symbolic"] is None:  # on a fast machine SymPy may finish within a millisecond
        assert "--symbolic-timeout" in grad["reason"]


def out_json(out) -> dict:
    return json.loads(out.stdout)


@pytest.mark.parametrize("args, shapes", [
    (["eval", "dot(x, y)", "x=1,2", "y=1,2,3"], ("[2]", "[3]")),
    (["eval", "mm(a, b).sum()", "a=ones(2,3)", "b=ones(2,4)"], ("[2, 3]", "[2, 4]")),
])
def test_shape_errors_name_both_shapes(args, shapes):
    out = run_main(args)
    assert out.code == 2
    assert all(s in out.error_lines[0] for s in shapes), out.error_lines


def test_nan_and_inf_values_are_reported_not_errors():
    out = run_main(["eval", "--json", "sum(2*x)", "x=nan,inf,1"])
    assert out.code in (0, 1), out.stderr
    doc = out_json(out)
    assert doc["inputs"]["x"]["value"] == ["nan", "inf", 1.0]
    assert doc["output"]["value"] == "nan"
    assert doc["grads"]["x"]["torch"] == [2.0, 2.0, 2.0]  # d(sum 2x)/dx = 2 whatever x is


def test_error_line_shows_control_characters_escaped():
    out = run_main(["eval", "2*x", "x=1\x1b]0;title\x07\n2"])
    assert out.code == 2 and "\x1b" not in out.stderr and "\x07" not in out.stderr
    assert out.stderr.splitlines()[0].startswith("error: x=1\\x1b]0;title\\x07\\n2")


def test_one_broken_problem_does_not_stop_the_others(tmp_path):
    path = tmp_path / "set.toml"
    path.write_text("[[problem]]\nname = 'broken'\nexpr = '2*x'\ninputs = { x = '1' }\nseed = 'abc'\n"
                    "[[problem]]\nname = 'fine'\nexpr = '2*dot(x,x)'\ninputs = { x = '1,2' }\n"
                    "expect = { x = '[4,8]' }\n")
    out = run_main(["check", str(path), "--json"])
    assert out.code == 1, out.stderr
    broken, fine = out_json(out)["problems"]
    assert not broken["passed"] and "seed must be an integer" in broken["failures"][0]
    assert fine["passed"]


# ----------------------------------------------------------------------- nothing the user typed is run

FORBIDDEN_CALLS = {"eval", "exec", "compile", "sympify", "parse_expr", "__import__", "import_module", "S"}
# getattr with a computed name, each over names the program chose, never over user text:
SAFE_GETATTR = {
    ("spec.py", "getattr(symfuncs, name)"),  # SymPy functions named by the op registry
    ("spec.py", "getattr(sympy, name.removeprefix(\"sympy.\"))"),  # SymPy functions named by the op registry
    ("report.py", "getattr(obj, k)"),  # a dataclass's own fields
    ("autograd.py", "getattr(node, attr)"),  # _saved_* names from dir() of an autograd node
    ("train.py", "getattr(t, opt)"),  # a fixed tuple of option field names
    ("recorded.py", "setattr(o, f.name, walk(getattr(o, f.name)))"),  # a dataclass's own fields (renaming)
    ("recorded.py", "getattr(o, f.name)"),
    ("api.py", "getattr(report, f.name)"),  # a Report's own fields
    ("__init__.py", "getattr(api, name)"),  # the package's API names, checked against __all__
    ("cli_help.py", "setattr(rich_utils, name, _(text))"),  # typer's help words: names from the constant RICH_WORDS
}


def called_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def dangerous(source: str, filename: str) -> list[str]:
    """Every call or import in ``source`` that could run text as code or a name as an attribute."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(n in ("pickle", "marshal", "shelve", "sympify") or n.startswith("sympy.parsing") for n in names):
                found.append(f"{filename}:{node.lineno}: imports {', '.join(filter(None, names))}")
        if not isinstance(node, ast.Call):
            continue
        name, text = called_name(node), ast.get_source_segment(source, node) or ""
        computed_name = len(node.args) > 1 and not isinstance(node.args[1], ast.Constant)
        if name == "compile" and text.startswith("re."):  # a regular expression, not code
            continue
        if (name in FORBIDDEN_CALLS or (name == "load" and text.startswith("torch."))
                or (name in ("getattr", "setattr") and computed_name and (filename, text) not in SAFE_GETATTR)
                or any(k.arg == "shell" for k in node.keywords) or text.startswith("os.system")):
            found.append(f"{filename}:{node.lineno}: {text[:80]}")
    return found


def test_no_user_text_reaches_eval_exec_sympify_getattr_or_load():
    found = [f for path in sorted((ROOT / "gradexplain").rglob("*.py")) for f in dangerous(path.read_text(), path.name)]
    assert not found, "\n".join(found)


def test_the_source_scan_catches_each_kind():
    source = ("import pickle\nfrom sympy.parsing.sympy_parser import parse_expr\neval(t)\nexec(t)\n"
              "compile(t, 'f', 'exec')\nsympy.sympify(t)\nparse_expr(t)\ngetattr(x, user)\ntorch.load(f)\n"
              "subprocess.run(c, shell=True)\ngetattr(x, 'T')\n")
    assert len(dangerous(source, "x.py")) == 10
