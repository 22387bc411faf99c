"""Every op of the registry, checked from its own entry (the op table is the registry).

Each entry's ``samples`` (an EXPR, its plain-torch twin ``ref`` and input shapes/domains) are run
three ways on fixed-seed float64 inputs: (a) the gradient with plain torch autograd of ``ref``,
compared with (b) what ``gradexplain eval --json`` reports as torch's gradient *and* as the value
of the symbolic formula, and (c) ``torch.autograd.gradcheck`` on ``ref``, so the reference itself
is known to be right.  ``value_samples`` check forward values of ops without a gradient.  The
structure of each entry is checked too: written elementwise rules against ``sympy.diff`` of the
op's scalar function, linearity declarations against SymPy's second derivatives, every op
declaring its second-order behaviour, and torch's convention at each declared kink.
"""
from __future__ import annotations

import functools
import json
import math
import subprocess
import sys
import zlib
from typing import Any, Callable

import pytest
import torch

from conftest import Result, run_cli
from gradexplain.ir import Call, Const, Input, substitute, walk
from gradexplain.ops import REGISTRY, OpSpec, RuleContext, Sample
from gradexplain.parse import parse_expression, parse_program, parse_rule

# Domains keep inputs away from non-differentiable points and outside undefined regions.
DOMAINS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "any": lambda u: 4 * u - 2,  # [-2, 2]
    "pos": lambda u: 0.5 + 1.5 * u,  # [0.5, 2]
    "nz": lambda u: torch.where(u < 0.5, -(0.2 + 3.6 * u), 0.2 + 3.6 * (u - 0.5)),  # |v| >= 0.2
    "prob": lambda u: 0.1 + 0.8 * u,  # (0, 1) for probabilities
    "small": lambda u: 2 * u - 1,  # [-1, 1] (tan)
    "gt1": lambda u: 1.2 + u,  # [1.2, 2.2] (acosh)
}
TOL = 1e-9

SAMPLES: dict[str, tuple[OpSpec, Sample]] = {
    f"{name}-{i}": (spec, s) for name, spec in REGISTRY.items() for i, s in enumerate(spec.samples)}
VALUE_SAMPLES = {f"{name}-{i}": vs for name, spec in REGISTRY.items() for i, vs in enumerate(spec.value_samples)}


# ----------------------------------------------------------------------------- helpers


def random_inputs(sample_id: str, s: Sample) -> dict[str, torch.Tensor]:
    """Fixed-seed inputs (a seed per sample), rounded to 3 decimals so their text is exact."""
    gen = torch.Generator().manual_seed(zlib.crc32(s.expr.encode()) + zlib.crc32(sample_id.encode()))
    values = {}
    for name, (shape, domain) in s.inputs.items():
        u = torch.rand(shape, generator=gen, dtype=torch.float64)
        values[name] = torch.round(DOMAINS[domain](u) * 1000) / 1000
    return values


def value_text(t: torch.Tensor) -> str:
    return json.dumps(t.tolist())


def reference(s: Sample, values: dict[str, torch.Tensor], seed: int) -> tuple[torch.Tensor, torch.Tensor | None,
                                                                              dict[str, torch.Tensor | None]]:
    """Plain torch: the output, the grad_output used (None for scalars) and each input's .grad."""
    leaves = {n: v.clone().requires_grad_(n not in s.const) for n, v in values.items()}
    out = s.ref(*leaves.values())
    gen = torch.Generator().manual_seed(seed)
    v = None if out.dim() == 0 else torch.round((4 * torch.rand(out.shape, generator=gen, dtype=torch.float64) - 2) * 1000) / 1000
    out.backward(v)
    return out.detach(), v, {n: leaves[n].grad for n in values if n not in s.const}


def eval_args(s: Sample, values: dict[str, torch.Tensor], grad_output: torch.Tensor | None) -> list[str]:
    """Options first and ``--`` before EXPR, which may start with ``-``."""
    args = ["eval", "--json"]
    if s.const:
        args += ["--const", ",".join(s.const)]
    if grad_output is not None:
        args += ["--grad-output", value_text(grad_output)]
    return [*args, "--", s.expr, *input_args(values)]


def input_args(values: dict[str, torch.Tensor]) -> list[str]:
    return [f"{n}={value_text(v)}" for n, v in values.items()]


def close(actual: Any, expected: torch.Tensor) -> bool:
    got = torch.tensor(actual, dtype=torch.float64)
    return got.shape == expected.shape and torch.allclose(got, expected.double(), rtol=TOL, atol=TOL)


def ops_in(expr: str) -> set[str]:
    program = parse_program(expr)
    ops = {n.op for s in program.statements for n in walk(s.node) if isinstance(n, Call)}
    return ops | {REGISTRY[o].output_of for o in ops if REGISTRY[o].output_of}  # x.split(2)[1] uses split


@functools.lru_cache(maxsize=None)
def explained(sample_id: str) -> tuple[Result, dict[str, torch.Tensor], tuple[Any, ...]]:
    """One eval per sample, shared by the tests that look at it; with the plain-torch reference."""
    _, s = SAMPLES[sample_id]
    values = random_inputs(sample_id, s)
    ref = reference(s, values, zlib.crc32(sample_id.encode()) + 1)
    return run_cli(*eval_args(s, values, ref[1])), values, ref


def check_against_plain_torch(r: Result, values: dict[str, torch.Tensor], ref: tuple[Any, ...]) -> None:
    out, _, expected = ref
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


# ------------------------------------------------------------------ the table is complete


def test_every_user_op_has_samples_that_use_it():
    """An op returning several tensors is sampled through its outputs (``a.sort().values``)."""
    sampled_outputs = {spec.output_of for spec in REGISTRY.values() if spec.output_of and spec.samples}
    missing = sorted(name for name, spec in REGISTRY.items() if spec.user and not spec.samples and not spec.value_samples
                     and name not in sampled_outputs)
    assert not missing, f"ops without samples in their registry entry: {missing}"
    for name, spec in REGISTRY.items():
        for s in spec.samples:
            used = ops_in(s.expr)
            assert name in used or name in {REGISTRY[o].output_of for o in used}, (name, s.expr)
            assert list(s.inputs) == [n for n in s.inputs], name
        for vs in spec.value_samples:
            used = ops_in(vs.args[0]) | set(vs.value_ops)
            assert name in used, (name, vs.args)
            for op in vs.value_ops:  # ops named in value_ops really occur in a NAME=VALUE text
                assert any(op in {n.op for n in walk(parse_expression(a.split("=", 1)[1], allow_names=False))
                                  if isinstance(n, Call)} for a in vs.args if "=" in a), (name, op)


def test_every_op_declares_its_second_order_behaviour():
    """Hessian blocks come from the registry: each op says how it is linear (``linear=``), or has no
    gradient at all (a constant to LinearMap), or is elementwise (its linearity checked against SymPy)."""
    undeclared = sorted(name for name, spec in REGISTRY.items()
                        if spec.linear is None and (spec.rules or spec.variadic_rule) and not
                        (spec.elementwise and spec.sym is not None))
    assert not undeclared, f"ops with a gradient but no second-order declaration: {undeclared}"
    for name, spec in REGISTRY.items():
        if spec.linear is not None and spec.linear.args != "*":
            assert set(spec.linear.args) <= set(spec.tensor_args), name
        if spec.linear is not None and spec.linear.batch == "dims":
            assert spec.linear.dims and set(spec.linear.dims) <= set(spec.param_names), name


def test_every_rule_names_a_real_argument_and_parses():
    for name, spec in REGISTRY.items():
        assert set(spec.rules) <= set(spec.tensor_args), name
        for arg, rule in spec.rules.items():
            if isinstance(rule, str):
                parse_rule(rule)
        if spec.rules or spec.variadic_rule:  # `gradexplain ops` prints its rule
            assert any(spec.shown_rule(a) for a in (*spec.tensor_args, "t_i")), name


# ------------------------------------------------------------ elementwise rules vs SymPy


def _elementwise_specs() -> list[OpSpec]:
    return [spec for spec in REGISTRY.values() if spec.elementwise and spec.sym is not None]


def _points(spec: OpSpec) -> list[dict[str, float]]:
    """A few points inside each argument's domain (taken from the op's first sample)."""
    domains = {n: d for n, (_, d) in spec.samples[0].inputs.items()} if spec.samples else {}
    us = [0.13, 0.41, 0.77, 0.93]
    return [{a: float(DOMAINS[domains.get(a, "pos")](torch.tensor(u if i % 2 else 1 - u)))
             for i, a in enumerate(spec.tensor_args)} for u in us]


def _scalar_setup(spec: OpSpec) -> tuple[Any, dict[str, Any], Any]:
    """SymPy symbols for the op's arguments and its scalar function of them."""
    import sympy

    syms = {a: sympy.Symbol(a, real=True) for a in spec.tensor_args}
    # a condition argument (where's cond) is a relation, not a number: here c > 0
    args = [sympy.StrictGreaterThan(syms[a], 0) if a not in spec.rules and a == "cond" else syms[a]
            for a in spec.tensor_args]
    return sympy, syms, spec.scalar(*args)


def _num(e: Any, point: dict[str, float], syms: dict[str, Any]) -> float:
    import sympy

    e = e.replace(sympy.DiracDelta, lambda *_: sympy.Integer(0))  # a step's impulse: autograd's slope is 0
    return float(e.subs({syms[a]: sympy.Float(v) for a, v in point.items()}).doit().evalf())


@pytest.mark.parametrize("spec", _elementwise_specs(), ids=lambda s: s.name)
def test_written_rule_is_sympys_derivative(spec: OpSpec):
    """``g * ∂f/∂arg`` from ``sympy.diff`` of the scalar function equals the rule written in the entry."""
    from gradexplain.symbolic import ToSympy

    sympy, syms, f = _scalar_setup(spec)
    g = sympy.Symbol("g", real=True)
    for arg, rule in spec.rules.items():
        if not isinstance(rule, str):  # a rule of the params (leaky_relu's slope): at their defaults
            rule = rule(RuleContext(dict(spec.param_defaults), {}, {}, ()))
        to = ToSympy(None)
        conditions = {a: Call("gt", (Input(a), Const(0))) for a in spec.tensor_args if a == "cond"}
        written = to.convert(substitute(parse_rule(rule), conditions))
        def leaf(node: Any) -> Any:  # rule variables; comparisons (opaque to ToSympy) as SymPy relations
            if isinstance(node, Const):
                return sympy.Integer(node.value)
            if isinstance(node, Call):
                return REGISTRY[node.op].scalar(*map(leaf, node.args))
            assert node.name in set(spec.tensor_args) | {"g", "out"}, (spec.name, rule)
            return g if node.name == "g" else f if node.name == "out" else syms[node.name]

        written = written.subs({s: leaf(n) for s, n in to.leaves.items()})
        derived = g * sympy.diff(f, syms[arg])
        for point in _points(spec):
            at = dict(point, g=1.7)
            syms_g = dict(syms, g=g)
            assert math.isclose(_num(written, at, syms_g), _num(derived, at, syms_g), rel_tol=1e-9, abs_tol=1e-12), \
                (spec.name, arg, point, written, derived)


def _is_linear(spec: OpSpec, args: tuple[str, ...]) -> bool:
    """f(p + q) == f(p) + f(q) and f(-1.3 p) == -1.3 f(p) in ``args`` (the others fixed), at sample points."""
    sympy, syms, f = _scalar_setup(spec)
    points = _points(spec)
    for p, q in zip(points, points[1:]):
        def at(**moved: float) -> float:
            try:
                return _num(f, dict(p, **moved), syms)
            except (TypeError, ValueError, KeyError):  # p + q left the domain (asin(1.6)): not linear
                return math.nan

        if not math.isclose(at(**{a: p[a] + q[a] for a in args}), at() + at(**{a: q[a] for a in args}),
                            rel_tol=1e-9, abs_tol=1e-12):
            return False
        if not math.isclose(at(**{a: -1.3 * p[a] for a in args}), -1.3 * at(), rel_tol=1e-9, abs_tol=1e-12):
            return False
    return True


@pytest.mark.parametrize("spec", _elementwise_specs(), ids=lambda s: s.name)
def test_linearity_declaration_matches_sympy(spec: OpSpec):
    """An elementwise op is declared linear in exactly the arguments its scalar function is linear in,
    and ``joint`` exactly when it is linear in all of them together (add, not mul)."""
    for arg in spec.rules:
        declared = spec.linear is not None and spec.linear.covers(arg)
        assert _is_linear(spec, (arg,)) == declared or (declared and spec.linear.joint), (spec.name, arg)
    if spec.linear is not None and spec.linear.args:
        assert _is_linear(spec, tuple(spec.linear.args)) == (spec.linear.joint or len(spec.linear.args) == 1), spec.name


@pytest.mark.parametrize("spec", [s for s in _elementwise_specs() if len(s.tensor_args) == 1], ids=lambda s: s.name)
def test_scalar_function_reads_back_as_expr(spec: OpSpec):
    """What SymPy makes of an op's scalar function can be written back as EXPR (FUNCTION_OPS comes from
    the registry, so a new op needs no table elsewhere)."""
    import sympy

    from gradexplain.printer import to_text
    from gradexplain.symbolic import FromSympy

    x = sympy.Symbol("a", real=True)
    text = to_text(FromSympy({x: Input("a")}).convert(spec.scalar(x)))
    parse_expression(text)


# ------------------------------------------------------------------------ samples, run


@pytest.mark.parametrize("sample_id", SAMPLES)
def test_torch_and_symbolic_gradients_match_plain_torch(sample_id: str):
    r, values, ref = explained(sample_id)
    check_against_plain_torch(r, values, ref)


@pytest.mark.parametrize("sample_id", SAMPLES)
def test_gradcheck_of_the_plain_torch_reference(sample_id: str):
    _, s = SAMPLES[sample_id]
    values = random_inputs(sample_id, s)
    names = [n for n in values if n not in s.const]
    consts = {n: values[n] for n in s.const}

    def fn(*xs: torch.Tensor) -> torch.Tensor:
        by_name = dict(zip(names, xs), **consts)
        return s.ref(*(by_name[n] for n in values))

    leaves = tuple(values[n].clone().requires_grad_() for n in names)
    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("sample_id", SAMPLES)
def test_symbolic_formula_reads_back_as_its_value(sample_id: str):
    """``grads.NAME.symbolic.expr`` is EXPR: evaluated on the same inputs it gives ``symbolic.value``
    (all of a sample's formulas in one eval: a program whose output stacks them, flattened)."""
    r, values, _ = explained(sample_id)
    doc = r.json()
    entries = list(doc["grads"].values())
    if not entries:
        return
    program = "; ".join(f"r{i} = ({e['symbolic']['expr']})*ones(1)" for i, e in enumerate(entries))
    program += "; cat([" + ", ".join(f"r{i}.reshape(-1)" for i in range(len(entries))) + "])"
    again = run_cli("eval", "--json", "--const", ",".join(values), "--max-chars", "1000000", "--", program,
                    *input_args(values))
    assert again.code == 0, (program, again.stderr)
    expected = torch.cat([torch.tensor(e["symbolic"]["value"], dtype=torch.float64).reshape(-1) for e in entries])
    assert close(again.json()["output"]["value"], expected)


@pytest.mark.parametrize("sample_id", VALUE_SAMPLES)
def test_forward_values_of_ops_without_gradient(sample_id: str):
    vs = VALUE_SAMPLES[sample_id]
    r = run_cli("eval", *vs.args, "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    expected = vs.expected() if callable(vs.expected) else vs.expected
    assert doc["output"]["value"] == expected
    assert doc["grads"] == {}


KINKS = {f"{name}-{i}": (spec, k) for name, spec in REGISTRY.items() for i, k in enumerate(spec.kinks)}


@pytest.mark.parametrize("kink_id", KINKS)
def test_torch_convention_at_each_kink(kink_id: str):
    """At a declared non-differentiable point, torch's gradient, the symbolic formula's value and
    plain torch agree (the entry's sample ``kink.sample``, at the kink's inputs)."""
    spec, kink = KINKS[kink_id]
    s = spec.samples[kink.sample]
    values = {n: torch.tensor(json.loads(kink.at[n]), dtype=torch.float64) for n in s.inputs}
    ref = reference(s, values, zlib.crc32(kink_id.encode()))
    check_against_plain_torch(run_cli(*eval_args(s, values, ref[1])), values, ref)


# ---------------------------------------------------------------------------- special


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


def test_listing_ops_does_not_import_sympy():
    """Rules are written out in the entries, so ``gradexplain ops`` needs no SymPy (nor does the registry)."""
    code = ("import sys; from gradexplain.cli import main; import gradexplain.ops; "
            "sys.argv = ['gradexplain', 'ops', '--json']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'sympy' not in sys.modules, 'sympy imported'")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout)


# A program per batching strategy of the ``Linear`` declarations, so that LinearMap's generic driver
# reads each Hessian block off in closed form; values against torch.autograd.functional.hessian.
_M = [[1.0, 2.0], [3.0, 4.0]]
HESSIAN_CASES = [
    ("where(x > 1, x*x, x).sum()*x.sum()", {"x": [0.5, 2.0, 3.0]},
     lambda x: torch.where(x > 1, x * x, x).sum() * x.sum()),  # elementwise, joint
    ("(x.sum(0, keepdim=True)*x).sum()", {"x": _M}, lambda x: (x.sum(0, keepdim=True) * x).sum()),  # dims
    ("mean(x*x, 1).sum()*x.mean()", {"x": _M}, lambda x: (x * x).mean(1).sum() * x.mean()),  # dims
    ("(x.transpose(0, 1) @ y).sum()**2", {"x": _M, "y": [1.0, 2.0]}, lambda x, y: (x.transpose(0, 1) @ y).sum() ** 2),
    ("(x.reshape(2, 2) @ y).sum()**2", {"x": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 2.0]},
     lambda x, y: (x.reshape(2, 2) @ y).sum() ** 2),  # reshape, matmul
    ("x.expand_as(y).sum()**2 * y.sum()", {"x": [1.0, 2.0], "y": _M}, lambda x, y: x.expand_as(y).sum() ** 2 * y.sum()),
    ("outer(x, y).sum()**2", {"x": [1.0, 2.0], "y": [3.0, 4.0, 5.0]}, lambda x, y: torch.outer(x, y).sum() ** 2),
    ("x.t() @ A @ x + trace(A @ A)", {"x": [1.0, 2.0], "A": _M}, lambda x, A: x @ A @ x + torch.trace(A @ A)),
]


@pytest.mark.parametrize("expr, inputs, ref", HESSIAN_CASES, ids=[c[0] for c in HESSIAN_CASES])
def test_linear_declarations_give_closed_form_hessian_blocks(expr: str, inputs: dict[str, Any], ref: Callable[..., Any]):
    r = run_cli("eval", expr, *(f"{n}={json.dumps(v)}" for n, v in inputs.items()), "--hessian", "--json",
                "--no-numeric")
    assert r.code == 0, r.stderr
    blocks = r.json()["hessian"]
    values = tuple(torch.tensor(v, dtype=torch.float64) for v in inputs.values())
    want = torch.autograd.functional.hessian(ref, values)
    for i, a in enumerate(inputs):
        for j, b in enumerate(inputs):
            block = blocks[a][b]
            assert block["symbolic"]["note"] == "closed form", (a, b, block["symbolic"])
            assert close(block["symbolic"]["value"], want[i][j]), (a, b)
            assert block["agree"] is True


def _linear_in(s: Sample, values: dict[str, torch.Tensor], name: str) -> bool:
    """Whether the sample's plain-torch function is linear in input ``name`` (the others fixed)."""
    def f(x: torch.Tensor) -> torch.Tensor:
        return s.ref(*(x if n == name else v for n, v in values.items())).double()

    x, y = values[name], torch.flip(values[name], dims=tuple(range(values[name].dim()))) + 0.37
    try:
        return torch.allclose(f(x + y), f(x) + f(y), atol=1e-9) and torch.allclose(f(-1.3 * x), -1.3 * f(x), atol=1e-9)
    except RuntimeError:  # a shape that depends on the values (a[a > 0]): not linear
        return False


LINEAR_SAMPLES = [(sid, n) for sid, (spec, s) in SAMPLES.items()
                  if spec.linear is not None and spec.linear.args and spec.linear.batch is not None
                  for n in s.inputs if n not in s.const and _linear_in(s, random_inputs(sid, s), n)]


@pytest.mark.parametrize("sample_id, name", LINEAR_SAMPLES, ids=[f"{sid}:{n}" for sid, n in LINEAR_SAMPLES])
def test_linear_declaration_gives_the_jacobian(sample_id: str, name: str):
    """For every sample that is linear in an input, LinearMap (driven by the ``Linear`` declarations
    alone) reads off exactly torch's Jacobian: ``K[i..., j...] = ∂out[j...]/∂name[i...]``."""
    from gradexplain.execute import Shapes, evaluate
    from gradexplain.hessian import LinearMap

    _, s = SAMPLES[sample_id]
    values = random_inputs(sample_id, s)
    root = parse_program(s.expr).output_node
    k = evaluate(LinearMap(name, Shapes(values))(root), values)

    def f(x: torch.Tensor) -> torch.Tensor:
        return s.ref(*(x if n == name else v for n, v in values.items()))

    jac = torch.autograd.functional.jacobian(f, values[name])  # out.shape + in.shape
    out_nd = jac.dim() - values[name].dim()
    want = jac.permute(*range(out_nd, jac.dim()), *range(out_nd))
    assert close(k.tolist(), want), (s.expr, name)


def test_every_batching_linear_declaration_is_checked_by_a_sample():
    """So a wrong ``Linear`` declaration cannot pass unnoticed: each one meets a sample linear in an input."""
    checked = {sid.rsplit("-", 1)[0] for sid, _ in LINEAR_SAMPLES}
    declared = {spec.output_of or name for name, spec in REGISTRY.items()  # x.split(2)[1]: split's samples
                if spec.linear is not None and spec.linear.args and spec.linear.batch is not None}
    assert not declared - checked, f"add a sample linear in an input to: {sorted(declared - checked)}"


@pytest.mark.parametrize("expr", ["abs(a).sum()", "norm(a, p=1)"])
def test_second_order_of_an_op_whose_second_derivative_is_zero(expr: str):
    """torch returns such a batched zero gradient without storage; both sections still report zeros."""
    for option in (("--hessian",), ("--hvp", "1,1")):
        r = run_cli("eval", expr, "a=[1, -2]", *option, "--json")
        assert r.code == 0, r.stderr
        doc = r.json()
        section = doc["hessian"]["a"]["a"] if option[0] == "--hessian" else doc["hvp"]["a"]
        assert section["agree"] is True
        assert torch.count_nonzero(torch.tensor(section["torch"])) == 0


def _torch_graph_names(s: Sample, values: dict[str, torch.Tensor]) -> set[str]:
    leaves = [v.clone().requires_grad_(n not in s.const) for n, v in values.items()]
    out = s.ref(*leaves)
    seen, stack = set(), [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        stack.extend(f for f, _ in fn.next_functions)
    return {type(fn).__name__ for fn in seen}


@pytest.mark.parametrize("sample_id", SAMPLES)
def test_grad_fn_names_are_plain_torchs(sample_id: str):
    """Each op runs with torch's own backward node: the graph of the sample holds the same grad_fn names
    as plain torch's graph of the reference (MaxBackward0 for max(a, dim), not AmaxBackward0)."""
    r, values, _ = explained(sample_id)
    _, s = SAMPLES[sample_id]
    assert {n["node"] for n in r.json()["graph"]} == _torch_graph_names(s, values)
