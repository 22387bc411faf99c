"""``gradexplain run``'s output: each backward() of the script explained in full or in one line.

A full explanation is the ``eval`` report with the call it came from on top and the forward
steps beside the user's own source lines; a repeated call of a training loop is one summary line
(loss, gradient norm per leaf, what ``optimizer.step()`` changed and the learning rate it used).
The same pieces make the Markdown and JSON-lines forms.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Iterable

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from ..i18n import N_, Msg, _
from ..report import Report, to_plain
from .style import Prose, joined
from .text import answer_block, fmt_value, header, inputs_table, make_console, mark, number, output_line, report_renderables, \
    sections
from . import writeup
from .json import dumps, render


FORMULA_SHOWN = 160  # characters of a closed form in the answer line; longer ones are pointed to


def call_title(report: Report) -> str:
    call = report.call
    if call is None:
        return "backward()"
    where = f"{_short_path(call.file)}:{call.line}" if call.line else "?"
    return _(Msg("backward() #{n} at {where}: {code}", n=call.index + 1, where=where, code=call.code))


def _short_path(path: str | None) -> str:
    if not path:
        return "?"
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith("..") else path


def answer_lines(report: Report) -> list[Text]:
    """The answer first: ``x.grad = [4, 8, 12]  =  4*x  ✓`` per leaf (the vJp when backward had a gradient)."""
    lines = []
    vjp = " = vᵀ·J" if report.grad_output is not None else ""
    for name, g in report.grads.items():
        formula = g.symbolic.expr if g.symbolic is not None and g.symbolic.expr else None
        text = Text(f"{name}.grad{vjp} = {fmt_value(g.torch) if g.torch is not None else 'None'}")
        if formula:
            text.append(f"  =  {formula}" if len(formula) <= FORMULA_SHOWN else
                        "  =  " + _(Msg("a closed form of {n} characters (in the gradients table; all of it in --json)",
                                        n=f"{len(formula):,}")))
        text.append("  ")
        text.append_text(mark(g.agree if g.agree is not None else g.numeric_agree))
        lines.append(text)
    if not report.grads and report.jacobian:
        for name, j in report.jacobian.items():
            text = Text(_(Msg("∂{output}/∂{name} (Jacobian) = {value}", output=report.output.name, name=name,
                              value=fmt_value(j.torch))) + "  ")
            text.append_text(mark(j.agree))
            lines.append(text)
    return lines


def forward_table(report: Report) -> Table:
    table = Table(title=_("forward (your code, line by line)"), box=box.SIMPLE_HEAD, title_justify="left",
                  show_edge=False)
    for col in (N_("line"), N_("your code"), N_("step"), N_("shape"), N_("value"), "grad_fn", N_("grad (retain_grad)")):
        table.add_column(_(col), overflow="fold")
    for f in report.forward:
        source = getattr(f, "source", None) or {}
        step = f.expr if f.expr.startswith(f"{f.name}[") else f"{f.name} = {f.expr}"
        table.add_row(str(source.get("line", "")), escape(source.get("code", "")), escape(step),
                      str(f.shape), escape(fmt_value(f.value)), f.grad_fn or "—", escape(fmt_value(f.grad)))
    return table


def full_renderables(report: Report, brief: bool) -> list[Any]:
    items: list[Any] = [Rule(Text(call_title(report), style="bold"), align="left"), *answer_lines(report)]
    if brief:
        return items
    items += [inputs_table(report, N_("leaves and constants"), N_("no (constant)")), forward_table(report),
              output_line(report)]
    if report.grad_output is not None:
        items.append(Text(f"backward(gradient={fmt_value(report.grad_output)})"))
    # the answer, inputs and forward pass are drawn above in the script's own terms: not twice
    return items + report_renderables(report, [s for s in sections() if s not in (answer_block, header)])


def summary_line(s: Any, previous_lr: list[float] | None = None) -> Text:
    """One line per repeated backward(): loss, gradient norms, the optimizer step (and a changed LR)."""
    text = Text(_(Msg("#{n} line {line}: ", n=s.index + 1, line=s.line)), style="bold")
    if s.loss is not None:
        text.append(_(Msg("loss {value}", value=number(s.loss))) + "  ")
    norms = ", ".join(f"{n} {number(v)}" for n, v in s.grad_norms.items())
    text.append(f"‖grad‖ {norms}")
    if s.step is not None:
        lr = ", ".join(number(v) for v in s.step.lr)
        changes = ", ".join(f"{n} {number(v)}" for n, v in s.step.changes.items())
        text.append(f"  |  {s.step.optimizer}.step() lr {lr}")
        if previous_lr is not None and previous_lr != s.step.lr:
            text.append(_(Msg(" (was {lr}: changed by a scheduler or by hand)",
                              lr=", ".join(number(v) for v in previous_lr))), style="cyan")
        text.append(f": ‖Δ‖ {changes}")
    if s.accumulated:
        text.append("  ⚠ " + _(Msg(".grad piled up for {names}: no zero_grad() before this backward()",
                                   names=", ".join(s.accumulated))), style="yellow")
    return text


def verdict_line(items: list[Any]) -> Text:
    reports = [i for i in items if isinstance(i, Report)]
    failed = sum(1 for i in items if hasattr(i, "error"))
    summaries = len(items) - len(reports) - failed
    flags = [r.agree for r in reports]
    if not items:
        return Text(_("the script made no backward() call: nothing to explain"), style="yellow")
    counts = [_(Msg("{n} backward() call: {explained} explained", n=len(items), explained=len(reports))
                if len(items) == 1 else
                Msg("{n} backward() calls: {explained} explained", n=len(items), explained=len(reports)))]
    if summaries:
        counts.append(_(Msg("{n} summarised (--all explains every one)", n=summaries)))
    if failed:
        counts.append(_(Msg("{n} could not be explained", n=failed)))
    text = Text(joined(counts) + "  ")
    text.append_text(mark(False if False in flags else None if None in flags else True))
    return text


def print_run(items: Iterable[Any], brief: bool = False, console: Console | None = None, failures: int = 0) -> None:
    console = console or make_console()
    seen: list[Any] = []
    previous_summary = False
    lr: list[float] | None = None
    for item in items:
        seen.append(item)
        if isinstance(item, Report):
            for part in full_renderables(item, brief):
                console.print(part)
            previous_summary = False
        elif hasattr(item, "error"):
            console.print(Prose(_(Msg("backward() #{n} at line {line}: {code} — could not be explained: {error}",
                                     n=item.index + 1, line=item.line, code=item.code, error=item.error)),
                               style="yellow"))
            previous_summary = False
        else:
            if not previous_summary:
                console.print(Text(_(Msg("repeats of line {line} ({code}), one line each:", line=item.line,
                                         code=item.code)), style="dim"))
            console.print(Prose(summary_line(item, lr)))
            previous_summary = True
            lr = item.step.lr if item.step is not None else lr
    console.print(Prose(verdict_line(seen)))
    if failures:
        console.print(Prose(_(Msg("note: {n} torch call(s) could not be recorded; the script ran unchanged, but "
                                 "explanations that reach them may lack a step", n=failures)), style="yellow"))


def summary_dict(s: Any) -> dict[str, Any]:
    """A summarised backward() as its JSON line (schema ``gradexplain-summary/1``)."""
    step = None
    if s.step is not None:
        step = {"optimizer": s.step.optimizer, "lr": s.step.lr, "change_norms": s.step.changes}
    return to_plain({"schema": "gradexplain-summary/1", "call": {"line": s.line, "code": s.code, "index": s.index},
                     "repeat_of": s.repeat_of, "loss": s.loss, "grad_norms": s.grad_norms,
                     "accumulated": s.accumulated, "step": step, "grad_changes": s.events})


def json_lines(items: Iterable[Any]) -> Iterable[str]:
    for item in items:
        if isinstance(item, Report):
            yield render(item)
        elif hasattr(item, "error"):
            yield dumps({"schema": "gradexplain-error/1", "error": item.error,
                         "call": {"line": item.line, "code": item.code, "index": item.index}})
        else:
            yield dumps(summary_dict(item))


def markdown(items: Iterable[Any]) -> str:
    parts, rows = [], []
    for item in items:
        if isinstance(item, Report):
            parts.append(f"## {call_title(item)}\n\n" + writeup.markdown(item, level=3))
        elif hasattr(item, "error"):
            parts.append(_(Msg("## backward() #{n} at line {line}\n\nCould not be explained: {error}\n", n=item.index + 1,
                               line=item.line, error=item.error)))
        else:
            rows.append(f"| {item.index + 1} | {item.line} | {number(item.loss) if item.loss is not None else '—'} | "
                        + ", ".join(f"{n} {number(v)}" for n, v in item.grad_norms.items()) + " |")
    if rows:
        parts.append(_("## Repeated backward() calls\n\n| # | line | loss | gradient norms |\n|---|---|---|---|\n")
                     + "\n".join(rows) + "\n")
    return "\n".join(parts)


def emit_run(items: list[Any], fmt: str, brief: bool, failures: int = 0) -> None:
    if fmt == "json":
        for line in json_lines(items):
            sys.stdout.write(line + "\n")
    elif fmt == "markdown":
        sys.stdout.write(markdown(items))
    else:
        print_run(items, brief, failures=failures)
