"""Gradient formulas are our text, not the user's: reading them back (training steps, Hessians,
Hessian-vector products, --expect proofs) is never held to --max-chars (formula.read_formula).

The EXPR below is 44 characters; its gradient, written per element after the indexed
assignment, is about 195: longer than --max-chars 100, which the EXPR itself is within.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch

from conftest import run_cli
from gradexplain.execute import evaluate
from gradexplain.expect import derivative_formula

EXPR = "b = zeros(4); b[:] = sin(x)*x; (b*b).sum()"


def f(x: torch.Tensor) -> torch.Tensor:
    return ((torch.sin(x) * x) ** 2).sum()


def run(*options: str) -> tuple[dict, torch.Tensor]:
    r = run_cli("eval", EXPR, "x=randn(4)", "--max-chars", "100", "--json", *options)
    assert r.code == 0, r.stderr
    doc = r.json()
    assert len(doc["grads"]["x"]["symbolic"]["expr"]) > 100  # the premise: the formula is over the limit
    return doc, torch.tensor(doc["inputs"]["x"]["value"], dtype=torch.float64)


def test_step_reads_the_long_formula_back():
    doc, x = run("--step", "sgd", "--lr", "0.1")
    p = x.clone().requires_grad_()
    f(p).backward()
    (step,) = doc["steps"]
    assert torch.allclose(torch.tensor(step["params"]["x"]["after"]), x - 0.1 * p.grad)
    assert torch.allclose(torch.tensor(step["params"]["x"]["symbolic"]["value"]), p.grad)
    assert step["agree"] is True


def test_hessian_reads_the_long_formula_back():
    doc, x = run("--hessian", "--no-numeric")
    h = torch.autograd.functional.hessian(f, x)
    block = doc["hessian"]["x"]["x"]
    assert torch.allclose(torch.tensor(block["torch"]), h)
    assert torch.allclose(torch.tensor(block["symbolic"]["value"]), h)


def test_hvp_reads_the_long_formula_back():
    doc, x = run("--hvp", "1,2,3,4", "--no-numeric")
    v = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    _, hv = torch.autograd.functional.hvp(f, x, v)
    entry = doc["hvp"]["x"]
    assert torch.allclose(torch.tensor(entry["symbolic"]["value"]), hv)
    assert entry["agree"] is True


def test_the_proof_reads_a_derivative_longer_than_the_default_limit():
    # --expect's proof reads the report's formula back; 1,200 entries of ``4*x[i]**3`` are more than
    # the 10,000 characters a user's EXPR may have by default
    x = torch.linspace(-1, 1, 1200, dtype=torch.float64)
    text = "stack([" + ", ".join(f"4*x[{i}]**3" for i in range(1200)) + "])"
    assert len(text) > 10_000
    entry = SimpleNamespace(symbolic=SimpleNamespace(expr=text))
    node = derivative_formula(SimpleNamespace(grads={"x": entry}), "x")
    assert torch.allclose(evaluate(node, {"x": x}), 4 * x**3)


def test_expect_formula_with_a_derivative_longer_than_max_chars():
    doc, x = run("--expect", "x=2*sin(x)*x*(sin(x) + x*cos(x))", "--no-numeric")
    p = x.clone().requires_grad_()
    f(p).backward()
    assert torch.allclose(torch.tensor(doc["grads"]["x"]["symbolic"]["value"]), p.grad)
    assert [e["passed"] for e in doc["expect"]] == [True]
