"""samples/*.toml: every answer checked against plain torch written here, and `check` passes on each set.

The losses are written by hand below (one per problem).  Formula answers are EXPR text, and EXPR
is PyTorch syntax, so they are evaluated as plain PyTorch in a namespace of torch functions only
(no builtins) — these are this repository's own sample files, not user input.
"""
from __future__ import annotations

import ast
import tomllib

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, run_cli

T = torch.tensor


def _heaviside(x, v):
    return torch.heaviside(x, torch.tensor(float(v), dtype=x.dtype))


TORCH_NAMES = {
    "exp": torch.exp, "log": torch.log, "sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh, "sqrt": torch.sqrt,
    "sigmoid": torch.sigmoid, "abs": torch.abs, "sign": torch.sign, "heaviside": _heaviside, "dot": torch.dot,
    "outer": torch.outer, "softmax": torch.softmax, "linear": F.linear, "tensor": torch.tensor,
    "one_hot": lambda t, n: F.one_hot(t, n).double(), "ones_like": torch.ones_like,
}

LOSSES = {  # problem name → the loss in plain torch, over the inputs by name
    "cubic": lambda x: (x**3 - 2 * x).sum(),
    "product-rule": lambda x: (torch.exp(x) * torch.sin(x)).sum(),
    "log-chain": lambda x: torch.log(1 + x**2).sum(),
    "log-chain-value": lambda x: torch.log(1 + x**2).sum(),
    "sigmoid": lambda x: torch.sigmoid(x).sum(),
    "tanh": lambda x: torch.tanh(x).sum(),
    "sqrt": lambda x: torch.sqrt(x).sum(),
    "quotient": lambda x: x / (1 + x),
    "chain-exp-square": lambda x: torch.exp(-(x**2)).sum(),
    "relu": lambda x: torch.relu(x).sum(),
    "abs-mean": lambda x: torch.abs(x - 1).mean(),
    "mse-line": lambda x, t, w, b: F.mse_loss(w * x + b, t),
    "bce-with-sigmoid": lambda z, t: F.binary_cross_entropy(torch.sigmoid(z), t),
    "quadratic-form": lambda x, A: x @ A @ x,
    "quadratic-form-value": lambda x, A: x @ A @ x,
    "symmetric-quadratic": lambda x, S, b: 0.5 * x @ S @ x - torch.dot(b, x),
    "trace-of-product": lambda A, B: torch.trace(A @ B),
    "frobenius": lambda A: torch.trace(A.T @ A),
    "least-squares": lambda A, y, x: ((A @ x - y) ** 2).sum(),
    "least-squares-value": lambda A, y, x: ((A @ x - y) ** 2).sum(),
    "least-squares-weights": lambda W, x, b, t: F.mse_loss(W @ x + b, t),
    "softmax-cross-entropy": lambda z: F.cross_entropy(z, T([0, 2])),
    "log-softmax-target": lambda z, t: -(torch.log_softmax(z, dim=0) * t).sum(),
    "linear-layer": lambda x, W, b, t: F.mse_loss(x @ W.T + b, t),
    "tanh-layer": lambda x, W, b: torch.tanh(x @ W.T + b).sum(),
    "bilinear": lambda a, B, c: torch.dot(a, B @ c),
    "vector-jacobian": lambda A, x: A @ x,
}

SAMPLES = ["calculus.toml", "matrix.toml"]


def load(name: str) -> list[dict]:
    with open(ROOT / "samples" / name, "rb") as f:
        return tomllib.load(f)["problem"]


def value(text) -> torch.Tensor:
    """A VALUE as written in the samples (numbers and nested lists only)."""
    return torch.tensor(ast.literal_eval(text) if isinstance(text, str) else text, dtype=torch.float64)


def formula(text: str, env: dict[str, torch.Tensor]) -> torch.Tensor:
    code = compile(text, "<sample answer>", "eval")
    return eval(code, {"__builtins__": {}}, {**TORCH_NAMES, **env})  # noqa: S307 - trusted repo file, torch only


def is_value(text) -> bool:
    try:
        ast.literal_eval(text) if isinstance(text, str) else text
        return True
    except (ValueError, SyntaxError):
        return False


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_set_size_and_coverage(sample):
    problems = load(sample)
    assert len(problems) >= 10
    kinds = {is_value(v) for p in problems for v in p.get("expect", {}).values()}
    assert kinds == {True, False}  # both formula and value answers
    assert {p["name"] for p in problems} <= set(LOSSES)


@pytest.mark.parametrize("problem", [p for s in SAMPLES for p in load(s)], ids=lambda p: p["name"])
def test_every_answer_against_plain_torch(problem):
    const = set(problem.get("const", []))
    env = {n: value(v).requires_grad_(n not in const) for n, v in problem["inputs"].items()}
    out = LOSSES[problem["name"]](**env)
    grad_output = value(problem["grad_output"]) if "grad_output" in problem else None
    out.backward(grad_output)
    if "output" in problem:
        assert torch.allclose(out.detach().reshape(-1), value(problem["output"]).reshape(-1), atol=1e-9)
    assert problem["expect"]
    for name, answer in problem["expect"].items():
        with torch.no_grad():
            expected = value(answer) if is_value(answer) else formula(answer, {n: t.detach() for n, t in env.items()})
        assert expected.shape == env[name].grad.shape, (name, answer)
        assert torch.allclose(expected, env[name].grad, atol=1e-9, rtol=1e-9), (name, answer, env[name].grad)


@pytest.mark.parametrize("sample", SAMPLES)
def test_check_passes_on_samples(sample):
    r = run_cli("check", str(ROOT / "samples" / sample), "--json")
    assert r.code == 0, r.stdout[-2000:]
    doc = r.json()
    assert doc["failed"] == 0 and doc["passed"] == len(load(sample))
