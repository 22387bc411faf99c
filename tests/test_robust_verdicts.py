"""No wrong answer with exit 0 (issue 19): a symbolic disproof beats a numeric near-match, the
user's own `out` is never shadowed, a Jacobian mismatch is a disagreement.  Expected values come
from plain torch, run here."""
from __future__ import annotations

import torch

from tests.conftest import run_cli


def test_near_match_formula_is_disproved():
    # 4.000001*x is within the default tolerance of d(2x²)/dx = 4x at x=1, but it is not 4x
    r = run_cli("eval", "--json", "2*x**2", "x=1", "--expect", "x=4.000001*x")
    assert r.code == 1
    (e,) = r.json()["expect"]
    assert e["outcome"] == "disproved" and e["passed"] is False


def test_right_formula_with_decimal_inputs_is_not_disproved():
    for expr, x, claim in [("0.05*x**2", "0.3", "0.1*x"), ("sin(x)**2", "0.3", "sin(2*x)"),
                           ("(2*x**2).sum()", "0.1,0.7", "4*x")]:
        r = run_cli("eval", "--json", expr, f"x={x}", "--expect", f"x={claim}")
        assert r.code == 0, (expr, r.stdout[-400:])
        assert r.json()["expect"][0]["passed"] is True


def test_check_formula_answer_near_match_fails(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[[problem]]\nname = "near"\nexpr = "x**2"\ninputs = { x = "3" }\nexpect = { x = "2.0000001*x" }\n')
    r = run_cli("check", str(f), "--json")
    assert r.code == 1 and r.json()["failed"] == 1


def test_users_out_is_never_shadowed():
    x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    out = x * 2
    (g,) = torch.autograd.grad(out, x)
    r = run_cli("eval", "--json", "out = x*2; out*3", "x=1", "--output", "out")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["output"]["name"] == "out" and doc["output"]["value"] == float(out)
    assert doc["grads"]["x"]["torch"] == float(g)
    # without --output the last expression is still the output, under a name of its own
    r = run_cli("eval", "--json", "out = x*2; out*3", "x=1")
    assert r.json()["output"]["value"] == float(out * 3) and r.json()["output"]["name"] != "out"


def test_implicit_out_unchanged_without_a_user_out():
    r = run_cli("eval", "--json", "y = x*2; y*3", "x=1")
    assert r.json()["output"]["name"] == "out"


def test_jacobian_mismatch_is_exit_1(monkeypatch):
    # wiring: a --jacobian block that disagrees makes the run disagree (the formula is forced wrong here)
    import sys

    import gradexplain.symbolic as symbolic

    pipeline = sys.modules["gradexplain.explain"]  # the module (gradexplain.explain is the API function)
    real = symbolic.jacobian_text
    monkeypatch.setattr(pipeline, "jacobian_text", lambda *a, **k: f"2*({real(*a, **k)})")
    r = run_cli("eval", "--json", "(x*x).sum()", "x=1,2", "--jacobian")
    assert r.json()["jacobian"]["x"]["agree"] is False
    assert r.code == 1 and r.json()["agree"] is False


def test_empty_dim_tuple_reduces_every_dim_as_torch_does():
    # torch reads dim=() as every dim for sum/mean: the value and the gradient follow it
    for expr, fn in [("(x.sum(())*x).sum()", lambda x: (x.sum(()) * x).sum()),
                     ("(mean(x, ())*x).sum()", lambda x: (torch.mean(x, ()) * x).sum()),
                     ("(x.sum(dim=())*x).sum()", lambda x: (x.sum(dim=()) * x).sum())]:
        x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
        out = fn(x)
        out.backward()
        r = run_cli("eval", "--json", expr, "x=1,2")
        assert r.code == 0, (expr, r.stderr)
        assert r.json()["output"]["value"] == float(out) and r.json()["grads"]["x"]["torch"] == x.grad.tolist(), expr
