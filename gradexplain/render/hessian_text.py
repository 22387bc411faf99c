"""The terminal view of second derivatives (``eval --hessian``, ``--hvp``)."""
from __future__ import annotations

import math
from typing import Any

from rich import box
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..format import fmt_value, number
from ..report import Report
from .style import mark


def hessian_section(report: Report) -> Group | None:
    """``--hessian`` / ``--hvp``: each block as a matrix beside SymPy's formula, symmetry and eigenvalues
    (convex here or not), and how torch got it: the gradient's own grad_fn graph, differentiated again."""
    blocks, hvp, info = report.hessian, report.hvp, report.hessian_info
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
