"""The terminal view of training steps (``eval --step``) and of dropout masks.

A few steps are written out in full: each parameter's ``.grad`` (checked against SymPy), the
optimizer's update rule with the numbers substituted, and torch.optim's result next to it.  Many
steps add a compact table and sparklines of loss and lr, so the trend shows at a glance.
"""
from __future__ import annotations

import math
from typing import Any

from rich import box
from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..format import fmt_value, number
from ..i18n import N_, Msg, _
from ..report import DropoutMask, Report
from .style import Prose, mark

DETAIL_STEPS = 3  # steps written out in full; the rest are in the table
TABLE_AFTER = 3  # more steps than this add the table and sparklines
TABLE_ENDS = 10  # a longer table shows this many first and last rows
SPARK_WIDTH = 60
BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One bar per value (sampled down to SPARK_WIDTH); non-finite values are blanks."""
    stride = max(1, math.ceil(len(values) / SPARK_WIDTH))
    values = values[::stride]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return " " * len(values)
    lo, hi = min(finite), max(finite)
    span = hi - lo
    return "".join(" " if not math.isfinite(v) else BARS[round((v - lo) / span * (len(BARS) - 1)) if span else 0]
                   for v in values)


def dropout_text(masks: list[DropoutMask], when: str) -> Text:
    """The masks of one forward pass; ``when`` (English, said here in the reader's language) says which."""
    lines = [_(Msg("dropout mask {when}: {expr} multiplies by {mask}  (0 drops an element; 1/(1 − {p}) = {scale} "
                   "keeps it, scaled)", when=_(when), expr=escape(m.expr), mask=fmt_value(m.mask), p=number(m.p),
                   scale=number(1 / (1 - m.p)) if m.p < 1 else "inf"))
             for m in masks]
    return Text("\n".join(lines), style="magenta")


def _hyper(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    return ",".join(map(number, v)) if isinstance(v, (tuple, list)) else fmt_value(v)


def _header(report: Report) -> Text:
    info = report.training
    assert info is not None and report.steps is not None
    hp = ", ".join(f"{k} {_hyper(v)}" for k, v in info.hyperparameters.items())
    n = len(report.steps)
    title = Msg("training: {n} {optimizer} step ({hyperparameters})", n=n, optimizer=info.optimizer,
                hyperparameters=hp) if n == 1 else \
        Msg("training: {n} {optimizer} steps ({hyperparameters})", n=n, optimizer=info.optimizer, hyperparameters=hp)
    text = Text(_(title), style="bold")
    loop = Msg("each step: zero_grad(), forward, backward(), optimizer.step()") if info.zero_grad else \
        Msg("each step: forward, backward(), optimizer.step()")
    text.append("\n  " + _(loop))
    if not info.zero_grad:
        text.append("   " + _("(no zero_grad(): .grad accumulates)"), style="bold yellow")
    if info.schedule:
        s = info.schedule
        args = ",".join(f"{k}={v}" for k, v in s["params"].items())
        text.append(_(Msg(", then scheduler.step() — {name}:{args}: {formula} after t scheduler steps", name=s["name"],
                          args=args, formula=s["formula"])))
    return text


def _param_text(name: str, p: dict[str, Any]) -> Text:
    text = Text(f"  {name}", style="bold")
    text.append(f"  .grad = {fmt_value(p['grad'])}")
    sym = p["symbolic"]
    if sym is not None:
        text.append(f"   SymPy ∂loss/∂{name} = {fmt_value(sym['value'])} ")
        text.append_text(mark(sym["agree"]))
    if p.get("accumulated"):
        text.append("\n    ⚠ " + _(Msg("accumulated: this step's gradient {grad} + {carried} left in .grad by earlier "
                                       "steps", grad=fmt_value(p["step_grad"]), carried=fmt_value(p["carried"]))),
                    style="yellow")
    for line in p["formula"]["lines"]:
        text.append(f"\n    {_(line)}")
    text.append(f"\n    torch.optim: {name} → {fmt_value(p['after'])} ")
    text.append_text(mark(p["formula"]["agree"]))
    z = p.get("zeroed")
    if z is not None and (p["accumulated"] or fmt_value(z["after"]) != fmt_value(p["after"])):
        text.append("\n    " + _(Msg("with zero_grad(): .grad = {grad}, {name} → {after}", grad=fmt_value(z["grad"]),
                                         name=name, after=fmt_value(z["after"]))), style="dim")
    return text


def _step_panel(entry: dict[str, Any]) -> Panel:
    parts: list[Any] = []
    if entry.get("dropout"):
        parts.append(Prose(dropout_text(entry["dropout"], N_("this step"))))
    parts += [Prose(_param_text(n, p)) for n, p in entry["params"].items()]
    title = _(Msg("step {step} · lr {lr} · loss {loss}", step=entry["step"], lr=fmt_value(entry["lr"]),
                  loss=fmt_value(entry["loss"])))
    return Panel(Group(*parts), title=title, title_align="left", border_style="green" if entry["agree"] else "red")


def _table(steps: list[dict[str, Any]]) -> Table:
    table = Table(title=_("all steps (values after each step)"), box=box.SIMPLE_HEAD, title_justify="left",
                  show_edge=False)
    names = list(steps[0]["params"])
    for col in [_(N_("step")), "lr", "loss", *names, _(N_("agree"))]:
        table.add_column(col, overflow="fold")
    shown = steps if len(steps) <= 2 * TABLE_ENDS else steps[:TABLE_ENDS] + [None] + steps[-TABLE_ENDS:]
    for s in shown:
        if s is None:
            table.add_row("…", *[""] * (len(names) + 3))
            continue
        table.add_row(str(s["step"]), escape(fmt_value(s["lr"])), escape(fmt_value(s["loss"])),
                      *(escape(fmt_value(s["params"][n]["after"], 6)) for n in names), mark(s["agree"]))
    return table


def _trend(label: str, values: list[float]) -> Text:
    text = Text(f"{label:<5}")
    text.append(sparkline(values), style="cyan")
    text.append(f"  {number(values[0])} → {number(values[-1])}")
    return text


def train_section(report: Report) -> list[Any]:
    """Training steps when ``--step`` was given; else the dropout masks of the one forward pass."""
    steps = report.steps
    if not steps:
        return [Prose(dropout_text(report.dropout, N_("(from --seed)")))] if report.dropout else []
    items: list[Any] = [Prose(_header(report))]
    items += [_step_panel(s) for s in steps[:DETAIL_STEPS]]
    if len(steps) > TABLE_AFTER:
        items.append(Text(_(Msg("… steps {first}–{last} in the table below (--json has every step in full)",
                                first=DETAIL_STEPS + 1, last=len(steps))), style="dim"))
        items.append(_table(steps))
        items.append(_trend("loss", [float(s["loss"]) for s in steps]))
        items.append(_trend("lr", [float(s["lr"]) for s in steps]))
    return items
