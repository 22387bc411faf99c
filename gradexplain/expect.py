"""``--expect NAME=VALUE`` and formula answers: is the user's gradient the right one?

A value is compared with torch's gradient.  A formula (EXPR over the input names, ``4*x``) is
checked numerically at the inputs and then symbolically: SymPy simplifies
``claim - derivative`` (shape-generic), or, for small inputs, every entry of it over symbolic
inputs of the given shapes.  0 proves it.  A formula that matches at the given inputs but not at a
nearby point is wrong in general; one SymPy can neither prove nor refute is "unproved" — it passes
numerically, and that outcome is reported, never silently merged with "proved".  A formula within
tolerance of the gradient whose exact difference at the inputs is provably not 0 (``4.000001*x``
for ``4*x``) is "disproved": a symbolic disproof always beats a numeric near-match.

``ExpectResult.outcome`` is one of :data:`OUTCOMES`.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import sympy
import torch

from .autograd import run_program
from .compare import agreeing_entries, agrees
from .errors import GradexplainError, NameInValue
from .i18n import Msg
from .execute import Shapes, evaluate
from .format import fmt_number, short
from .formula import read_formula
from .ir import Call, Const, Node, Program, inputs_of
from .limits import Limits
from .parse import parse_expression
from .phrases import joined
from .printer import to_text
from .report import ExpectResult, Report
from .symbolic import NoClosedForm, ObjEvaluator, Simplifier, SymbolicTimeout, budget, element_symbols
from .values import parse_value

OUTCOMES = {
    "holds": "a value that matches the gradient",
    "proved": "a formula that matches numerically, and SymPy proves claim - derivative = 0",
    "unproved": "a formula that matches numerically (also at a nearby point); SymPy could not prove it",
    "wrong": "entries differ from the gradient",
    "wrong-shape": "the answer has another shape than the gradient (or cannot be evaluated)",
    "transposed": "the answer is the transpose of the right one",
    "not-general": "a formula that matches at the given inputs, but not at a nearby point",
    "disproved": "a formula within tolerance of the gradient, but SymPy shows claim - derivative != 0 at the inputs",
}
PASSING = {"holds", "proved", "unproved"}
PROOF_ELEMENTS = 64  # per-element proofs only when inputs and gradient are this small
SHOWN_DIFFERENCES = 3


def actual_gradient(report: Report, name: str) -> tuple[torch.Tensor, str]:
    """The gradient an expectation is compared with, and who computed it (for the message)."""
    if name in report.grads:
        entry = report.grads[name]
        value = entry.torch if entry.torch is not None else (entry.symbolic.value if entry.symbolic else None)
        who = Msg("torch and sympy give") if entry.agree else Msg("torch gives")
        if value is not None:
            return value, who
    if report.jacobian and name in report.jacobian and report.jacobian[name].torch is not None:
        return report.jacobian[name].torch, Msg("the Jacobian is")
    raise GradexplainError(Msg("--expect {name}: {name} is not an input that gets a gradient", name=name))


def differing(expected: torch.Tensor, actual: torch.Tensor, tol: float, limit: int = SHOWN_DIFFERENCES) -> str:
    """The first entries that differ: ``[0, 1] 195 instead of 194 (off by 1)`` (claimed, then right)."""
    e, a = expected.double(), actual.double()
    bad = ~agreeing_entries(e, a, tol)
    positions = bad.nonzero().tolist()
    parts = []
    for i in positions[:limit]:
        where = f"[{', '.join(map(str, i))}] " if i else ""
        off = float(e[tuple(i)] - a[tuple(i)])
        parts.append(Msg("{where}{claimed} instead of {right} (off by {off})", where=where,
                         claimed=fmt_number(float(e[tuple(i)])), right=fmt_number(float(a[tuple(i)])),
                         off=fmt_number(off)))
    if len(positions) > limit:
        return Msg("{entries} (+{more} more)", entries=joined(parts), more=len(positions) - limit)
    return joined(parts)


def read_claim(name: str, claim: str, leaves: dict[str, torch.Tensor], limits: Limits
               ) -> tuple[torch.Tensor | str, Node | None]:
    """The claimed gradient's value and, for a formula, its IR.

    A formula that cannot be evaluated at the inputs (a shape error in ``x@W``) is a wrong answer,
    so that message comes back as a string instead of ending the run.
    """
    try:
        return parse_value(claim, limits).tensor, None
    except NameInValue:
        node = parse_expression(claim, limits)
    unknown = sorted(inputs_of(node) - set(leaves))
    if unknown:
        raise GradexplainError(Msg("--expect {name}={claim}: {unknown!r} is not an input", name=name, claim=claim,
                                   unknown=unknown[0])) from None
    try:
        return evaluate(node, leaves, limits), node
    except GradexplainError as e:
        return e.message, node


def check_expectation(name: str, claim: str, report: Report, program: Program, leaves: dict[str, torch.Tensor],
                      shapes: Shapes, limits: Limits, tol: float) -> ExpectResult:
    """Compare one claim with the gradient: value, shape, transpose, then (formulas) the proof."""
    actual, who = actual_gradient(report, name)
    expected, node = read_claim(name, claim, leaves, limits)
    kind = "value" if node is None else "formula"

    def result(outcome: str, message: str) -> ExpectResult:
        assert outcome in OUTCOMES, outcome
        proved = True if outcome == "proved" else (None if outcome in PASSING else False)
        done = ExpectResult(name, claim, kind, outcome in PASSING, message, proved if kind == "formula" else None,
                            outcome)
        if not done.passed:
            teach(done, expected, actual, node, report, shapes, tol)
        return done

    if isinstance(expected, str):
        return result("wrong-shape", Msg("{name}: expected {claim}, which cannot be evaluated at these inputs: "
                                         "{why}", name=name, claim=claim, why=expected))
    expected = expected.to(actual.dtype)
    if expected.dim() == 0 and actual.dim() > 0 and kind == "formula":
        expected = expected.expand_as(actual)
    head = Msg("{name}: expected {claim}", name=name, claim=claim if kind == "formula" else short(expected))
    if tuple(expected.shape) != tuple(actual.shape):
        return result(*wrong_shape(head, expected, actual, tol))
    if not agrees(actual, expected, tol):
        if expected.dim() == 2 and agrees(expected.T, actual, tol):
            return result("transposed", Msg("{head}, {who} {actual}: that is the transpose of the right answer",
                                            head=head, who=who, actual=short(actual)))
        return result("wrong", Msg("{head}, {who} {actual} (differs at {where})", head=head, who=who,
                                   actual=short(actual), where=differing(expected, actual, tol)))
    if node is None:
        return result("holds", Msg("{name}: {value} holds", name=name, value=short(expected)))
    outcome, detail = prove(node, report, program, name, shapes, leaves, limits, tol)
    return result(outcome, Msg("{name}: {claim} {detail}", name=name, claim=claim, detail=detail))


def teach(result: ExpectResult, expected: torch.Tensor | str, actual: torch.Tensor, claim: Node | None,
          report: Report, shapes: Shapes, tol: float) -> None:
    """A wrong answer gets the right one, the difference ``claim − derivative`` and, where one fits, a
    diagnosis of the mistake; the message says all three."""
    derivative = derivative_formula(report, result.name)
    entry = report.grads.get(result.name)
    result.correct = entry.symbolic.expr if entry is not None and entry.symbolic is not None and \
        entry.symbolic.expr else short(actual)
    if claim is not None and derivative is not None:
        try:
            result.difference = to_text(Simplifier(shapes)(Call("sub", (claim, derivative))))
        except (GradexplainError, ArithmeticError, TypeError, ValueError, NotImplementedError, RecursionError):
            result.difference = None
    elif isinstance(expected, torch.Tensor) and tuple(expected.shape) == tuple(actual.shape):
        result.difference = short(expected - actual.to(expected.dtype))
    if isinstance(expected, torch.Tensor):
        result.diagnosis = diagnose(result, expected, actual, report, tol)
    extra = [Msg("the right formula is {correct}", correct=result.correct) if claim is not None and
             derivative is not None else Msg("the right answer is {correct}", correct=result.correct)]
    if result.difference is not None:
        extra.append(Msg("claim − derivative = {difference}", difference=result.difference))
    if result.diagnosis:
        extra.append(result.diagnosis)
    result.message = joined([result.message, *extra])


def ratio_text(c: float) -> str:
    f = Fraction(c).limit_denominator(1000)
    return str(f) if abs(float(f) - c) <= 1e-9 * (1 + abs(c)) else f"{c:.6g}"


def diagnose(result: ExpectResult, expected: torch.Tensor, actual: torch.Tensor, report: Report,
             tol: float) -> str | None:
    """Name the mistake when the wrong answer has a recognisable relation to the right one."""
    if result.outcome == "transposed":
        return Msg("transposed: the claim is the transpose of the gradient (a gradient has the shape of its input, "
                   "{shape} here)", shape=list(actual.shape))
    if tuple(expected.shape) != tuple(actual.shape):
        if expected.numel() == 1 or actual.numel() == 1 or expected.dim() != actual.dim():
            return Msg("wrong shape or broadcast: the claim has shape {claimed}, the gradient {right} (a gradient "
                       "has the shape of its input)", claimed=list(expected.shape), right=list(actual.shape))
        return None
    e, a = expected.double().reshape(-1), actual.double().reshape(-1)
    nonzero = a.abs() > tol
    if bool(nonzero.any()) and bool((e[~nonzero].abs() <= tol).all()):
        ratios = e[nonzero] / a[nonzero]
        c = float(ratios[0])
        if bool(((ratios - c).abs() <= tol * (1 + abs(c))).all()) and abs(c - 1) > tol:
            if abs(c + 1) <= tol:
                return Msg("sign: the claim is the negative of the gradient")
            sizes = sorted({math.prod(i.shape) for i in report.inputs.values()} - {0, 1})
            n = next((n for n in sizes if abs(c * n - 1) <= tol or abs(c - n) <= tol), None)
            if n is not None:
                return Msg("a factor of {factor} off: the claim is {ratio} × the gradient (mean vs sum: ×1/n with "
                           "n = {n})", factor=ratio_text(1 / c), ratio=ratio_text(c), n=n)
            return Msg("a factor of {factor} off: the claim is {ratio} × the gradient", factor=ratio_text(1 / c),
                       ratio=ratio_text(c))
    for f in report.forward:
        grad = f.grad
        if grad is not None and f.name != result.name and tuple(grad.shape) == tuple(expected.shape) and \
                agrees(grad.to(expected.dtype), expected, tol):
            return Msg("missing chain-rule factor: the claim is the gradient at {step} = {expr}, not yet multiplied "
                       "through {step}'s dependence on {name}", step=f.name, expr=f.expr, name=result.name)
    return None


def wrong_shape(head: str, expected: torch.Tensor, actual: torch.Tensor, tol: float) -> tuple[str, str]:
    """Name a wrong shape, and say when it is the transpose or the right entries reshaped."""
    message = Msg("{head}: shape {claimed}, but the gradient has shape {right}", head=head,
                  claimed=list(expected.shape), right=list(actual.shape))
    if expected.dim() == 2 and tuple(expected.T.shape) == tuple(actual.shape) and agrees(expected.T, actual, tol):
        return "transposed", Msg("{message} — that is the transpose of the right answer", message=message)
    if expected.numel() == actual.numel() and agrees(expected.reshape(actual.shape), actual, tol):
        return "wrong-shape", Msg("{message} — the right entries, in the wrong shape", message=message)
    return "wrong-shape", message


def prove(claim: Node, report: Report, program: Program, name: str, shapes: Shapes, leaves: dict[str, torch.Tensor],
          limits: Limits, tol: float) -> tuple[str, str]:
    """``(outcome, detail)`` for a formula that already matches at the given inputs."""
    derivative = derivative_formula(report, name)
    try:
        with budget(limits.symbolic_timeout):
            if derivative is not None and proved_generic(claim, derivative, shapes):
                return "proved", Msg("holds numerically and symbolically (SymPy: claim - derivative = 0)")
            disproof = disproved_at_inputs(claim, derivative, leaves) if derivative is not None else None
            if disproof:
                return "disproved", Msg("is within tolerance at these inputs, but not equal: {disproof}",
                                        disproof=disproof)
            nearby = differs_nearby(claim, report, program, name, leaves, limits, tol)
            if nearby:
                return "not-general", Msg("matches at these inputs, but not in general: {nearby}", nearby=nearby)
            if derivative is not None and proved_per_element(claim, derivative, leaves):
                return "proved", Msg("holds numerically and symbolically (SymPy: every entry of claim - derivative "
                                     "is 0 for inputs of these shapes)")
    except SymbolicTimeout:
        pass
    return "unproved", Msg("holds numerically, but SymPy could not prove it in general (not proved)")


def derivative_formula(report: Report, name: str) -> Node | None:
    entry = report.grads.get(name)
    if entry is None or entry.symbolic is None or entry.symbolic.expr is None:
        return None
    return read_formula(entry.symbolic.expr)


def proved_generic(claim: Node, derivative: Node, shapes: Shapes) -> bool:
    """SymPy simplifies ``claim - derivative`` to 0 with tensors as symbols (any values, any shapes)."""
    try:
        difference = Simplifier(shapes)(Call("sub", (claim, derivative)))
    except (GradexplainError, ArithmeticError, TypeError, ValueError, NotImplementedError, RecursionError):
        return False
    if isinstance(difference, Const):
        return difference.value == 0
    return isinstance(difference, Call) and difference.op == "zeros_like"


def proved_per_element(claim: Node, derivative: Node, leaves: dict[str, torch.Tensor]) -> bool:
    """Every entry of ``claim - derivative``, over symbolic inputs of these shapes, simplifies to 0."""
    if sum(t.numel() for t in leaves.values()) > PROOF_ELEMENTS:
        return False
    env = {n: element_symbols(n, tuple(t.shape)) for n, t in leaves.items()}
    try:
        evaluator = ObjEvaluator(env)
        difference = np.asarray(evaluator(claim) - evaluator(derivative), dtype=object)
    except (NoClosedForm, ArithmeticError, TypeError, ValueError, NotImplementedError):
        return False
    if difference.size > PROOF_ELEMENTS:
        return False
    return all(sympy.expand(d) == 0 or sympy.simplify(d) == 0 for d in difference.reshape(-1))


def disproved_at_inputs(claim: Node, derivative: Node, leaves: dict[str, torch.Tensor]) -> str | None:
    """The first entry where ``claim - derivative``, evaluated exactly at the inputs (each float as
    the exact binary value torch holds), is provably not 0 — a near-match is still a wrong answer.
    None when every entry is 0 or SymPy cannot decide (``is_zero`` is None)."""
    if sum(t.numel() for t in leaves.values()) > PROOF_ELEMENTS:
        return None
    as_exact = np.frompyfunc(lambda v: sympy.Rational(*Fraction(v).as_integer_ratio()) if math.isfinite(v)
                             else sympy.nan, 1, 1)
    env = {n: as_exact(np.asarray(t.detach().double().numpy(), dtype=object)) for n, t in leaves.items()}
    try:
        evaluator = ObjEvaluator(env)
        difference = np.asarray(evaluator(claim) - evaluator(derivative), dtype=object)
    except (NoClosedForm, ArithmeticError, TypeError, ValueError, NotImplementedError, GradexplainError):
        return None
    if difference.size > PROOF_ELEMENTS:
        return None
    for idx in np.ndindex(*difference.shape):
        d = difference[idx] if isinstance(difference[idx], sympy.Basic) else sympy.Integer(0) + difference[idx]
        if d.is_zero is False and d.is_finite:
            where = f"[{', '.join(map(str, idx))}] " if idx else ""
            return Msg("claim - derivative = {value:.3g} {where}exactly", value=float(d), where=where)
    return None


def differs_nearby(claim: Node, report: Report, program: Program, name: str, leaves: dict[str, torch.Tensor],
                   limits: Limits, tol: float) -> str | None:
    """Plain torch at a nearby random point: a formula that only matches at the given inputs is wrong.

    Only inputs that require grad move (``--const`` values are fixed data); the point is close
    (relative 5 %) so domains (``log``, ``sqrt``) are kept.  None when it agrees there or the
    comparison is impossible (non-finite values, a non-scalar output without a gradient argument).
    """
    if name not in report.grads or (report.grad_output is None and report.output.shape):
        return None
    gen = torch.Generator().manual_seed(1)
    moved = {}
    for n, t in leaves.items():
        t = t.detach()
        if report.inputs[n].requires_grad:
            u = torch.rand(t.shape, generator=gen, dtype=torch.float64).to(t.dtype)
            t = t + 0.05 * (1 + t.abs()) * (u + 0.5)
        moved[n] = t.clone().requires_grad_(report.inputs[n].requires_grad)
    try:
        out = run_program(program, moved, limits)[program.output]
        (grad,) = torch.autograd.grad(out, moved[name], grad_outputs=report.grad_output, allow_unused=True)
        claimed = evaluate(claim, moved, limits)
    except (GradexplainError, RuntimeError):
        return None
    if grad is None or not (torch.isfinite(grad).all() and torch.isfinite(claimed).all()):
        return None
    claimed = claimed.expand_as(grad) if claimed.dim() == 0 else claimed
    if tuple(claimed.shape) != tuple(grad.shape) or agrees(grad, claimed.to(grad.dtype), tol):
        return None
    point = ", ".join(f"{n}={short(t.detach())}" for n, t in moved.items() if report.inputs[n].requires_grad)
    return Msg("at {point} it gives {claimed}, torch gives {grad}", point=point, claimed=short(claimed),
               grad=short(grad))
