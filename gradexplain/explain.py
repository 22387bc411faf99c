"""The ``eval`` pipeline: text → IR → (torch, SymPy) → compare → :class:`Report`.

The CLI only turns options into :class:`EvalOptions` and a Report into output; everything the
tool knows about one expression is computed here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from . import misconceptions
from .autograd import TorchRun, make_leaves, torch_jacobian, torch_run
from .errors import GradexplainError, LimitError
from .execute import Shapes, evaluate
from .ir import Const, Node, Program
from .limits import DEFAULT, Limits, run_budget
from .ops import REGISTRY
from .parse import parse_expression, parse_program
from .report import (ExpectResult, ForwardEntry, GradEntry, GraphEntry, InputInfo, JacobianEntry, OutputInfo, Report,
                     Symbolic)
from .values import Value, parse_value, split_assignment

DTYPES = {"float64": torch.float64, "float32": torch.float32}
DEFAULT_TOL = {"float64": 1e-6, "float32": 1e-4}
JACOBIAN_WITH_VJP = 4096  # entries: with --grad-output the Jacobian is shown when this small
JACOBIAN_MAX = 10**6  # entries of a torch Jacobian at all


@dataclass
class EvalOptions:
    expr: str
    values: list[str] = field(default_factory=list)  # NAME=VALUE texts
    const: set[str] = field(default_factory=set)
    grad_output: str | None = None
    jacobian: bool = False
    expect: list[str] = field(default_factory=list)  # NAME=VALUE-or-formula texts
    tol: float | None = None
    dtype: str = "float64"
    seed: int = 0
    output: str | None = None
    limits: Limits = DEFAULT
    numeric: bool = True
    symbolic: bool = True  # False: torch only (``graph`` pictures need no SymPy work)
    train: Any = None  # train.TrainOptions: --step and its options (None: no training steps)
    hessian: bool = False  # --hessian: second derivatives, every pair of inputs
    hvp: list[str] = field(default_factory=list)  # --hvp V or NAME=V: Hessian-vector products


def agree(a: torch.Tensor, b: torch.Tensor, tol: float) -> tuple[bool, float]:
    """``|a - b| <= tol * (1 + max(|a|, |b|))`` everywhere, equal shapes; and the max |a - b|."""
    if tuple(a.shape) != tuple(b.shape):
        return False, math.inf
    a, b = a.double(), b.double()
    both_nan = torch.isnan(a) & torch.isnan(b)
    same_inf = torch.isinf(a) & torch.isinf(b) & (a == b)
    diff = (a - b).abs()
    ok = (diff <= tol * (1 + torch.maximum(a.abs(), b.abs()))) | both_nan | same_inf
    finite = diff[~(both_nan | same_inf)]
    max_diff = float(finite.max()) if finite.numel() else 0.0
    return bool(ok.all()), (max_diff if not math.isnan(max_diff) else math.inf)


def select_output(program: Program, name: str | None) -> Program:
    if name is None:
        return program
    matches = [i for i, s in enumerate(program.statements) if s.name == name]
    if not matches:
        names = ", ".join(dict.fromkeys(s.name for s in program.statements))
        raise GradexplainError(f"--output {name}: no statement assigns {name!r} (statements: {names})")
    program.output = matches[-1]
    return program


def read_values(opts: EvalOptions, program: Program, dtype: torch.dtype) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for arg in opts.values:
        name, text = split_assignment(arg)
        if name in values:
            raise GradexplainError(f"{name} is given twice")
        try:
            values[name] = parse_value(text, opts.limits, dtype)
        except GradexplainError as e:
            raise GradexplainError(f"{name}={text}: {e.message}", col=e.col, source=e.source) from None
    missing = [n for n in program.inputs if n not in values]
    if missing:
        raise GradexplainError(f"no value for {missing[0]!r}: give it as {missing[0]}=VALUE"
                               + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else ""))
    unknown_const = sorted(opts.const - set(values))
    if unknown_const:
        raise GradexplainError(f"--const {unknown_const[0]}: no input of that name")
    return values


def explain(opts: EvalOptions) -> Report:
    """The whole pipeline for one EXPR, its SymPy work within one --symbolic-timeout budget."""
    with run_budget(opts.limits.symbolic_timeout):
        return _explain(opts)


def _explain(opts: EvalOptions) -> Report:
    dtype = DTYPES.get(opts.dtype)
    if dtype is None:
        raise GradexplainError(f"--dtype must be float64 or float32, not {opts.dtype!r}")
    if not -2**63 <= opts.seed < 2**64:  # what torch.manual_seed accepts
        raise GradexplainError(f"--seed must fit in 64 bits, not {opts.seed}")
    if opts.tol is not None and not 0 <= opts.tol < math.inf:  # NaN fails this too
        raise GradexplainError(f"--tol must be a finite number of 0 or more, not {opts.tol}")
    torch.set_default_dtype(dtype)
    torch.manual_seed(opts.seed)
    tol = opts.tol if opts.tol is not None else DEFAULT_TOL[opts.dtype]

    program = select_output(parse_program(opts.expr, opts.limits), opts.output)
    values = read_values(opts, program, dtype)
    notes: list[str] = []
    unused = [n for n in values if n not in program.inputs]
    if unused:
        notes.append(f"{', '.join(unused)} given but not used by the expression")
    used = {n: values[n] for n in program.inputs}
    # an integer input (Yb=tensor([1, 0]), an index tensor) cannot require grad: a constant, as --const
    opts.const = opts.const | {n for n, v in used.items() if not v.tensor.is_floating_point()}
    leaves = make_leaves({n: v.tensor for n, v in used.items()}, opts.const, dtype)

    shapes = Shapes(leaves, opts.limits)
    for stmt in program.statements:  # shape errors and size limits before any real work
        shapes.shape(stmt.node)

    grad_output = None
    if opts.grad_output is not None:
        grad_output = parse_value(opts.grad_output, opts.limits, dtype)
    run = torch_run(program, leaves, grad_output.tensor if grad_output is not None else None, opts.limits)
    output = run.output
    wrt = [n for n in program.inputs if n not in opts.const]
    if opts.train is not None:
        from .train import check_trainable

        check_trainable(output, wrt, opts.grad_output)
    report = Report(
        expr=opts.expr,
        inputs={n: InputInfo(list(v.tensor.shape), v.tensor, n not in opts.const, v.exact) for n, v in used.items()},
        forward=[ForwardEntry(s.name, s.src, list(s.value.shape) if isinstance(s.value, torch.Tensor) else [],
                              s.value, s.grad_fn, s.grad) for s in run.statements],
        output=OutputInfo(program.statements[program.output].name, list(output.shape), output.detach(),
                          type(output.grad_fn).__name__ if output.grad_fn is not None else None, output.requires_grad),
        grad_output=grad_output.tensor if grad_output is not None else None,
        graph=[GraphEntry(g.id, g.node, g.next, g.variable, g.label, g.grad_output, g.grad_inputs, g.saved,
                          _rule_summary(g.op), edges=g.edges, saved_from=g.saved_from, shape=g.shape, value=g.value)
               for g in run.graph],
        grads={}, jacobian=None, agree=True, notes=notes, dtype=opts.dtype, tol=tol,
    )
    report.notes.extend(misconceptions.notes(program, run.trace, opts.const))
    from .train import dropout_masks

    masks = dropout_masks(program, shapes.shape)
    if masks:
        report.extra["dropout"] = masks
    output_node = program.output_node
    if not output.requires_grad:
        report.notes.append("the output depends on no input that requires grad (constants and --const inputs "
                            "only): there is nothing to differentiate, so grads is empty")
        return report
    scalar = output.dim() == 0
    if grad_output is None and not scalar and (opts.hessian or opts.hvp):
        raise GradexplainError(f"--hessian/--hvp need a scalar output, and this one has shape {list(output.shape)}: "
                               "pass --grad-output V for the second derivatives of v·output")
    if grad_output is None and not scalar:
        report.notes.append(
            f"the output has shape {list(output.shape)}, not a scalar: backward() needs a `gradient` argument "
            "here (PyTorch: \"grad can be implicitly created only for scalar outputs\"). Showing the Jacobian "
            "instead; pass --grad-output V for the vector-Jacobian product vᵀJ that x.grad would hold.")
        report.jacobian = jacobians(program, leaves, used, wrt, shapes, opts, tol)
        report.agree = _all_agree(e.agree for e in report.jacobian.values())
        _expectations(report, opts, program, leaves, run, shapes, tol)
        return report

    seed: Node = Const(1) if grad_output is None else grad_output.literal()
    report.grads = gradient_entries(output_node, seed, wrt, run, leaves, used, shapes, opts, tol)
    if all(v.exact is not None for v in used.values()) and (grad_output is None or grad_output.exact is not None):
        _exact_values(report, used, opts.limits)
    if opts.numeric:
        from .numeric import attach_numeric, numeric_gradients

        numeric = numeric_gradients(program, leaves, grad_output.tensor if grad_output is not None else None, wrt,
                                    run.grads)
        report.notes.extend(attach_numeric(report.grads, numeric, tol))
    report.agree = _all_agree(e.agree for e in report.grads.values())
    if opts.hessian or opts.hvp:
        from .hessian import second_order

        flags = second_order(report, program, leaves, wrt, grad_output.tensor if grad_output is not None else None,
                             opts, tol)
        report.agree = _all_agree([report.agree, *flags])
    if opts.jacobian or (grad_output is not None and
                         sum(output.numel() * leaves[n].numel() for n in wrt) <= JACOBIAN_WITH_VJP):
        report.jacobian = jacobians(program, leaves, used, wrt, shapes, opts, tol)
    _expectations(report, opts, program, leaves, run, shapes, tol)
    report.notes.extend(run.notes)
    if opts.train is not None:
        from .train import explain_steps

        explain_steps(report, program, leaves, wrt, opts, tol)
    return report


def _exact_values(report: Report, used: dict[str, Value], limits: Limits) -> None:
    """``symbolic.exact``: the symbolic gradient over the exact inputs (``1/3``), when all-rational."""
    from .symbolic import exact_value

    exact_inputs = {n: v.exact for n, v in used.items()}
    for entry in report.grads.values():
        if entry.symbolic is not None and entry.symbolic.expr is not None:
            own = replace(limits, max_chars=max(limits.max_chars, len(entry.symbolic.expr)))  # our text, not the user's
            try:
                entry.symbolic.exact = exact_value(parse_expression(entry.symbolic.expr, own), exact_inputs)
            except LimitError:  # nested deeper than --max-depth: the exact value is an extra, not a failure
                entry.symbolic.exact = None


def _rule_summary(op: str | None) -> str | None:
    if op is None or op not in REGISTRY:
        return None
    spec = REGISTRY[op]
    names = spec.tensor_args if not spec.variadic else ("t_i",)
    rules = [f"{a}: {spec.shown_rule(a)}" for a in names if spec.shown_rule(a)]
    return "; ".join(rules) or None


def _all_agree(flags: Any) -> bool | None:
    flags = list(flags)
    if any(f is False for f in flags):
        return False
    if any(f is None for f in flags):
        return None
    return True


def gradient_entries(output_node: Node, seed: Node, wrt: list[str], run: TorchRun, leaves: dict[str, torch.Tensor],
                     used: dict[str, Value], shapes: Shapes, opts: EvalOptions, tol: float) -> dict[str, GradEntry]:
    from .symbolic import NoClosedForm, SymbolicTimeout, budget, gradients

    entries: dict[str, GradEntry] = {}
    reason = None if opts.symbolic else "symbolic: not computed (torch only)"
    symbolic: dict[str, Any] = {}
    try:
        with budget(opts.limits.symbolic_timeout):
            symbolic = gradients(output_node, seed, wrt, shapes, {n: tuple(t.shape) for n, t in leaves.items()},
                                 opts.limits) if opts.symbolic else {}
    except SymbolicTimeout as e:
        reason = f"symbolic: skipped — {e}"
    except (NoClosedForm, NotImplementedError) as e:
        reason = f"symbolic: skipped — {e}"
    for name in wrt:
        grad = run.grads.get(name)
        sg = symbolic.get(name)
        if sg is None:
            entries[name] = GradEntry(grad, None, None, None, reason=reason or "symbolic: not available")
            continue
        value = evaluate(sg.expr, leaves, opts.limits).to(leaves[name].dtype) if sg.expr is not None else None
        sym = Symbolic(sg.text, value, note=sg.note)
        note = None
        if grad is None:
            note = (f"{name} requires grad but the output does not depend on it, so PyTorch leaves {name}.grad "
                    "as None; its gradient is zero")
            ok = value is None or bool((value == 0).all())
            entries[name] = GradEntry(None, sym, 0.0 if ok else None, ok, note=note)
            continue
        if value is None:
            entries[name] = GradEntry(grad, sym, None, None, reason=sg.note)
            continue
        if value.shape != grad.shape and value.numel() == grad.numel() == 1:
            value = value.reshape(grad.shape)
        ok, diff = agree(grad, value, tol)
        entries[name] = GradEntry(grad, sym, diff, ok, note=note)
    return entries


def jacobians(program: Program, leaves: dict[str, torch.Tensor], used: dict[str, Value], wrt: list[str],
              shapes: Shapes, opts: EvalOptions, tol: float) -> dict[str, JacobianEntry]:
    from .symbolic import NoClosedForm, SymbolicTimeout, budget, jacobian_text

    out_numel = shapes.numel(program.output_node)
    entries: dict[str, JacobianEntry] = {}
    too_big = [n for n in wrt if out_numel * leaves[n].numel() > JACOBIAN_MAX]
    if too_big:
        return {n: JacobianEntry(None, None, None, reason=f"a Jacobian of {out_numel * leaves[n].numel():,} entries "
                                 f"is too large to show (limit {JACOBIAN_MAX:,})") for n in wrt}
    if any(out_numel * leaves[n].numel() == 0 for n in wrt):  # torch's jacobian() cannot stack nothing
        return {n: JacobianEntry(None, None, None, reason="the Jacobian is empty: a tensor with no elements is "
                                 "involved") for n in wrt}
    jac = torch_jacobian(program, leaves, opts.limits)
    input_shapes = {n: tuple(t.shape) for n, t in leaves.items()}
    for name in wrt:
        sym: Symbolic | None = None
        reason = None if opts.symbolic else "symbolic: not computed (torch only)"
        try:
            if opts.symbolic:
                with budget(opts.limits.symbolic_timeout):
                    text = jacobian_text(program.output_node, name, input_shapes, opts.limits)
                own = replace(opts.limits, max_chars=max(opts.limits.max_chars, len(text)))  # our text, not the user's
                value = evaluate(parse_expression(text, own), leaves, opts.limits).to(jac[name].dtype)
                sym = Symbolic(text, value.reshape(jac[name].shape) if value.numel() == jac[name].numel() else value)
        except (SymbolicTimeout, NoClosedForm, NotImplementedError, LimitError) as e:  # LimitError: formula too long
            reason = f"symbolic: skipped — {e}"
        ok = agree(jac[name], sym.value, tol)[0] if sym is not None else None
        entries[name] = JacobianEntry(jac[name], sym, ok, reason)
    return entries


def _expectations(report: Report, opts: EvalOptions, program: Program, leaves: dict[str, torch.Tensor],
                  run: TorchRun, shapes: Shapes, tol: float) -> None:
    """``--expect NAME=VALUE|FORMULA``: checked against torch's gradient (and SymPy's, for formulas)."""
    from .expect import check_expectation

    for text in opts.expect:
        name, claim = split_assignment(text)
        report.expect.append(check_expectation(name, claim, report, program, leaves, shapes, opts.limits, tol))

