"""samples/*.toml: every answer checked against plain torch written here, and `check` passes on each set.

The losses and every formula answer are written again by hand below in plain torch, so the
answers in the sample files are checked without gradexplain (and without evaluating their text).
"""
from __future__ import annotations

import ast
import tomllib

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, run_cli

T = torch.tensor


ANSWERS = {  # (problem, input) → each formula answer of the samples, written again here in plain torch
    ("cubic", "x"): lambda x: 3 * x**2 - 2,
    ("product-rule", "x"): lambda x: torch.exp(x) * (torch.sin(x) + torch.cos(x)),
    ("log-chain", "x"): lambda x: 2 * x / (1 + x**2),
    ("sigmoid", "x"): lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x)),
    ("tanh", "x"): lambda x: 1 - torch.tanh(x) ** 2,
    ("quotient", "x"): lambda x: 1 / (1 + x) ** 2,
    ("chain-exp-square", "x"): lambda x: -2 * x * torch.exp(-(x**2)),
    ("relu", "x"): lambda x: (x > 0).double(),
    ("abs-mean", "x"): lambda x: torch.sign(x - 1) / 4,
    ("mse-line", "w"): lambda x, t, w, b: 2 * ((w * x + b - t) * x).mean(),
    ("bce-with-sigmoid", "z"): lambda z, t: (torch.sigmoid(z) - t) / 3,
    ("quadratic-form", "x"): lambda x, A: (A + A.T) @ x,
    ("quadratic-form", "A"): lambda x, A: torch.outer(x, x),
    ("symmetric-quadratic", "x"): lambda x, S, b: S @ x - b,
    ("trace-of-product", "A"): lambda A, B: B.T,
    ("trace-of-product", "B"): lambda A, B: A.T,
    ("frobenius", "A"): lambda A: 2 * A,
    ("least-squares", "x"): lambda A, y, x: 2 * A.T @ (A @ x - y),
    ("least-squares-weights", "W"): lambda W, x, b, t: 2 * torch.outer(W @ x + b - t, x) / 2,
    ("softmax-cross-entropy", "z"): lambda z: (torch.softmax(z, dim=1) - F.one_hot(T([0, 2]), 3)) / 2,
    ("log-softmax-target", "z"): lambda z, t: torch.softmax(z, dim=0) * t.sum() - t,
    ("linear-layer", "W"): lambda x, W, b, t: 2 * (F.linear(x, W, b) - t).T @ x / 4,
    ("tanh-layer", "W"): lambda x, W, b: (1 - torch.tanh(x @ W.T + b) ** 2).T @ x,
    ("tanh-layer", "b"): lambda x, W, b: (1 - torch.tanh(x @ W.T + b) ** 2).sum(0),
    ("bilinear", "a"): lambda a, B, c: B @ c,
    ("bilinear", "B"): lambda a, B, c: torch.outer(a, c),
    ("bilinear", "c"): lambda a, B, c: B.T @ a,
    ("vector-jacobian", "x"): lambda A, x: A.T @ T([1.0, 0.0, 2.0], dtype=torch.float64),
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
    formulas = {(p["name"], n) for p in problems for n, v in p.get("expect", {}).items() if not is_value(v)}
    assert formulas <= set(ANSWERS)


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
            expected = value(answer) if is_value(answer) else \
                ANSWERS[problem["name"], name](**{n: t.detach() for n, t in env.items()}).double()
        assert expected.shape == env[name].grad.shape, (name, answer)
        assert torch.allclose(expected, env[name].grad, atol=1e-9, rtol=1e-9), (name, answer, env[name].grad)


@pytest.mark.parametrize("sample", SAMPLES)
def test_check_passes_on_samples(sample):
    r = run_cli("check", str(ROOT / "samples" / sample), "--json")
    assert r.code == 0, r.stdout[-2000:]
    doc = r.json()
    assert doc["failed"] == 0 and doc["passed"] == len(load(sample))
