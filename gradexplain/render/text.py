"""The terminal view (rich): inputs, forward steps, the backward graph as a tree with the
gradient flowing through each node, and the torch | SymPy comparison per input.

Big tensors are summarised (shape, a few entries, min/max/mean), never printed whole.
Colour is off when stdout is not a terminal or ``NO_COLOR`` is set (rich does both).
"""
from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..report import GraphEntry, Report

SHOW_MAX = 24  # elements printed in full; more are summarised
TREE_MAX = 60  # graph nodes drawn; more are cut with a note


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


def make_console(record: bool = False) -> Console:
    return Console(highlight=False, record=record, soft_wrap=False)


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


def graph_tree(report: Report) -> Tree | None:
    """The grad_fn graph from the output down to each AccumulateGrad, with the flow through it."""
    if not report.graph:
        return None
    by_id = {g.id: g for g in report.graph}
    root = Tree(Text("backward graph (output.grad_fn → leaves)", style="bold"))
    drawn: set[int] = set()
    count = 0

    def describe(g: GraphEntry) -> Text:
        text = Text()
        text.append(g.node, style="bold cyan" if g.node != "AccumulateGrad" else "bold magenta")
        if g.label:
            text.append(f"  {g.label}", style="italic")
        if g.node == "AccumulateGrad":
            text.append(f"  → {g.variable}.grad = {fmt_value(g.grad_output)}", style="green")
            arriving = [p for p in report.graph if g.id in p.next]
            parts = []
            for p in arriving:
                for edge, target in enumerate(p.next):
                    if target == g.id and edge < len(p.grad_inputs) and p.grad_inputs[edge] is not None:
                        parts.append(fmt_value(p.grad_inputs[edge]))
            if len(parts) > 1:
                text.append(f"  (sum of {len(parts)} contributions: {' + '.join(parts)})", style="yellow")
            return text
        if g.grad_output is not None:
            text.append(f"  receives {fmt_value(g.grad_output)}")
        if g.grad_inputs:
            sends = ", ".join(fmt_value(x) if x is not None else "∅" for x in g.grad_inputs)
            text.append(f"  sends [{sends}]")
        if g.rule:
            text.append(f"\n    rule: {g.rule}", style="dim")
        return text

    def add(parent: Tree, g: GraphEntry) -> None:
        nonlocal count
        if count >= TREE_MAX:
            return
        count += 1
        if g.id in drawn and g.node != "AccumulateGrad":
            parent.add(Text(f"{g.node} (#{g.id}, shown above)", style="dim"))
            return
        drawn.add(g.id)
        branch = parent.add(describe(g))
        for nxt in g.next:
            if nxt is not None:
                add(branch, by_id[nxt])

    add(root, report.graph[0])
    if count >= TREE_MAX:
        root.add(Text(f"… {len(report.graph)} nodes in all; the first {TREE_MAX} are drawn", style="dim"))
    return root


def grads_table(report: Report) -> Table:
    table = Table(title="gradients", box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    for col in ("input", "torch (.grad)", "symbolic formula", "its value", "finite diff.", "agree"):
        table.add_column(col, overflow="fold")
    for name, g in report.grads.items():
        sym = g.symbolic
        formula = sym.expr if sym and sym.expr else (g.reason or (sym.note if sym else "—"))
        value = fmt_value(sym.value) if sym else "—"
        if sym and sym.exact is not None:
            value += f"  (exact {sym.exact})"
        numeric = g.numeric
        numeric_text = fmt_value(numeric) if not isinstance(numeric, dict) else \
            "directional: " + ", ".join(number(x) for x in numeric.get("estimates", []))
        table.add_row(name, fmt_value(g.torch) if g.torch is not None else "None", escape(formula or "—"), value,
                      numeric_text if numeric is not None else "—", mark(g.agree))
    return table


def jacobian_section(report: Report) -> Group | None:
    if not report.jacobian:
        return None
    parts: list[Any] = []
    for name, j in report.jacobian.items():
        table = Table(title=f"Jacobian d{report.output.name}/d{name}", box=box.SIMPLE_HEAD, title_justify="left",
                      show_edge=False)
        for col in ("torch", "symbolic", "agree"):
            table.add_column(col, overflow="fold")
        sym = j.symbolic
        table.add_row(fmt_value(j.torch, 64), escape(sym.expr) if sym and sym.expr else (j.reason or "—"), mark(j.agree))
        parts.append(table)
        if report.grad_output is not None and j.torch is not None and name in report.grads:
            parts.append(vjp_explanation(report, name, j.torch))
    return Group(*parts)


def vjp_explanation(report: Report, name: str, jac: Any) -> Text:
    """Spell out x.grad = vᵀ J: each entry as the sum of products."""
    import torch

    v = report.grad_output.double()
    out_n = v.numel()
    j = jac.double().reshape(out_n, -1)
    grad = (v.reshape(1, -1) @ j).reshape(-1)
    lines = [f"vector-Jacobian product: {name}.grad = vᵀ·J with v = {fmt_value(report.grad_output)}"]
    if j.shape[1] <= 8 and out_n <= 8:
        for col in range(j.shape[1]):
            terms = " + ".join(f"{number(float(v.reshape(-1)[r]))}·{number(float(j[r, col]))}" for r in range(out_n))
            lines.append(f"  entry {col}: {terms} = {number(float(grad[col]))}")
    lines.append(f"  = {fmt_value(grad.reshape(report.inputs[name].shape) if report.inputs[name].shape else grad[0])}")
    return Text("\n".join(lines))


def verdict(report: Report) -> Text:
    if report.agree is None:
        return Text("torch computed; symbolic check unavailable (see notes)", style="yellow")
    if report.agree:
        return Text("✓ torch and SymPy agree", style="bold green")
    return Text("✗ torch and SymPy disagree", style="bold red")


def report_renderables(report: Report) -> list[Any]:
    items: list[Any] = [Text(f"gradexplain  {report.expr}", style="bold"), inputs_table(report), forward_table(report)]
    out = report.output
    items.append(Text(f"output {out.name}: shape {out.shape}, value {fmt_value(out.value)}, grad_fn {out.grad_fn or '—'}"))
    if report.grad_output is not None:
        items.append(Text(f"backward(gradient={fmt_value(report.grad_output)})"))
    tree = graph_tree(report)
    if tree is not None:
        items.append(tree)
    if report.grads:
        items.append(grads_table(report))
    jac = jacobian_section(report)
    if jac is not None:
        items.append(jac)
    for e in report.expect:
        items.append(Text(("✓ " if e.passed else "✗ ") + e.message, style="green" if e.passed else "red"))
    notes = list(report.notes) + [f"{n}: {g.note}" for n, g in report.grads.items() if g.note]
    if notes:
        items.append(Panel("\n".join(f"• {escape(n)}" for n in notes), title="notes", title_align="left",
                           border_style="dim"))
    items.append(verdict(report))
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
