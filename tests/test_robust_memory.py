"""Whole-run memory (issue 19): big values are not duplicated, and what a run would hold is
predicted from the shapes before the work.  Lean: small tensors with the thresholds lowered; the
10^7-element measurements live in bench/memory.py."""
from __future__ import annotations

import math
import time

import pytest
import torch

import gradexplain.bulk as bulk
import gradexplain.execute as execute
from gradexplain.autograd import run_output, run_program
from gradexplain.bulk import Summary
from gradexplain.compare import compare
from gradexplain.parse import parse_program
from tests.conftest import run_cli


def test_a_run_past_the_memory_limit_is_refused_before_the_work():
    start = time.monotonic()
    r = run_cli("eval", "(x*x*x*x*x*x*x*x*x*x*x*x).sum()", "x=ones(10**7)")  # torch alone would need > 1 GiB
    assert r.code == 2 and "--max-memory" in r.stderr and "MiB" in r.stderr
    assert time.monotonic() - start < 15  # refused from the shapes (meta tensors), nothing computed


def test_the_memory_limit_is_an_option():
    args = ("eval", "--brief", "(x*x*x*x*x*x).sum()", "x=ones(100000)")  # 6 values + 3 gradients of 0.76 MiB
    refused = run_cli(*args, "--max-memory", "2")
    assert refused.code == 2 and "over the limit of 2 MiB (raise it with --max-memory)" in refused.stderr
    assert run_cli(*args).code == 0


def test_big_graph_flows_are_kept_as_summaries_with_torch_values():
    r = run_cli("eval", "--json", "(x*x*x).sum()", "x=arange(1000)", "--max-json-values", "100")
    assert r.code == 0, r.stderr
    x = torch.arange(1000, dtype=torch.float64, requires_grad=True)
    (x * x * x).sum().backward()
    doc = r.json()
    leaf = next(g for g in doc["graph"] if g["node"] == "AccumulateGrad")
    assert leaf["grad_output"] == {"summary": True, "shape": [1000], "min": float(x.grad.min()),
                                   "max": float(x.grad.max()), "mean": float(x.grad.mean()), "nonfinite": 0}
    assert doc["grads"]["x"]["agree"] is True and doc["grads"]["x"]["torch"]["max"] == float(x.grad.max())
    text = run_cli("eval", "(x*x*x).sum()", "x=arange(1000)", "--max-json-values", "100")
    assert text.code == 0 and "x.grad = shape [1000]: [0, 3, 12, 27, …]" in text.stdout.replace("\n", " ")


@pytest.mark.parametrize("expr, values", [
    ("x[x > 0].sum()", ["x=arange(-20, 20)"]),                  # a data-dependent shape: computed for real
    ("where(x > 0, x, 2*x).sum()", ["x=arange(-20, 20)"]),
    ("(A @ x).sum()", ["A=ones(5, 8)", "x=arange(8)"]),
    ("y = x*1; y += x**2; y[1:].sum()", ["x=arange(40)"]),       # in place
    ("mm(A, B)", ["A=ones(6, 7)", "B=ones(6, 7)"]),               # a shape error: torch's own message
])
def test_meta_stand_ins_in_the_shape_pass_change_nothing(monkeypatch, expr, values):
    before = run_cli("eval", "--json", expr, *values)
    monkeypatch.setattr(execute, "STAND_IN_ABOVE", 4)
    after = run_cli("eval", "--json", expr, *values)
    assert (after.code, after.stdout, after.stderr) == (before.code, before.stdout, before.stderr)


@pytest.mark.parametrize("expr", ["y = x*2; z = y*y*3; z.mean()", "y = x*1; y += 1; z = y*1; z *= x; (y*z).sum()",
                                  "a = x*x; b = a + a; c = b*a; c.sum()", "x.sum()"])
def test_a_lean_run_gives_the_same_output(expr):
    program = parse_program(expr)
    env = {"x": torch.arange(5, dtype=torch.float64)}
    assert torch.equal(run_output(program, {"x": env["x"].clone()}),
                       run_program(program, {"x": env["x"].clone()})[program.output])


def _tensors():
    t = torch.randn(37, 29, dtype=torch.float64)
    t[3, 4], t[7, 1], t[20, 20] = math.nan, math.inf, -math.inf
    return [t, t.t(), torch.ones((), dtype=torch.float64).expand(50, 40), t[:, 3], torch.arange(100).float()]


def test_comparison_in_pieces_equals_one_piece(monkeypatch):
    pairs = [(a, a.clone()) for a in _tensors()] + [(a, a + 1e-3) for a in _tensors()]
    whole = [compare(a, b, 1e-6) for a, b in pairs]
    monkeypatch.setattr(bulk, "PIECE", 7)
    assert [compare(a, b, 1e-6) for a, b in pairs] == whole


def test_a_summary_says_what_torch_says(monkeypatch):
    monkeypatch.setattr(bulk, "PIECE", 7)
    for t in _tensors():
        s = Summary.of(t)
        flat = t.reshape(-1).double()
        finite = flat[torch.isfinite(flat)]
        assert s.shape == t.shape and s.nonfinite == flat.numel() - finite.numel()
        assert s.finite_min == float(finite.min()) and s.finite_max == float(finite.max())
        assert s.finite_mean == pytest.approx(float(finite.mean()), rel=1e-12)
        assert list(s.head) == flat[:4].tolist()
        assert (math.isnan(s.min) and math.isnan(float(flat.min()))) or s.min == float(flat.min())


def test_check_keeps_big_tensors_of_finished_problems_as_summaries(tmp_path):
    from gradexplain.check import run_check
    from gradexplain.limits import Limits

    f = tmp_path / "p.toml"
    f.write_text('[[problem]]\nname = "sq"\nexpr = "(x*x).sum()"\ninputs = { x = "arange(50)" }\nexpect = { x = "2*x" }\n')
    result = run_check(str(f), limits=Limits(max_json_values=10))
    report = result.problems[0].result
    assert result.passed == 1 and isinstance(report.inputs["x"].value, Summary)
    assert isinstance(report.grads["x"].torch, Summary) and report.grads["x"].torch.finite_max == 98.0
    for fmt in ("markdown", "text", "latex"):
        r = run_cli("check", str(f), "--format", fmt, "--max-json-values", "10")
        assert r.code == 0, (fmt, r.stdout, r.stderr)
