"""Explain a recorded ``backward()`` exactly as ``eval`` explains an EXPR.

The frozen program (:mod:`gradexplain.record`) goes through the same stages as ``eval``: the
torch run with every node hooked, the symbolic reverse mode and its SymPy simplification, finite
differences, the Jacobian behind a ``backward(gradient)``.  Then the report is put in the user's
terms: leaf names as the script sees them (``model.fc1.weight``), each ``.grad`` as the script
itself holds it (accumulation included, explained in a note), the source line of every step.

The caller's torch state is left as it was (:func:`torch_state_kept`): the pipeline sets its own
default dtype and grad mode, and nothing here draws from the global generator.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Iterator

import torch

from . import misconceptions
from .autograd import torch_run
from .execute import Shapes
from .compare import agrees, all_agree
from .explain import gradient_entries, jacobians, symbolic_gradients
from .i18n import Msg
from .ir import Const, Node
from .phrases import COMMA, joined, symbolic_reason
from .options import DEFAULT_TOL, EvalOptions
from .printer import to_text
from .limits import DEFAULT, Limits, run_budget
from .record import Frozen, Site
from .torch_report import JACOBIAN_WITH_VJP, TorchStage, rule_summary
from .report import CallSite, ForwardEntry, GradEntry, GraphEntry, InputInfo, OutputInfo, Report
from .session import CallRecord
from .values import Value
from .numeric import attach_numeric, numeric_gradients

NUMERIC_PER_ELEMENT = 256  # entries of all inputs together: finite differences per entry up to this; above it
# they run only for programs with an opaque step (there they are the check), as random directional derivatives


@dataclass
class SourcedForwardEntry(ForwardEntry):
    """A forward step with the user's source line: ``{"line": 5, "code": "y = x * 2"}``."""

    source: dict[str, Any] | None = None


@contextmanager
def torch_state_kept() -> Iterator[None]:
    """Default dtype, the global generator, grad mode and torch's thread count as they were, whatever runs
    inside.  Inside, torch runs on one thread: explaining evaluates many small tensors (replays, formula
    values), where waking a thread pool costs more than it gives — 4x on a busy two-core machine."""
    dtype, rng, grad = torch.get_default_dtype(), torch.get_rng_state(), torch.is_grad_enabled()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_rng_state(rng)
        torch.set_grad_enabled(grad)
        torch.set_num_threads(threads)


def _dtype_name(values: dict[str, torch.Tensor], wrt: list[str]) -> str:
    dtypes = {values[n].dtype for n in wrt}
    return "float64" if dtypes == {torch.float64} else "float32"


def explain_frozen(frozen: Frozen, grad_output: torch.Tensor | None, wrt: list[str], *,
                   limits: Limits = DEFAULT, numeric: bool = True) -> Report:
    """The eval pipeline on a frozen program; ``wrt``: internal names of the leaves to differentiate for."""
    with torch_state_kept(), run_budget(limits.symbolic_timeout):
        return _explain_frozen(frozen, grad_output, wrt, limits, numeric)


def _explain_frozen(frozen: Frozen, grad_output: torch.Tensor | None, wrt: list[str], limits: Limits,
                    numeric: bool) -> Report:
    program, values = frozen.program, frozen.values
    dtype_name = _dtype_name(values, wrt) if wrt else "float32"
    torch.set_default_dtype(torch.float64 if dtype_name == "float64" else torch.float32)
    torch.set_grad_enabled(True)
    tol = DEFAULT_TOL[dtype_name]
    opaque = bool(frozen.opaque)
    opts = EvalOptions(expr=program.text, dtype=dtype_name, limits=limits, symbolic=not opaque, numeric=numeric)
    shapes = Shapes(values, limits)
    for stmt in program.statements:
        shapes.shape(stmt.node)
    def fresh() -> dict[str, torch.Tensor]:
        """Constants as the script saw them, for each stage that runs the program (``b[0, 0] = ...`` writes
        into ``b`` in place, as the script did)."""
        if not program.in_place:
            return values
        return {k: v if v.requires_grad else v.clone() for k, v in values.items()}

    forward_notes: list[str] = []  # made from the forward values, before backward() lets them go
    run = torch_run(program, fresh(), grad_output, limits,  # constants here are the script's, not --const
                    on_forward=lambda trace: forward_notes.extend(misconceptions.notes(program, trace, set())))
    output = run.output
    report = Report(
        expr=program.text,
        inputs={n: InputInfo(list(v.shape), v.detach(), n not in frozen.const) for n, v in values.items()
                if n in program.inputs},
        forward=[SourcedForwardEntry(s.name, s.src, list(s.value.shape) if isinstance(s.value, torch.Tensor) else [],
                                     s.value, s.grad_fn, s.grad, source=_source(site))
                 for s, site in zip(run.statements, frozen.sources)],
        output=OutputInfo(program.statements[program.output].name, list(output.shape), output.detach(),
                          type(output.grad_fn).__name__ if output.grad_fn is not None else None, output.requires_grad),
        grad_output=grad_output,
        graph=[GraphEntry(g.id, g.node, g.next, g.variable, g.label, g.grad_output, g.grad_inputs, g.saved,
                          rule_summary(g.op), edges=g.edges, saved_from=g.saved_from, shape=g.shape, value=g.value)
               for g in run.graph],
        grads={}, jacobian=None, agree=True, notes=list(frozen.notes), dtype=dtype_name, tol=tol,
    )
    report.notes.extend(forward_notes)
    if opaque:
        report.notes.append(Msg("{names}: not in gradexplain's registry, so an opaque step — torch computes it as "
                                "the script did, finite differences check it, and there is no closed form (see "
                                "`gradexplain ops`)", names=joined(frozen.opaque, COMMA)))
    if not output.requires_grad or not wrt:
        return report
    seed_value = Value(grad_output, None, "") if grad_output is not None else None

    def stage() -> TorchStage:
        """What eval's later stages read, over fresh constants each time (they rerun the program)."""
        return TorchStage(opts, program, {}, fresh(), shapes, seed_value, run, wrt, tol, report)

    scalar = output.dim() == 0
    if grad_output is None and not scalar:
        report.jacobian = jacobians(stage())
        report.agree = all_agree(e.agree for e in report.jacobian.values())
        return report
    seed: Node = Const(1) if seed_value is None else seed_value.literal()
    report.grads = gradient_entries(stage(), _closed_forms(program, seed, wrt, values, shapes, opts))
    if opaque:
        for entry in report.grads.values():
            entry.reason = symbolic_reason(Msg("none — the program has an op outside the registry (see notes)"))
    small = sum(values[n].numel() for n in values) <= NUMERIC_PER_ELEMENT
    if numeric and (small or opaque):  # a training step's program is dear to rerun: only where it is the check
        estimates = numeric_gradients(program, values, grad_output, wrt, run.grads,
                                      per_element_max=None if small else 0, work_max=limits.max_numeric)
        report.notes.extend(attach_numeric(report.grads, estimates, tol))
    report.agree = all_agree(e.agree if e.agree is not None or not opaque else e.numeric_agree
                             for e in report.grads.values())
    if grad_output is not None and sum(output.numel() * values[n].numel() for n in wrt) <= JACOBIAN_WITH_VJP:
        report.jacobian = jacobians(stage())
    report.notes.extend(run.notes)
    return report


_CLOSED_FORMS: dict[tuple, tuple[dict[str, Any], str | None, dict[str, str | None]]] = {}
CLOSED_FORMS_KEPT = 32


def _closed_forms(program: Any, seed: Node, wrt: list[str], values: dict[str, torch.Tensor], shapes: Shapes,
                  opts: EvalOptions) -> tuple[dict[str, Any], str | None, dict[str, str | None]]:
    """SymPy's closed forms, derived once per program: a training loop explained with --all repeats the
    same program (same text, names, shapes and dtypes) with new values, and the formulas do not change."""
    key = (program.text, to_text(seed), tuple(wrt), opts.symbolic,
           tuple((n, tuple(v.shape), str(v.dtype)) for n, v in sorted(values.items())))
    if key not in _CLOSED_FORMS:
        if len(_CLOSED_FORMS) >= CLOSED_FORMS_KEPT:
            _CLOSED_FORMS.pop(next(iter(_CLOSED_FORMS)))
        _CLOSED_FORMS[key] = symbolic_gradients(program, seed, wrt, values, shapes, opts)
    return _CLOSED_FORMS[key]


def _source(site: Site | None) -> dict[str, Any] | None:
    return {"line": site.line, "code": site.code} if site is not None else None


# ------------------------------------------------------------------------------ in the user's terms


def rename(obj: Any, mapping: dict[str, str]) -> Any:
    """Internal identifiers → the user's names, in keys and texts throughout a report (in place)."""
    changes = {k: v for k, v in mapping.items() if k != v}
    if not changes:
        return obj
    pattern = re.compile(r"(?<![\w.])(" + "|".join(re.escape(k) for k in sorted(changes, key=len, reverse=True))
                         + r")(?!\w)")

    def text(s: str) -> str:
        renamed = pattern.sub(lambda m: changes[m.group(1)], s)
        if isinstance(s, Msg):  # rename inside the arguments, so the sentence stays translatable
            again = Msg(s.template, **{k: walk(v) for k, v in s.args.items()})
            if again == renamed:
                return again
        return renamed

    def walk(o: Any) -> Any:
        if isinstance(o, str):
            return text(o)
        if isinstance(o, torch.Tensor) or o is None or isinstance(o, (int, float, bool)):
            return o
        if isinstance(o, dict):
            return {(text(k) if isinstance(k, str) else k): walk(v) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v) for v in o]
        if isinstance(o, tuple):
            return tuple(walk(v) for v in o)
        if is_dataclass(o) and not isinstance(o, type):
            for f in fields(o):
                setattr(o, f.name, walk(getattr(o, f.name)))
            return o
        return o

    return walk(obj)


def explain_record(record: CallRecord, limits: Limits = DEFAULT, numeric: bool = True) -> Report:
    """The full explanation of one recorded backward(), in the script's own names and values."""
    frozen = record.frozen
    assert frozen is not None
    by_display = {frozen.display[n]: n for n in frozen.tensors}
    wrt = [by_display[n] for n in record.after if n in by_display]
    report = explain_frozen(frozen, record.grad_output, wrt, limits=limits, numeric=numeric)
    replayed = {n: (e.torch if e is not None else None) for n, e in report.grads.items()}
    rename(report, frozen.display)
    report.notes.extend(_grad_notes(record, {frozen.display[k]: v for k, v in replayed.items()}, report.tol))
    for name, entry in report.grads.items():
        if name in record.after:
            entry.torch = record.after[name]  # what the script's own .grad holds now
    for name in record.hidden:
        report.grads[name] = GradEntry(record.after.get(name), None, None, None,
                                       reason=symbolic_reason(Msg("none — the gradient reached it through a step "
                                                                  "the recording cannot see (see notes)")))
        report.notes.append(Msg("{name}.grad: backward() reached it through a step the recording cannot see (a "
                                "custom autograd.Function?), so only torch's value is shown", name=name))
    if record.hidden and report.agree:
        report.agree = None
    report.call = CallSite(record.site.file if record.site else None, record.site.line if record.site else None,
                           record.code, record.index, record.kind)
    report.grad_changes = list(record.events)
    return report


def _grad_notes(record: CallRecord, replayed: dict[str, torch.Tensor | None], tol: float) -> list[str]:
    """Accumulation, a .grad reset in between, and a check that the replay saw what the script computed."""
    notes = []
    for event in record.events:
        zeroed = ".zero_()" in event
        notes.append(Msg("before this backward() the script changed a gradient in place: {event}, so .grad held "
                         "zeros and this call's gradient is all it holds now", event=event) if zeroed else
                     Msg("before this backward() the script changed a gradient in place: {event}", event=event))
    for name, after in record.after.items():
        before = record.before.get(name)
        if record.kind == "autograd.grad":
            continue
        if before is not None and not bool(before.ne(0).any()) and not record.events:
            notes.append(Msg("{name}.grad held zeros before this backward() (zeroed since it was last written), so "
                             "it holds this call's gradient only", name=name))
        if before is not None and bool(before.ne(0).any()):
            notes.append(Msg("{name}.grad already held {before} before this backward(): PyTorch adds each "
                             "backward()'s gradient to .grad, so it now holds the sum {after} — call "
                             "optimizer.zero_grad() (or set .grad = None) before each backward() unless you mean to "
                             "accumulate", name=name, before=_short(before), after=_short(after)))
        mine = replayed.get(name)
        if after is not None and mine is not None:
            expected = after if before is None else after - before
            ok = agrees(expected.double(), mine.double(), max(tol, 1e-5))
            if not ok:
                notes.append(Msg("{name}: the recorded program gives {mine}, but the script's backward() added "
                                 "{added}: some step was not recorded (code outside torch functions?)", name=name,
                                 mine=_short(mine), added=_short(expected)))
    return notes


def _short(t: torch.Tensor) -> str:
    flat = t.detach().double().reshape(-1)
    if flat.numel() <= 6:
        vals = ", ".join(f"{v:.6g}" for v in flat.tolist())
        return f"[{vals}]" if t.dim() else vals
    return Msg("a tensor of shape {shape} (norm {norm:.6g})", shape=list(t.shape), norm=float(flat.norm()))


# ------------------------------------------------------------------------------ summaries


@dataclass
class Summary:
    """One line for a repeated backward() of a training loop: cheap, no SymPy, no replay."""

    index: int
    line: int | None
    code: str
    repeat_of: int | None
    loss: float | None
    grad_norms: dict[str, float]  # leaf → norm of what this call added to its .grad
    accumulated: list[str]  # leaves whose .grad already held something (no zero_grad())
    step: Any | None = None  # session.StepInfo
    events: list[str] = field(default_factory=list)


def summarise(record: CallRecord) -> Summary:
    return Summary(record.index, record.site.line if record.site else None, record.code, record.repeat_of,
                   record.loss, dict(record.norms), list(record.piled), record.step, list(record.events))
