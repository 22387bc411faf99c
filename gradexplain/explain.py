"""The ``eval`` pipeline: text → IR → (torch, SymPy) → compare → :class:`Report`.

The CLI only turns options into :class:`EvalOptions` and a Report into output; everything the
tool knows about one expression is computed here, in stages: the torch run
(:mod:`gradexplain.torch_report`), SymPy's gradients and Jacobians beside torch's, exact values,
finite differences, second derivatives, ``--expect`` and training steps.
"""
from __future__ import annotations

from typing import Any

import torch

from .compare import agrees, all_agree, compare
from .errors import GradexplainError, LimitError
from .i18n import Msg
from .execute import Shapes, evaluate
from .expect import check_expectation
from .formula import read_formula
from .ir import Node, Program
from .hessian import second_order
from .limits import Limits, run_budget
from .numeric import attach_numeric, numeric_gradients
from .options import EvalOptions
from .phrases import message_of, symbolic_reason
from .program import gradient_programs
from .report import GradEntry, JacobianEntry, Report, Symbolic
from .symbolic import NoClosedForm, SymbolicTimeout, budget, exact_value, gradients, jacobian_text
from .torch_report import (TORCH_ONLY, TorchStage, differentiable, note_jacobian_instead, run_torch,
                           torch_jacobians)
from .train import explain_steps
from .values import Value, split_assignment

__all__ = ["EvalOptions", "explain"]


def explain(opts: EvalOptions) -> Report:
    """The whole pipeline for one EXPR, its SymPy work within one --symbolic-timeout budget."""
    with run_budget(opts.limits.symbolic_timeout):
        return _explain(opts)


def _explain(opts: EvalOptions) -> Report:
    """torch first; then, per kind of output, SymPy beside it and every check asked for."""
    stage = run_torch(opts)
    report = stage.report
    if not differentiable(stage):
        return report
    if stage.jacobian_only and (opts.hessian or opts.hvp):
        raise GradexplainError(Msg("--hessian/--hvp need a scalar output, and this one has shape {shape}: pass "
                                   "--grad-output V for the second derivatives of v·output",
                                   shape=list(stage.run.output.shape)))
    if stage.jacobian_only:
        note_jacobian_instead(stage)
        report.jacobian = jacobians(stage)
        report.agree = all_agree(e.agree for e in report.jacobian.values())
        expectations(stage)
        return report
    report.grads = gradient_entries(stage)
    if all(v.exact is not None for v in stage.used.values()) and \
            (stage.grad_output is None or stage.grad_output.exact is not None):
        exact_values(report, stage.used, opts.limits)
    if opts.numeric:
        numeric = numeric_gradients(stage.program, stage.leaves, stage.seed, stage.wrt, stage.run.grads,
                                    notes=report.notes, work_max=opts.limits.max_numeric)
        report.notes.extend(attach_numeric(report.grads, numeric, stage.tol))
    report.agree = all_agree(e.agree for e in report.grads.values())
    if opts.hessian or opts.hvp:
        flags = second_order(report, stage.program, stage.leaves, stage.wrt, stage.seed, opts, stage.tol)
        report.agree = all_agree([report.agree, *flags])
    if stage.show_jacobian():
        report.jacobian = jacobians(stage)
        if opts.jacobian and any(e.agree is False for e in report.jacobian.values()):
            report.agree = False  # an asked-for Jacobian that disagrees is a disagreement (the one shown beside a
            # vJp is written per element by SymPy, which cannot follow torch's conventions at kinks: 0**0)
    expectations(stage)
    report.notes.extend(stage.run.notes)
    if opts.train is not None:
        explain_steps(report, stage.program, stage.leaves, stage.wrt, opts, stage.tol)
    return report


def exact_values(report: Report, used: dict[str, Value], limits: Limits) -> None:
    """``symbolic.exact``: the symbolic gradient over the exact inputs (``1/3``), when all-rational."""
    exact_inputs = {n: v.exact for n, v in used.items()}
    for entry in report.grads.values():
        if entry.symbolic is not None and entry.symbolic.expr is not None:
            try:
                entry.symbolic.exact = exact_value(read_formula(entry.symbolic.expr, limits), exact_inputs)
            except LimitError:  # nested past what Python parses: the exact value is an extra, not a failure
                entry.symbolic.exact = None


def symbolic_gradients(program: Program, seed: Node, wrt: list[str], leaves: dict[str, torch.Tensor],
                       shapes: Shapes, opts: EvalOptions) -> tuple[dict[str, Any], str | None, dict[str, str | None]]:
    """The closed forms per input (symbolic.SymbolicGradient) and their let-form programs, or why there
    are none."""
    if not opts.symbolic:
        return {}, TORCH_ONLY, {}
    try:
        with budget(opts.limits.symbolic_timeout):
            adjoints: dict[int, Any] = {}
            formulas = gradients(program.output_node, seed, wrt, shapes, {n: tuple(t.shape) for n, t in leaves.items()},
                                 opts.limits, adjoints)
            return formulas, None, gradient_programs(program, formulas, adjoints, shapes)
    except (SymbolicTimeout, NoClosedForm, NotImplementedError) as e:
        return {}, symbolic_reason(Msg("skipped — {why}", why=message_of(e))), {}


def gradient_entries(stage: TorchStage, symbolic: tuple[dict[str, Any], str | None, dict[str, str | None]] | None
                     = None) -> dict[str, GradEntry]:
    """Per input: torch's gradient beside SymPy's formula, evaluated at the inputs and compared
    (``symbolic``: closed forms already derived, e.g. for a training loop's repeated program)."""
    opts, run, leaves, wrt, tol = stage.opts, stage.run, stage.leaves, stage.wrt, stage.tol
    entries: dict[str, GradEntry] = {}
    formulas, reason, programs = symbolic if symbolic is not None else \
        symbolic_gradients(stage.program, stage.seed_node, wrt, leaves, stage.shapes, opts)
    for name in wrt:
        grad = run.grads.get(name)
        sg = formulas.get(name)
        if sg is None:
            entries[name] = GradEntry(grad, None, None, None, reason=reason or symbolic_reason(Msg("not available")))
            continue
        try:
            value = evaluate(sg.expr, leaves, opts.limits).to(leaves[name].dtype) if sg.expr is not None else None
        except LimitError:
            raise
        except GradexplainError as e:  # the formula has no value here (inv of a singular matrix): torch's still stands
            why = Msg("the formula has no value at these inputs ({why})", why=message_of(e))
            entries[name] = GradEntry(grad, Symbolic(sg.text, None, note=sg.note, program=programs.get(name)), None,
                                      None, reason=symbolic_reason(why))
            continue
        sym = Symbolic(sg.text, value, note=sg.note, program=programs.get(name))
        note = None
        if grad is None:
            note = Msg("{name} requires grad but the output does not depend on it, so PyTorch leaves {name}.grad "
                       "as None; its gradient is zero", name=name)
            ok = value is None or bool((value == 0).all())
            entries[name] = GradEntry(None, sym, 0.0 if ok else None, ok, note=note)
            continue
        if value is None:
            entries[name] = GradEntry(grad, sym, None, None, reason=sg.note)
            continue
        if value.shape != grad.shape and value.numel() == grad.numel() == 1:
            value = value.reshape(grad.shape)
        ok, diff = compare(grad, value, tol)
        entries[name] = GradEntry(grad, sym, diff, ok, note=note)
    return entries


def jacobians(stage: TorchStage) -> dict[str, JacobianEntry]:
    """torch's Jacobian per input beside SymPy's (written per element), when there is one to show."""
    opts = stage.opts
    entries = torch_jacobians(stage)
    input_shapes = {n: tuple(t.shape) for n, t in stage.leaves.items()}
    for name, entry in entries.items():
        if entry.torch is None:
            continue
        if not opts.symbolic:
            entry.reason = TORCH_ONLY
            continue
        try:
            with budget(opts.limits.symbolic_timeout):
                text = jacobian_text(stage.program.output_node, name, input_shapes, opts.limits)
            value = evaluate(read_formula(text, opts.limits), stage.leaves, opts.limits).to(entry.torch.dtype)
            entry.symbolic = Symbolic(text, value.reshape(entry.torch.shape) if value.numel() == entry.torch.numel()
                                      else value)
        except (SymbolicTimeout, NoClosedForm, NotImplementedError, LimitError) as e:  # nested past what Python parses
            entry.reason = symbolic_reason(Msg("skipped — {why}", why=message_of(e)))
            continue
        entry.agree = agrees(entry.torch, entry.symbolic.value, stage.tol)
    return entries


def expectations(stage: TorchStage) -> None:
    """``--expect NAME=VALUE|FORMULA``: checked against torch's gradient (and SymPy's, for formulas)."""
    opts = stage.opts
    for text in opts.expect:
        name, claim = split_assignment(text)
        stage.report.expect.append(check_expectation(name, claim, stage.report, stage.program, stage.leaves,
                                                     stage.shapes, opts.limits, stage.tol))
