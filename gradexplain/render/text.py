"""The terminal view (rich): inputs, forward steps, the backward pass (render/backward.py: a tree
with the gradient flowing through each node, the leaves, the Jacobian behind a vJp), and the
torch | SymPy comparison per input.

Big tensors are summarised (shape, a few entries, min/max/mean), never printed whole.
Colour is off when stdout is not a terminal or ``NO_COLOR`` is set (rich does both).
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..report import GraphEntry, Report, exact_text, has_fraction

SHOW_MAX = 24  # elements printed in full; more are summarised


def number(v: float) -> str:
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    if float(v).is_integer() and abs(v) < 1e12:
        return str(int(v))
    return f"{v:.6g}"


def fmt_value(v: Any, limit: int = SHOW_MAX) -> str:
    """A tensor (or number) as short text: [4, 8, 12], or a summary for big ones."""
    import torch

    if v is None:
        return "—"
    if not isinstance(v, torch.Tensor):
        return number(float(v)) if isinstance(v, (int, float)) else str(v)
    t = v.detach()
    if t.dtype == torch.bool:
        t = t.to(torch.int64)
    if t.numel() <= limit:
        def nest(x: Any) -> str:
            return "[" + ", ".join(nest(i) for i in x) + "]" if isinstance(x, list) else number(float(x))

        return nest(t.double().tolist())
    flat = t.double().reshape(-1)
    head = ", ".join(number(float(x)) for x in flat[:4])
    return (f"shape {list(t.shape)}: [{head}, …] min {number(float(flat.min()))} max {number(float(flat.max()))} "
            f"mean {number(float(flat.mean()))}")


def mark(ok: bool | None) -> Text:
    if ok is None:
        return Text("–", style="yellow")
    return Text("✓", style="bold green") if ok else Text("✗", style="bold red")


class PipeConsole(Console):
    """rich exits 1 (the "disagree" code) when the reader closes stdout; raise instead, so the
    CLI ends quietly with its own closed-pipe status."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def make_console(record: bool = False) -> Console:
    return PipeConsole(highlight=False, record=record, soft_wrap=False)


def inputs_table(report: Report) -> Table:
    table = Table(title="inputs", box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    for col in ("name", "shape", "value", "requires_grad"):
        table.add_column(col)
    for name, info in report.inputs.items():
        table.add_row(name, str(info.shape), fmt_value(info.value), "yes" if info.requires_grad else "no (--const)")
    return table


def forward_table(report: Report) -> Table:
    table = Table(title="forward", box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    for col in ("step", "shape", "value", "grad_fn", "grad (retain_grad)"):
        table.add_column(col, overflow="fold")
    for f in report.forward:
        label = f.expr if f.expr.startswith(f"{f.name} ") or f.expr.startswith(f"{f.name}[") else f"{f.name} = {f.expr}"
        table.add_row(escape(label), str(f.shape), fmt_value(f.value), f.grad_fn or "—", fmt_value(f.grad))
    return table


def grads_table(report: Report) -> Table:
    table = Table(title="gradients", box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    for col in ("input", "torch (.grad)", "symbolic formula", "its value", "finite diff.", "agree"):
        table.add_column(col, overflow="fold")
    for name, g in report.grads.items():
        sym = g.symbolic
        formula = sym.expr if sym and sym.expr else (g.reason or (sym.note if sym else "—"))
        value = fmt_value(sym.value) if sym else "—"
        if sym and sym.exact is not None and has_fraction(sym.exact):
            value += f"  (exact {exact_text(sym.exact)})"
        table.add_row(name, fmt_value(g.torch) if g.torch is not None else "None", escape(formula or "—"), value,
                      numeric_cell(g), mark(g.agree))
    return table


def numeric_cell(g: Any) -> Text:
    """The finite-difference estimate (directional ones next to grad·u), ✗ when it disagrees with torch."""
    numeric = g.numeric
    if numeric is None:
        return Text("—")
    if isinstance(numeric, dict):
        pairs = zip(numeric.get("estimates", []), numeric.get("grad_dot_u", []))
        text = Text("directional (estimate vs grad·u): " + ", ".join(f"{number(e)} vs {number(p)}" for e, p in pairs))
    else:
        text = Text(fmt_value(numeric))
    if g.numeric_agree is False:
        text.append("  ✗ disagrees", style="bold red")
    return text


def verdict(report: Report) -> Text:
    if report.agree is None:
        return Text("torch computed; symbolic check unavailable (see notes)", style="yellow")
    if report.agree:
        return Text("✓ torch and SymPy agree", style="bold green")
    return Text("✗ torch and SymPy disagree", style="bold red")


def header(report: Report) -> list[Any]:
    out = report.output
    items: list[Any] = [Text(f"gradexplain  {report.expr}", style="bold"), inputs_table(report), forward_table(report),
                        Text(f"output {out.name}: shape {out.shape}, value {fmt_value(out.value)}, "
                             f"grad_fn {out.grad_fn or '—'}")]
    if report.grad_output is not None:
        items.append(Text(f"backward(gradient={fmt_value(report.grad_output)})"))
    return items


def expectations(report: Report) -> list[Any]:
    """One line per --expect: ✓ held (or proved), ? held numerically but not proved, ✗ failed."""
    def line(e: Any) -> Text:
        if not e.passed:
            return Text("✗ " + e.message, style="red")
        return Text("? " + e.message, style="yellow") if e.outcome == "unproved" else Text("✓ " + e.message, style="green")

    return [line(e) for e in report.expect]


def notes_panel(report: Report) -> Panel | None:
    notes = list(report.notes) + [f"{n}: {g.note}" for n, g in report.grads.items() if g.note]
    if not notes:
        return None
    return Panel("\n".join(f"• {escape(n)}" for n in notes), title="notes", title_align="left", border_style="dim")


def hessian_section(report: Report) -> Group | None:
    """``--hessian`` / ``--hvp``: each block as a matrix beside SymPy's formula, symmetry and eigenvalues
    (convex here or not), and how torch got it: the gradient's own grad_fn graph, differentiated again."""
    blocks, hvp, info = report.extra.get("hessian"), report.extra.get("hvp"), report.extra.get("hessian_info")
    if not blocks and not hvp:
        return None
    parts: list[Any] = [Text(f"second derivatives of {report.output.name}", style="bold")]

    def matrix(t: Any, rows: int, indent: str = "    ", most: int = 8) -> str:  # over the flattened inputs
        if t.dim() == 0 or rows > most or t.numel() > rows * most:
            return indent + fmt_value(t)
        cells = [[number(float(x)) for x in row] for row in t.double().reshape(rows, -1).tolist()]
        width = max(len(c) for row in cells for c in row)
        return "\n".join(indent + "[ " + "  ".join(c.rjust(width) for c in row) + " ]" for row in cells)

    def formula(text: str, most: int = 400) -> str:
        return text if len(text) <= most else text[:most] + f" … ({len(text):,} characters; all of it in --json)"

    for a, row in (blocks or {}).items():
        for b, h in row.items():
            rows = math.prod(report.inputs[a].shape)
            text = Text(f"H[{a}, {b}] = ∂²{report.output.name}/∂{a}∂{b}, shape {list(h.torch.shape)}  ")
            text.append_text(mark(h.agree))
            sym = h.symbolic
            lines = ["", matrix(h.torch, rows), f"  SymPy: {formula(sym.expr)}" if sym else f"  {h.reason}"]
            if sym is not None and not h.agree:
                lines += ["  its value:", matrix(sym.value, rows)]
            if h.numeric is not None:
                lines.append(f"  finite differences of torch's gradient: within {h.numeric_max_abs_diff:.2g}")
            if h.symmetric is not None:
                lines.append("  symmetric" + (" ✓" if h.symmetric else ": NO ✗") + (
                    "; eigenvalues " + ", ".join(number(e) for e in h.eigenvalues) if h.eigenvalues else ""))
            text.append("\n".join(lines))
            parts.append(text)
    if info is not None:
        if info.definiteness and len(info.order) > 1:
            parts.append(Text(f"whole Hessian (inputs {', '.join(info.order)}, flattened):\n"
                              f"{matrix(info.matrix, len(info.matrix), most=6)}\n"
                              f"eigenvalues {', '.join(number(e) for e in info.eigenvalues)}: {info.definiteness}"))
        elif info.definiteness:
            parts.append(Text(f"at this point the Hessian is {info.definiteness}"))
        parts.append(Text("how PyTorch computed it: g = torch.autograd.grad(out, inputs, create_graph=True) records "
                          "the backward pass itself as a graph, so each gradient has a grad_fn of its own; each row "
                          "i of H[a, ·] is then torch.autograd.grad(g_a, inputs, grad_outputs=e_i), a backward pass "
                          "through that second graph (all rows at once with is_grads_batched=True):"))
        for a, nodes in info.grad_graphs.items():
            tree = Tree(Text(f"g_{a} = {a}.grad with create_graph=True", style="bold"))
            by_id, shown = {n["id"]: n for n in nodes}, set()

            def grow(parent: Tree, node: dict[str, Any]) -> None:
                label = node["node"] + (f" → {node['variable']}" if node["variable"] else "")
                if node["id"] in shown or len(shown) >= 40:
                    parent.add(Text(f"{label} (shown above)" if node["id"] in shown else "…", style="dim"))
                    return
                shown.add(node["id"])
                branch = parent.add(Text(label, style="magenta" if node["variable"] else "cyan"))
                for nxt in node["next"]:
                    if nxt is not None:
                        grow(branch, by_id[nxt])

            if nodes:
                grow(tree, nodes[0])
            else:
                tree.add(Text("no grad_fn: the gradient is a constant, so its derivatives are 0", style="dim"))
            parts.append(tree)
    if hvp:
        table = Table(title="Hessian-vector products H·v = torch.autograd.grad(g·v, inputs), no matrix built",
                      box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
        for col in ("input", "v", "torch", "symbolic formula", "its value", "finite diff.", "agree"):
            table.add_column(col, overflow="fold")
        for b, e in hvp.items():
            sym = e.symbolic
            table.add_row(b, fmt_value(e.direction), fmt_value(e.torch),
                          escape(formula(sym.expr) if sym and sym.expr else (e.reason or "—")),
                          fmt_value(sym.value) if sym else "—", fmt_value(e.numeric), mark(e.agree))
        parts.append(table)
    return Group(*parts)


def sections() -> list[Callable[[Report], Any]]:
    """The report's parts in order; each returns a renderable, a list of them, or None (left out).

    A new part (training steps, Hessians) is one more function in this list."""
    from .backward import concepts_section, graph_tree, jacobian_section, leaves_section
    from .train_text import train_section

    return [header, graph_tree, leaves_section, lambda r: grads_table(r) if r.grads else None, jacobian_section,
            concepts_section, train_section, hessian_section, expectations, notes_panel, verdict]


def report_renderables(report: Report) -> list[Any]:
    items: list[Any] = []
    for section in sections():
        part = section(report)
        if isinstance(part, list):
            items.extend(part)
        elif part is not None:
            items.append(part)
    return items


def print_report(report: Report, console: Console | None = None) -> None:
    console = console or make_console()
    for item in report_renderables(report):
        console.print(item)


def print_ops(as_json: bool) -> None:
    from ..ops import REGISTRY, REQUIRED

    rows = []
    for name, spec in sorted(REGISTRY.items()):
        if not spec.user:
            continue
        args = list(spec.tensor_args) if not spec.variadic else ["tensors"]
        params = [n if d is REQUIRED else f"{n}={d!r}" for n, d in spec.params
                  if n not in spec.hidden_params and n != "seed"]
        signature = f"{name}({', '.join(args + params)})"
        rules = {a: spec.shown_rule(a) for a in (args if not spec.variadic else ["t_i"])}
        rows.append({"name": name, "signature": signature, "doc": spec.doc,
                     "rules": {k: v for k, v in rules.items() if v}})
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title="gradexplain ops — each rule is the vector-Jacobian product in EXPR (g: incoming gradient)",
                  box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("op", style="bold")
    table.add_column("what it does")
    table.add_column("backward rule per argument")
    for r in rows:
        rules = "\n".join(f"{k}: {v}" for k, v in r["rules"].items()) or "(no gradient)"
        table.add_row(escape(r["signature"]), escape(r["doc"]), escape(rules))
    make_console().print(table)
