"""The terminal view (rich): inputs, forward steps, the backward pass (render/backward.py: a tree
with the gradient flowing through each node, the leaves, the Jacobian behind a vJp), and the
torch | SymPy comparison per input.

Big tensors are summarised (shape, a few entries, min/max/mean), never printed whole.
Colour is off when stdout is not a terminal or ``NO_COLOR`` is set (rich does both).
"""
from __future__ import annotations

from typing import Any, Callable

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..format import fmt_value, number
from ..i18n import N_, Msg, _
from ..report import Report, exact_text, has_fraction
from .backward import concepts_section, graph_tree, jacobian_section, leaves_section
from .hessian_text import hessian_section
from .style import Prose, joined, make_console, mark
from .train_text import train_section


ANSWER_FORMULA_MAX = 60  # a longer formula is not repeated in the answer line: the program below holds it
ANSWER_WIDTH = 72  # torch value and formula on one line up to this; else the formula goes on the next


def formula_of(sym: Any) -> str | None:
    """The formula an answer line shows: the inline expression when short, else a pointer to the program."""
    if sym is None:
        return None
    if sym.expr and len(sym.expr) <= ANSWER_FORMULA_MAX:
        return sym.expr
    if sym.program:
        return _("(see its program below)")
    return sym.expr


def matrix_text(t: Any) -> str:
    """A tensor as a 2-D matrix (rows: output entries, columns: input entries), for ``vᵀ·J``."""
    rows = t.double().reshape(t.shape[0] if t.dim() else 1, -1) if t.dim() != 1 else t.double().reshape(-1, 1)
    return fmt_value(rows, limit=64)


def answer_lines(report: Report) -> list[Text]:
    """The answer first: ``x.grad = [4, 8, 12]  =  4*x  ✓`` per input (torch, SymPy's formula, verdict),
    ``a.grad = vᵀ·J = [[1, 2]] · J = [[12, 194]]`` behind a vector-Jacobian product, or the Jacobian
    when the output is not a scalar and no --grad-output was given."""
    lines: list[Text] = []
    for name, g in report.grads.items():
        line = Text(f"{name}.grad = ", style="bold")
        jac = report.jacobian.get(name) if report.jacobian else None
        if report.grad_output is not None and jac is not None and jac.torch is not None and \
                jac.torch.numel() <= 64:
            v = report.grad_output.double().reshape(1, -1)
            j = jac.torch.double().reshape(v.shape[1], -1)
            line.append(f"vᵀ·J = {fmt_value(v)} · {fmt_value(j, limit=64)} = ")
        line.append(fmt_value(g.torch) if g.torch is not None else _("None (no path to the output)"))
        formula = formula_of(g.symbolic)
        if formula:
            joint = "\n    =  " if line.cell_len + cell_len(formula) > ANSWER_WIDTH else "  =  "
            line.append(f"{joint}{formula}", style="cyan")
        line.append("  ").append_text(mark(g.agree))
        lines.append(line)
    if not report.grads and report.jacobian:
        for name, j in report.jacobian.items():
            line = Text(f"J = d{report.output.name}/d{name} = ", style="bold")
            line.append(fmt_value(j.torch, limit=64) if j.torch is not None else "—")
            line.append("  ").append_text(mark(j.agree))
            lines.append(line)
    return lines


def answer_block(report: Report) -> list[Any]:
    """The answer lines, then the layout convention, said once."""
    lines: list[Any] = answer_lines(report)
    if lines:
        shapes = joined(_(Msg("{name}.grad is {shape} like {name}", name=n, shape=str(report.inputs[n].shape)))
                        for n in report.grads if n in report.inputs)
        layout = Msg("(a gradient has the shape of its input: {shapes})", shapes=shapes) if shapes else \
            Msg("(a gradient has the shape of its input)")
        lines.append(Prose(_(layout), style="dim"))
    return lines


def program_section(report: Report) -> list[Any] | None:
    """Each gradient whose one expression is long (or left out) as numbered let-bindings in the user's
    names; a binding already printed for an earlier input is referred to, not repeated."""
    parts: list[Any] = []
    shown: dict[str, int] = {}  # binding line -> its number
    for name, g in report.grads.items():
        sym = g.symbolic
        if sym is None or not sym.program or (sym.expr and len(sym.expr) <= ANSWER_FORMULA_MAX):
            continue
        lines = sym.program.split("; ")
        if len(lines) < 2:
            continue
        if not parts:
            parts.append(Prose(_(Msg("the gradients as programs in your names (g_NAME = the gradient of {output} at "
                                    "NAME; each program reads back with `eval`)", output=report.output.name)),
                              style="bold"))
        reused = [shown[line] for line in lines[:-1] if line in shown]
        head = f"∂{report.output.name}/∂{name}" + (_(Msg(" (uses lines {first}–{last} above)", first=min(reused),
                                                         last=max(reused))) if reused else "")
        parts.append(Text(head, style="bold"))
        for line in lines[:-1]:
            if line not in shown:
                shown[line] = len(shown) + 1
                parts.append(Text(f"  {shown[line]:>3}  {line}"))
        parts.append(Text(f"       ∂/∂{name} = {lines[-1]}", style="cyan"))
    return parts or None


def inputs_table(report: Report, title: str = N_("inputs"), constant: str = N_("no (--const)")) -> Table:
    """The inputs (eval) or the leaves and constants a script's backward() saw (run: ``constant`` says why);
    ``title`` and ``constant`` are English texts, said here in the reader's language."""
    table = Table(title=_(title), box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    for col in (N_("name"), N_("shape"), N_("value"), "requires_grad"):
        table.add_column(_(col))
    for name, info in report.inputs.items():
        table.add_row(name, str(info.shape), escape(fmt_value(info.value)), _("yes") if info.requires_grad else _(constant))
    return table


def forward_table(report: Report) -> Table:
    table = Table(title=_("forward"), box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    for col in (N_("step"), N_("shape"), N_("value"), "grad_fn", N_("grad (retain_grad)")):
        table.add_column(_(col), overflow="fold")
    for f in report.forward:
        label = f.expr if f.expr.startswith(f"{f.name} ") or f.expr.startswith(f"{f.name}[") else f"{f.name} = {f.expr}"
        table.add_row(escape(label), str(f.shape), escape(fmt_value(f.value)), f.grad_fn or "—", escape(fmt_value(f.grad)))
    return table


def grads_table(report: Report) -> Table:
    table = Table(title=_("gradients"), box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    for col in (N_("input"), "torch (.grad)", N_("symbolic formula"), N_("its value"), N_("finite diff."), N_("agree")):
        table.add_column(_(col), overflow="fold")
    for name, g in report.grads.items():
        sym = g.symbolic
        formula = formula_of(sym) or _(g.reason or (sym.note if sym else "—"))
        value = escape(fmt_value(sym.value)) if sym else "—"
        if sym and sym.exact is not None and has_fraction(sym.exact):
            value += _(Msg("  (exact {value})", value=exact_text(sym.exact)))
        table.add_row(name, escape(fmt_value(g.torch)) if g.torch is not None else "None", escape(formula or "—"), value,
                      numeric_cell(g), mark(g.agree))
    return table


def numeric_cell(g: Any) -> Text:
    """The finite-difference estimate (directional ones next to grad·u), ✗ when it disagrees with torch."""
    numeric = g.numeric
    if numeric is None:
        return Text("—")
    if isinstance(numeric, dict):
        pairs = zip(numeric.get("estimates", []), numeric.get("grad_dot_u", []))
        text = Text(_(Msg("directional (estimate vs grad·u): {pairs}",
                          pairs=", ".join(f"{number(e)} vs {number(p)}" for e, p in pairs))))
    else:
        text = Text(fmt_value(numeric))
    if g.numeric_agree is False:
        text.append(_("  ✗ disagrees"), style="bold red")
    return text


def verdict(report: Report) -> Text:
    if report.agree is None:
        return Text(_("torch computed; symbolic check unavailable (see notes)"), style="yellow")
    if report.agree:
        return Text(_("✓ torch and SymPy agree"), style="bold green")
    return Text(_("✗ torch and SymPy disagree"), style="bold red")


def header(report: Report) -> list[Any]:
    items: list[Any] = [Text(f"gradexplain  {report.expr}", style="bold"), inputs_table(report), forward_table(report),
                        output_line(report)]
    if report.grad_output is not None:
        items.append(Text(f"backward(gradient={fmt_value(report.grad_output)})"))
    return items


def output_line(report: Report) -> Text:
    out = report.output
    return Text(_(Msg("output {name}: shape {shape}, value {value}, grad_fn {grad_fn}", name=out.name,
                      shape=str(out.shape), value=fmt_value(out.value), grad_fn=out.grad_fn or "—")))


def expectations(report: Report) -> list[Any]:
    """One line per --expect: ✓ held (or proved), ? held numerically but not proved, ✗ failed."""
    def line(e: Any) -> Prose:
        message = _(e.message)
        if not e.passed:
            return Prose("✗ " + message, style="red")
        return Prose("? " + message, style="yellow") if e.outcome == "unproved" else Prose("✓ " + message, style="green")

    return [line(e) for e in report.expect]


def notes_panel(report: Report) -> Panel | None:
    notes = [_(n) for n in report.notes] + [_(Msg("{name}: {note}", name=n, note=g.note)) for n, g in report.grads.items()
                                            if g.note]
    if not notes:
        return None
    return Panel(Prose("\n".join(f"• {n}" for n in notes)), title=_("notes"), title_align="left", border_style="dim")


def sections() -> list[Callable[[Report], Any]]:
    """The report's parts in order; each returns a renderable, a list of them, or None (left out).

    A new part (training steps, Hessians) is one more function in this list."""
    return [answer_block, header, graph_tree, leaves_section, lambda r: grads_table(r) if r.grads else None,
            program_section, jacobian_section, concepts_section, train_section, hessian_section, expectations, notes_panel, verdict]


def report_renderables(report: Report, chosen: list[Callable[[Report], Any]] | None = None) -> list[Any]:
    """The renderables of the given sections (default: all), each section giving one, several or none."""
    items: list[Any] = []
    for section in sections() if chosen is None else chosen:
        part = section(report)
        if isinstance(part, list):
            items.extend(part)
        elif part is not None:
            items.append(part)
    return items


def print_report(report: Report, console: Console | None = None, brief: bool = False) -> None:
    """The whole explanation, the answer first; ``brief``: only the answer lines (``--brief``)."""
    console = console or make_console()
    items = answer_lines(report) + expectations(report) if brief else report_renderables(report)
    if brief and not items:
        items = [Text(f"{report.output.name} = {fmt_value(report.output.value)}")]
    for item in items:
        console.print(item)
