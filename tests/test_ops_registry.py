"""Every user op of the registry, checked three ways on random float64 inputs.

For each case the test computes (a) the gradient with plain torch autograd, written here,
compares it with (b) what ``gradexplain eval --json`` reports as torch's gradient *and* as the
value of the symbolic formula, and runs (c) ``torch.autograd.gradcheck`` on the plain-torch
version, so the reference itself is known to be right.  Ops without a gradient (sign,
heaviside, one_hot, numel, constructors, comparisons) get forward-value checks.  The ops a
case covers are read from its parsed EXPR, and :func:`test_every_user_op_is_covered` fails
when an op is added to the registry without a case here.
"""
from __future__ import annotations

import functools
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import torch
import torch.nn.functional as F

from conftest import Result, run_cli
from gradexplain.ir import Call, walk
from gradexplain.ops import REGISTRY
from gradexplain.parse import parse_expression, parse_program

# Domains keep inputs away from non-differentiable points and outside undefined regions.
DOMAINS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "any": lambda u: 4 * u - 2,  # [-2, 2]
    "pos": lambda u: 0.5 + 1.5 * u,  # [0.5, 2]
    "nz": lambda u: torch.where(u < 0.5, -(0.2 + 3.6 * u), 0.2 + 3.6 * (u - 0.5)),  # |v| >= 0.2
    "prob": lambda u: 0.1 + 0.8 * u,  # (0, 1) for probabilities
    "small": lambda u: 2 * u - 1,  # [-1, 1] (tan)
}
TOL = 1e-9


@dataclass(frozen=True)
class Case:
    """One EXPR, its plain-torch twin (taking the inputs in order) and the inputs' shapes/domains."""

    id: str
    expr: str
    fn: Callable[..., torch.Tensor]
    inputs: dict[str, tuple[tuple[int, ...], str]]
    const: tuple[str, ...] = ()


def In(*shape: int, domain: str = "any") -> tuple[tuple[int, ...], str]:
    return shape, domain


def C(id: str, expr: str, fn: Callable[..., torch.Tensor], const: tuple[str, ...] = (), **inputs: Any) -> Case:
    return Case(id, expr, fn, inputs, const)


def _dropout_eval(x: torch.Tensor) -> torch.Tensor:
    return F.dropout(x, 0.5, training=False)


GRAD_CASES: list[Case] = [
    # elementwise arithmetic, with broadcasting in both directions
    C("add", "add(a, b)", lambda a, b: a + b, a=In(2, 3), b=In(2, 1)),
    C("add-op", "a + b", lambda a, b: a + b, a=In(3), b=In(2, 3)),
    C("sub", "a - b", lambda a, b: a - b, a=In(2, 3), b=In(3)),
    C("mul", "mul(a, b)", lambda a, b: a * b, a=In(3), b=In(2, 3)),
    C("div", "a / b", lambda a, b: a / b, a=In(2, 3), b=In(3, domain="nz")),
    C("pow", "a ** b", lambda a, b: a ** b, a=In(2, 3, domain="pos"), b=In(3)),
    C("pow-int", "a.pow(3)", lambda a: a.pow(3), a=In(4)),
    C("pow-scalar-base", "2 ** a", lambda a: 2 ** a, a=In(3)),
    C("neg", "-a", lambda a: -a, a=In(2, 3)),
    C("neg-fn", "neg(a) * b", lambda a, b: -a * b, a=In(3), b=In(3)),
    # elementwise functions (rule from sympy.diff)
    C("exp", "exp(a)", torch.exp, a=In(2, 3)),
    C("log", "log(a)", torch.log, a=In(2, 3, domain="pos")),
    C("sqrt", "sqrt(a)", torch.sqrt, a=In(2, 3, domain="pos")),
    C("abs", "abs(a)", torch.abs, a=In(2, 3, domain="nz")),
    C("sin", "sin(a)", torch.sin, a=In(2, 3)),
    C("cos", "cos(a)", torch.cos, a=In(2, 3)),
    C("tan", "tan(a)", torch.tan, a=In(2, 3, domain="small")),
    C("tanh", "tanh(a)", torch.tanh, a=In(2, 3)),
    C("sigmoid", "sigmoid(a)", torch.sigmoid, a=In(2, 3)),
    C("relu", "relu(a)", torch.relu, a=In(2, 3, domain="nz")),
    C("sign", "sign(a) * a", lambda a: torch.sign(a) * a, a=In(2, 3, domain="nz")),
    C("heaviside", "heaviside(a, 0.5) * b", lambda a, b: torch.heaviside(a, torch.tensor(0.5)) * b,
      const=("a",), a=In(2, 3, domain="nz"), b=In(2, 3)),
    C("where", "where(a > b, a*a, b)", lambda a, b: torch.where(a > b, a * a, b), a=In(2, 3), b=In(3)),
    C("where-le", "where(a <= 0.5, sin(a), 2*a)", lambda a: torch.where(a <= 0.5, torch.sin(a), 2 * a),
      a=In(4, domain="nz")),
    # reductions
    C("sum", "a.sum()", lambda a: a.sum(), a=In(2, 3)),
    C("sum-dim", "sum(a, dim=1)", lambda a: a.sum(1), a=In(2, 3)),
    C("sum-dims-keepdim", "a.sum((0, 2), keepdim=True)", lambda a: a.sum((0, 2), keepdim=True), a=In(2, 3, 2)),
    C("mean", "(a*a).mean()", lambda a: (a * a).mean(), a=In(2, 3)),
    C("mean-dim-keepdim", "mean(a, 0, keepdim=True)", lambda a: a.mean(0, keepdim=True), a=In(2, 3)),
    C("mean-last", "a.mean(-1)", lambda a: a.mean(-1), a=In(2, 3)),
    C("max", "max(a)", lambda a: a.max(), a=In(2, 3)),
    C("max-pair", "max(a, b)", lambda a, b: torch.maximum(a, b), a=In(2, 3), b=In(3)),
    C("max-dim", "a.max(1)", lambda a: a.amax(1), a=In(2, 3)),
    C("max-keepdim", "max(a, dim=0, keepdim=True)", lambda a: a.amax(0, keepdim=True), a=In(2, 3)),
    C("min", "min(a)", lambda a: a.min(), a=In(2, 3)),
    C("min-pair", "minimum(a, b)", lambda a, b: torch.minimum(a, b), a=In(2, 3), b=In(2, 3)),
    C("min-dim", "a.min(0)", lambda a: a.amin(0), a=In(2, 3)),
    C("norm", "norm(a)", lambda a: torch.linalg.vector_norm(a), a=In(2, 3)),
    C("norm-p1", "norm(a, p=1)", lambda a: torch.linalg.vector_norm(a, ord=1), a=In(4, domain="nz")),
    C("norm-p3", "norm(a, 3)", lambda a: torch.linalg.vector_norm(a, ord=3), a=In(4, domain="nz")),
    C("norm-dim", "norm(a, dim=1)", lambda a: torch.linalg.vector_norm(a, dim=1), a=In(2, 3)),
    C("logsumexp", "logsumexp(a, 1)", lambda a: torch.logsumexp(a, 1), a=In(2, 3)),
    C("logsumexp-keepdim", "a.logsumexp(0, keepdim=True)", lambda a: torch.logsumexp(a, 0, keepdim=True), a=In(2, 3)),
    C("numel", "numel(a) * (a*a).sum()", lambda a: a.numel() * (a * a).sum(), a=In(2, 3)),
    C("trace", "trace(a)", torch.trace, a=In(3, 3)),
    C("trace-rect", "a.trace() * 2", lambda a: torch.trace(a) * 2, a=In(2, 3)),
    # linear algebra
    C("matmul-mv", "a @ b", lambda a, b: a @ b, a=In(2, 3), b=In(3)),
    C("matmul-vm", "a @ b", lambda a, b: a @ b, a=In(3), b=In(3, 2)),
    C("matmul-mm", "matmul(a, b)", lambda a, b: a @ b, a=In(2, 3), b=In(3, 4)),
    C("matmul-vv", "a @ b", lambda a, b: a @ b, a=In(3), b=In(3)),
    C("matmul-batched", "a @ b", lambda a, b: a @ b, a=In(2, 2, 3), b=In(3, 4)),
    C("matmul-batched-left", "a @ b", lambda a, b: a @ b, a=In(2, 3), b=In(2, 3, 4)),
    C("mm", "mm(a, b)", torch.mm, a=In(2, 3), b=In(3, 2)),
    C("mv", "mv(a, b)", torch.mv, a=In(2, 3), b=In(3)),
    C("dot", "dot(a, b)", torch.dot, a=In(3), b=In(3)),
    C("outer", "outer(a, b)", torch.outer, a=In(2), b=In(3)),
    C("linear", "linear(x, W, b)", F.linear, x=In(2, 3), W=In(4, 3), b=In(4)),
    C("linear-vector-nobias", "linear(x, W)", F.linear, x=In(3), W=In(2, 3)),
    C("t", "a.t()", lambda a: a.t(), a=In(2, 3)),
    C("T", "a.T @ b", lambda a, b: a.T @ b, a=In(2, 3), b=In(2)),
    C("transpose", "a.transpose(0, 2)", lambda a: a.transpose(0, 2), a=In(2, 3, 2)),
    C("reshape", "a.reshape(3, 2)", lambda a: a.reshape(3, 2), a=In(2, 3)),
    C("view", "a.view(-1)", lambda a: a.view(-1), a=In(2, 3)),
    C("unsqueeze", "a.unsqueeze(1) * b", lambda a, b: a.unsqueeze(1) * b, a=In(2), b=In(3)),
    C("squeeze", "a.squeeze()", lambda a: a.squeeze(), a=In(2, 1, 3)),
    C("squeeze-dim", "squeeze(a, 1)", lambda a: a.squeeze(1), a=In(2, 1, 3)),
    C("expand_as", "a.expand_as(b)", lambda a, b: a.expand_as(b), a=In(3), b=In(2, 3)),
    C("stack", "stack([a, a*b], dim=1)", lambda a, b: torch.stack([a, a * b], dim=1), a=In(2, 3), b=In(2, 3)),
    C("cat", "cat([a, b], 0)", lambda a, b: torch.cat([a, b], 0), a=In(2, 3), b=In(1, 3)),
    C("cat-dim1", "cat([a, b], dim=1)", lambda a, b: torch.cat([a, b], dim=1), a=In(2, 1), b=In(2, 2)),
    # softmax and losses
    C("softmax", "softmax(a, 1)", lambda a: F.softmax(a, 1), a=In(2, 3)),
    C("softmax-dim0", "softmax(a, dim=0)", lambda a: F.softmax(a, dim=0), a=In(2, 3)),
    C("softmax-vector", "softmax(a) * b", lambda a, b: F.softmax(a, 0) * b, a=In(4), b=In(4)),
    C("log_softmax", "log_softmax(a, 1)", lambda a: F.log_softmax(a, 1), a=In(2, 3)),
    C("mse_loss", "mse_loss(a, t)", F.mse_loss, a=In(2, 3), t=In(2, 3)),
    C("mse_loss-sum", "mse_loss(a, t, reduction='sum')", lambda a, t: F.mse_loss(a, t, reduction="sum"),
      a=In(3), t=In(3)),
    C("mse_loss-none", "mse_loss(a, t, reduction='none')", lambda a, t: F.mse_loss(a, t, reduction="none"),
      a=In(3), t=In(3)),
    C("bce", "binary_cross_entropy(p, t)", F.binary_cross_entropy, p=In(2, 3, domain="prob"), t=In(2, 3, domain="prob")),
    C("bce-sigmoid-sum", "binary_cross_entropy(sigmoid(z), t, reduction='sum')",
      lambda z, t: F.binary_cross_entropy(torch.sigmoid(z), t, reduction="sum"),
      const=("t",), z=In(4), t=In(4, domain="prob")),
    C("cross_entropy", "cross_entropy(z, tensor([0, 2, 1]))", lambda z: F.cross_entropy(z, torch.tensor([0, 2, 1])),
      z=In(3, 4)),
    C("cross_entropy-sum", "cross_entropy(z, tensor([3, 0]), reduction='sum')",
      lambda z: F.cross_entropy(z, torch.tensor([3, 0]), reduction="sum"), z=In(2, 4)),
    C("cross_entropy-none", "cross_entropy(z, tensor([1, 0]), reduction='none')",
      lambda z: F.cross_entropy(z, torch.tensor([1, 0]), reduction="none"), z=In(2, 3)),
    C("cross_entropy-1d", "cross_entropy(z, tensor(2))", lambda z: F.cross_entropy(z, torch.tensor(2)), z=In(4)),
    C("cross_entropy-probs", "cross_entropy(z, softmax(t, 1))", lambda z, t: F.cross_entropy(z, F.softmax(t, 1)),
      z=In(2, 3), t=In(2, 3)),
    C("one_hot", "(one_hot(tensor([0, 2, 1]), 3) * z).sum()",
      lambda z: (F.one_hot(torch.tensor([0, 2, 1]), 3) * z).sum(), z=In(3, 3)),
    C("layer_norm", "layer_norm(x, (3,), weight=w, bias=b)", lambda x, w, b: F.layer_norm(x, (3,), w, b),
      x=In(2, 3), w=In(3), b=In(3)),
    C("layer_norm-positional", "layer_norm(x, (3,), w, b)", lambda x, w, b: F.layer_norm(x, (3,), w, b),
      x=In(2, 3), w=In(3), b=In(3)),
    C("layer_norm-plain", "layer_norm(x, 4).sum()", lambda x: F.layer_norm(x, (4,)).sum(), x=In(4)),
    C("dropout-eval", "dropout(x, 0.5, training=False)", _dropout_eval, x=In(2, 3)),
    # constant-valued ops inside differentiable expressions
    C("ones_like", "a + ones_like(a)", lambda a: a + torch.ones_like(a), a=In(3)),
    C("zeros_like", "a*a + zeros_like(a)", lambda a: a * a + torch.zeros_like(a), a=In(3)),
    C("full_like", "a * full_like(a, 2.5)", lambda a: a * torch.full_like(a, 2.5), a=In(3)),
    C("zeros", "a + zeros(2, 3)", lambda a: a + torch.zeros(2, 3), a=In(3)),
    C("ones", "a * ones(2, 1)", lambda a: a * torch.ones(2, 1), a=In(3)),
    C("full", "a * full((3,), 1.5)", lambda a: a * torch.full((3,), 1.5), a=In(3)),
    C("eye", "a @ eye(3)", lambda a: a @ torch.eye(3), a=In(2, 3)),
    C("arange", "a * arange(3)", lambda a: a * torch.arange(3.0), a=In(3)),
    C("tensor", "a * tensor([1.5, -2, 0.25])", lambda a: a * torch.tensor([1.5, -2.0, 0.25]), a=In(3)),
]
CASES_BY_ID = {c.id: c for c in GRAD_CASES}
assert len(CASES_BY_ID) == len(GRAD_CASES), "case ids must be unique"


@dataclass(frozen=True)
class ValueCase:
    """An eval whose output has no gradient: its forward value is what is checked."""

    id: str
    args: tuple[str, ...]
    expected: Any  # the output value, computed here with plain torch or by hand
    value_ops: tuple[str, ...] = field(default=())  # ops that appear only in NAME=VALUE texts


torch.manual_seed(7)
_RAND = torch.rand(2, 3, dtype=torch.float64)
torch.manual_seed(7)
_RANDN = torch.randn(3, dtype=torch.float64)

VALUE_CASES: list[ValueCase] = [
    ValueCase("sign", ("sign(a)", "a=[-2.5, 0, 3]", "--const", "a"), [-1.0, 0.0, 1.0]),
    ValueCase("heaviside", ("heaviside(a, 0.5)", "a=[-1, 0, 2]", "--const", "a"), [0.0, 0.5, 1.0]),
    ValueCase("where-ge", ("where(a >= 0, a, 0)", "a=[-1, 0, 2]", "--const", "a"), [0.0, 0.0, 2.0]),
    ValueCase("where-lt", ("where(a < 1, 1, 2)", "a=[0, 5]", "--const", "a"), [1.0, 2.0]),
    ValueCase("one_hot", ("one_hot(tensor([0, 2, 1]), 3)",), [[1, 0, 0], [0, 0, 1], [0, 1, 0]]),
    ValueCase("one_hot-infer", ("one_hot(tensor([1, 0]))",), [[0, 1], [1, 0]]),
    ValueCase("numel", ("a.numel()", "a=ones(2, 5)", "--const", "a"), 10),
    ValueCase("zeros_like", ("zeros_like(a)", "a=[1, 2]"), [0.0, 0.0]),
    ValueCase("ones_like", ("ones_like(a)", "a=[[1, 2]]"), [[1.0, 1.0]]),
    ValueCase("full_like", ("full_like(a, 7)", "a=[1, 2]"), [7.0, 7.0]),
    ValueCase("zeros", ("zeros(2, 3)",), [[0.0] * 3] * 2),
    ValueCase("ones", ("ones(3)",), [1.0] * 3),
    ValueCase("full", ("full((2, 2), -1.5)",), [[-1.5, -1.5], [-1.5, -1.5]]),
    ValueCase("eye", ("eye(2, 3)",), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    ValueCase("arange", ("arange(1, 7, 2)",), [1.0, 3.0, 5.0]),
    ValueCase("tensor-int", ("tensor([[1, 2], [3, 4]])",), [[1, 2], [3, 4]]),
    ValueCase("tensor-float", ("tensor([0.5, 2])",), [0.5, 2.0]),
    ValueCase("rand", ("a*1", "a=rand(2, 3)", "--seed", "7", "--const", "a"), _RAND.tolist(), ("rand",)),
    ValueCase("randn", ("a*1", "a=randn(3)", "--seed", "7", "--const", "a"), _RANDN.tolist(), ("randn",)),
]


# ----------------------------------------------------------------------------- helpers


def random_inputs(case: Case) -> dict[str, torch.Tensor]:
    """Fixed-seed inputs (a seed per case id), rounded to 3 decimals so their text is exact."""
    gen = torch.Generator().manual_seed(zlib.crc32(case.id.encode()))
    values = {}
    for name, (shape, domain) in case.inputs.items():
        u = torch.rand(shape, generator=gen, dtype=torch.float64)
        values[name] = torch.round(DOMAINS[domain](u) * 1000) / 1000
    return values


def value_text(t: torch.Tensor) -> str:
    return json.dumps(t.tolist())


def reference(case: Case, values: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None,
                                                                     dict[str, torch.Tensor | None]]:
    """Plain torch: the output, the grad_output used (None for scalars) and each input's .grad."""
    leaves = {n: v.clone().requires_grad_(n not in case.const) for n, v in values.items()}
    out = case.fn(*leaves.values())
    gen = torch.Generator().manual_seed(zlib.crc32(case.id.encode()) + 1)
    v = None if out.dim() == 0 else torch.round((4 * torch.rand(out.shape, generator=gen, dtype=torch.float64) - 2) * 1000) / 1000
    out.backward(v)
    return out.detach(), v, {n: leaves[n].grad for n in values if n not in case.const}


def eval_args(case: Case, values: dict[str, torch.Tensor], grad_output: torch.Tensor | None) -> list[str]:
    """Options first and ``--`` before EXPR, which may start with ``-``."""
    args = ["eval", "--json"]
    if case.const:
        args += ["--const", ",".join(case.const)]
    if grad_output is not None:
        args += ["--grad-output", value_text(grad_output)]
    return [*args, "--", case.expr, *input_args(values)]


def input_args(values: dict[str, torch.Tensor]) -> list[str]:
    return [f"{n}={value_text(v)}" for n, v in values.items()]


def close(actual: Any, expected: torch.Tensor) -> bool:
    got = torch.tensor(actual, dtype=torch.float64)
    return got.shape == expected.shape and torch.allclose(got, expected.double(), rtol=TOL, atol=TOL)


def ops_in(expr: str) -> set[str]:
    program = parse_program(expr)
    return {n.op for s in program.statements for n in walk(s.node) if isinstance(n, Call)}


# ------------------------------------------------------------------------------- tests


def test_every_user_op_is_covered():
    covered: set[str] = set()
    for case in GRAD_CASES:
        covered |= ops_in(case.expr)
    for vc in VALUE_CASES:
        covered |= ops_in(vc.args[0])
        for op in vc.value_ops:
            assert any(op in {n.op for n in walk(parse_expression(a.split("=", 1)[1], allow_names=False))
                              if isinstance(n, Call)} for a in vc.args if "=" in a), vc.id
        covered |= set(vc.value_ops)
    missing = sorted(name for name, spec in REGISTRY.items() if spec.user and name not in covered)
    assert not missing, f"ops without a test case: {missing}"


@functools.lru_cache(maxsize=None)
def explained(case_id: str) -> tuple[Result, tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor | None]]]:
    """One eval per case, shared by the tests that look at it; with the plain-torch reference."""
    case = CASES_BY_ID[case_id]
    values = random_inputs(case)
    ref = reference(case, values)
    return run_cli(*eval_args(case, values, ref[1])), ref


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: c.id)
def test_torch_and_symbolic_gradients_match_plain_torch(case: Case):
    values = random_inputs(case)
    r, (out, _, expected) = explained(case.id)
    assert r.code == 0, (r.stdout[-2000:], r.stderr)
    doc = r.json()
    assert close(doc["output"]["value"], out)
    assert doc["agree"] is True
    for name, grad in expected.items():
        entry = doc["grads"][name]
        if grad is None:  # not reached from the output: PyTorch leaves .grad None, the formula gives zeros
            assert entry["torch"] is None
            assert close(entry["symbolic"]["value"], torch.zeros_like(values[name]))
            continue
        assert close(entry["torch"], grad), (name, entry["torch"], grad)
        assert close(entry["symbolic"]["value"], grad), (name, entry["symbolic"], grad)
        assert entry["agree"] is True


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: c.id)
def test_gradcheck_of_the_plain_torch_reference(case: Case):
    values = random_inputs(case)
    names = [n for n in values if n not in case.const]
    consts = {n: values[n] for n in case.const}

    def fn(*xs: torch.Tensor) -> torch.Tensor:
        by_name = dict(zip(names, xs), **consts)
        return case.fn(*(by_name[n] for n in values))

    leaves = tuple(values[n].clone().requires_grad_() for n in names)
    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: c.id)
def test_symbolic_formula_reads_back_as_its_value(case: Case):
    """``grads.NAME.symbolic.expr`` is EXPR: evaluated on the same inputs it gives ``symbolic.value``."""
    values = random_inputs(case)
    doc = explained(case.id)[0].json()
    for name, entry in doc["grads"].items():
        again = run_cli("eval", "--json", "--const", ",".join(values), "--", entry["symbolic"]["expr"],
                        *input_args(values))
        assert again.code == 0, (entry["symbolic"]["expr"], again.stderr)
        assert close(again.json()["output"]["value"], torch.tensor(entry["symbolic"]["value"])), name


def test_dropout_in_training_uses_one_mask_for_value_and_gradient():
    """The mask is drawn from --seed; whatever it is, x.grad must be that mask scaled by 1/(1-p)."""
    x = [[1.5, -2.0, 0.5, 3.0], [1.0, 2.0, -1.0, 0.25]]
    args = ("eval", "dropout(x, 0.5).sum()", f"x={json.dumps(x)}", "--seed", "3", "--json")
    first, second = run_cli(*args), run_cli(*args)
    assert first.code == 0, first.stderr
    doc = first.json()
    assert doc["output"]["value"] == second.json()["output"]["value"]  # reproducible from --seed
    grad = torch.tensor(doc["grads"]["x"]["torch"])
    assert set(grad.flatten().tolist()) <= {0.0, 2.0}
    kept = (grad != 0).double()
    assert doc["output"]["value"] == pytest.approx(float((torch.tensor(x) * kept * 2).sum()))
    assert doc["grads"]["x"]["symbolic"]["value"] == grad.tolist()


@pytest.mark.parametrize("vc", VALUE_CASES, ids=lambda c: c.id)
def test_forward_values_of_ops_without_gradient(vc: ValueCase):
    r = run_cli("eval", *vc.args, "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["output"]["value"] == vc.expected
    assert doc["grads"] == {}
