"""``--expect NAME=VALUE`` and formula answers: is the user's gradient the right one?

A value is compared with torch's gradient.  A formula (EXPR over the input names, ``4*x``) is
checked twice: numerically at the inputs, and symbolically — SymPy simplifies
``claim - derivative``; 0 proves it, anything else is reported as "could not prove", which is
a distinct outcome from a numeric mismatch.
"""
from __future__ import annotations

import torch

from .errors import GradexplainError, NameInValue
from .execute import Shapes, evaluate
from .ir import Call, Const, Node, Program, inputs_of
from .limits import Limits
from .parse import parse_expression
from .report import ExpectResult, Report
from .values import parse_value


def short(t: torch.Tensor, limit: int = 8) -> str:
    """Compact text of a tensor for a one-line message: [[12, 194]]."""
    if t.numel() > limit:
        return f"tensor of shape {list(t.shape)}"

    def fmt(v: float) -> str:
        return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:.6g}"

    def nest(x: object) -> str:
        return "[" + ", ".join(nest(i) for i in x) + "]" if isinstance(x, list) else fmt(float(x))

    return nest(t.double().tolist())


def actual_gradient(report: Report, name: str) -> tuple[torch.Tensor, str]:
    if name in report.grads:
        entry = report.grads[name]
        value = entry.torch if entry.torch is not None else (entry.symbolic.value if entry.symbolic else None)
        who = "torch and sympy give" if entry.agree else "torch gives"
        if value is not None:
            return value, who
    if report.jacobian and name in report.jacobian and report.jacobian[name].torch is not None:
        return report.jacobian[name].torch, "the Jacobian is"
    raise GradexplainError(f"--expect {name}: {name} is not an input that gets a gradient")


def differing(expected: torch.Tensor, actual: torch.Tensor, tol: float, limit: int = 3) -> str:
    diff = (expected.double() - actual.double()).abs()
    bad = (diff > tol * (1 + torch.maximum(expected.double().abs(), actual.double().abs()))).nonzero().tolist()
    parts = [f"[{', '.join(map(str, i))}] {float(expected[tuple(i)]):.6g} vs {float(actual[tuple(i)]):.6g}"
             for i in bad[:limit]]
    more = f" (+{len(bad) - limit} more)" if len(bad) > limit else ""
    return "; ".join(parts) + more


def check_expectation(name: str, claim: str, report: Report, program: Program, leaves: dict[str, torch.Tensor],
                      shapes: Shapes, limits: Limits, tol: float) -> ExpectResult:
    from .explain import agree

    actual, who = actual_gradient(report, name)
    try:
        expected = parse_value(claim, limits).tensor
        kind, node = "value", None
    except NameInValue:
        kind, node = "formula", parse_expression(claim, limits)
        unknown = sorted(inputs_of(node) - set(leaves))
        if unknown:
            raise GradexplainError(f"--expect {name}={claim}: {unknown[0]!r} is not an input") from None
        expected = evaluate(node, leaves, limits)
    expected = expected.to(actual.dtype)
    if expected.dim() == 0 and actual.dim() > 0 and kind == "formula":
        expected = expected.expand_as(actual)
    head = f"{name}: expected {claim if kind == 'formula' else short(expected)}"
    if tuple(expected.shape) != tuple(actual.shape):
        hint = ""
        if expected.dim() == 2 and tuple(expected.T.shape) == tuple(actual.shape) and agree(expected.T, actual, tol)[0]:
            hint = " — that is the transpose of the right answer"
        return ExpectResult(name, claim, kind, False,
                            f"{head}: shape {list(expected.shape)}, but the gradient has shape {list(actual.shape)}{hint}")
    ok, diff = agree(actual, expected, tol)
    if not ok:
        hint = ""
        if expected.dim() == 2 and expected.shape[0] == expected.shape[1] and agree(expected.T, actual, tol)[0]:
            hint = " — that is the transpose of the right answer"
        return ExpectResult(name, claim, kind, False,
                            f"{head}, {who} {short(actual)} (differs at {differing(expected, actual, tol)}){hint}")
    proved = None
    message = f"{name}: {claim} holds"
    if node is not None:
        proved = prove(node, report, name, shapes)
        message += " numerically and symbolically" if proved else " numerically (SymPy could not prove it in general)"
    return ExpectResult(name, claim, kind, True, message, proved)


def prove(claim: Node, report: Report, name: str, shapes: Shapes) -> bool | None:
    """True when SymPy simplifies ``claim - derivative`` to 0; None when it cannot decide."""
    from .symbolic import SymbolicTimeout, Simplifier, budget

    entry = report.grads.get(name)
    if entry is None or entry.symbolic is None or entry.symbolic.expr is None:
        return None
    try:
        derivative = parse_expression(entry.symbolic.expr)
        with budget(5.0):
            difference = Simplifier(shapes)(Call("sub", (claim, derivative)))
    except (SymbolicTimeout, GradexplainError, Exception):  # noqa: BLE001 - undecided, never a crash
        return None
    zero = isinstance(difference, Const) and difference.value == 0
    zero = zero or (isinstance(difference, Call) and difference.op == "zeros_like")
    return True if zero else None
