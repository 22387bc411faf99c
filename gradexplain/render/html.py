"""A Report as one self-contained HTML fragment (Jupyter's ``_repr_html_``).

Tables for the inputs, forward steps and gradients, the formula per input, and the backward
graph as inline SVG when Graphviz's ``dot`` is installed (else the graph as a nested list).
No scripts, no external files: it shows the same in a notebook, a saved page or an e-mail.
"""
from __future__ import annotations

import shutil
import html
from typing import Any

from ..i18n import N_, Msg, _
from ..report import Report
from .text import fmt_value
from .dot import to_svg

STYLE = """<style>
.gx{font-family:system-ui,sans-serif;font-size:14px;line-height:1.4}
.gx table{border-collapse:collapse;margin:.4em 0 .8em}
.gx th,.gx td{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}
.gx th{background:#f3f3f3}.gx code{font-family:ui-monospace,monospace}
.gx .ok{color:#16a34a;font-weight:bold}.gx .bad{color:#dc2626;font-weight:bold}.gx .na{color:#ca8a04}
.gx .answer{font-family:ui-monospace,monospace;font-size:15px}
.gx details{margin:.4em 0}
</style>"""


def _e(v: Any) -> str:
    return html.escape(str(v))


def _mark(ok: bool | None) -> str:
    if ok is None:
        return '<span class="na">–</span>'
    return '<span class="ok">✓</span>' if ok else '<span class="bad">✗</span>'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """``headers`` are English texts, said here in the reader's language; ``rows`` are HTML already."""
    head = "".join(f"<th>{_e(_(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def answer(report: Report) -> str:
    lines = []
    for name, g in report.grads.items():
        formula = g.symbolic.expr if g.symbolic is not None and g.symbolic.expr else None
        text = f"{_e(name)}.grad = {_e(fmt_value(g.torch) if g.torch is not None else 'None')}"
        if formula:
            text += f" &nbsp;=&nbsp; <code>{_e(formula)}</code>"
        lines.append(f'<div class="answer">{text} {_mark(g.agree)}</div>')
    return "".join(lines)


def _graph(report: Report) -> str:
    """Inline SVG from Graphviz when it is installed; else the nodes as a nested list."""
    if report.graph and shutil.which("dot"):
        try:
            svg = to_svg(report)
            return svg[svg.index("<svg"):] if "<svg" in svg else ""
        except Exception:  # noqa: BLE001 - the picture is an extra; the tables carry the numbers
            pass
    by_id = {g.id: g for g in report.graph}
    shown: set[int] = set()

    def item(i: int) -> str:
        g = by_id[i]
        label = f"{_e(g.node)}" + (f" [{_e(g.label)}]" if g.label else "") + \
            (f" g = {_e(fmt_value(g.grad_output))}" if g.grad_output is not None else "")
        if i in shown:
            return f"<li>{label} {_e(_('(above)'))}</li>"
        shown.add(i)
        kids = "".join(item(n) for n in g.next if n is not None)
        return f"<li>{label}" + (f"<ul>{kids}</ul>" if kids else "") + "</li>"

    return f"<ul>{item(report.graph[0].id)}</ul>" if report.graph else ""


def render(report: Report) -> str:
    parts = [STYLE, '<div class="gx">', f"<h3>gradexplain <code>{_e(report.expr)}</code></h3>"]
    call = report.call
    if call is not None:
        parts.append(f"<p>{_e(_(Msg('backward() #{n} at line {line}:', n=call.index + 1, line=call.line)))} "
                     f"<code>{_e(call.code)}</code></p>")
    parts.append(answer(report))
    parts.append(_heading(N_("inputs")) + _table([N_("name"), N_("shape"), N_("value"), "requires_grad"], [
        [f"<code>{_e(n)}</code>", _e(i.shape), _e(fmt_value(i.value)), _e(_("yes") if i.requires_grad else _("no"))]
        for n, i in report.inputs.items()]))
    parts.append(_heading(N_("forward")) + _table([N_("line"), N_("step"), N_("shape"), N_("value"), "grad_fn", "grad"], [
        [_e((getattr(f, "source", None) or {}).get("line", "")), f"<code>{_e(f.name)} = {_e(f.expr)}</code>",
         _e(f.shape), _e(fmt_value(f.value)), _e(f.grad_fn or "—"), _e(fmt_value(f.grad))] for f in report.forward]))
    if report.grads:
        parts.append(_heading(N_("gradients")) + _table([N_("input"), "torch (.grad)", N_("symbolic formula"),
                                                         N_("its value"), N_("agree")], [
            [f"<code>{_e(n)}</code>", _e(fmt_value(g.torch) if g.torch is not None else "None"),
             f"<code>{_e(g.symbolic.expr)}</code>" if g.symbolic and g.symbolic.expr else _e(_(g.reason or "—")),
             _e(fmt_value(g.symbolic.value)) if g.symbolic else "—", _mark(g.agree)] for n, g in report.grads.items()]))
    if report.jacobian:
        parts.append(_heading(N_("Jacobian")) + _table([N_("input"), "torch", N_("symbolic"), N_("agree")], [
            [f"<code>{_e(n)}</code>", _e(fmt_value(j.torch)), f"<code>{_e(j.symbolic.expr)}</code>" if j.symbolic else "—",
             _mark(j.agree)] for n, j in report.jacobian.items()]))
    graph = _graph(report)
    if graph:
        parts.append(f"<details open><summary>{_e(_('backward graph'))}</summary>{graph}</details>")
    if report.notes:
        parts.append(_heading(N_("notes")) + "<ul>" + "".join(f"<li>{_e(_(n))}</li>" for n in report.notes) + "</ul>")
    verdict = {True: N_("torch and SymPy agree"), False: N_("torch and SymPy disagree"),
               None: N_("torch computed; symbolic check unavailable")}[report.agree]
    parts.append(f"<p>{_mark(report.agree)} {_e(_(verdict))}</p></div>")
    return "".join(parts)


def _heading(title: str) -> str:
    return f"<h4>{_e(_(title))}</h4>"
