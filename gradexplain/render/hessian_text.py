"""The terminal view of second derivatives (``eval --hessian``, ``--hvp``).

Each block as a matrix beside SymPy's formula, with symmetry and eigenvalues (convex here or not);
the whole Hessian when there are several inputs; how torch got it (the gradient's own grad_fn
graph, differentiated again); and the Hessian-vector products.
"""
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
from ..i18n import N_, Msg, _
from ..report import HessianBlock, HessianInfo, HvpEntry, Report
from .style import Prose, mark

FORMULA_SHOWN = 400  # characters of a formula in the terminal; --json has all of it
TREE_NODES = 40  # nodes of a gradient's grad_fn graph drawn


def matrix(t: Any, rows: int, indent: str = "    ", most: int = 8) -> str:
    """A block over the flattened inputs as aligned rows, or its short text when too big."""
    if t.dim() == 0 or rows > most or t.numel() > rows * most or not t.numel():  # an empty block: []
        return indent + fmt_value(t)
    cells = [[number(float(x)) for x in row] for row in t.double().reshape(rows, -1).tolist()]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(indent + "[ " + "  ".join(c.rjust(width) for c in row) + " ]" for row in cells)


def formula(text: str, most: int = FORMULA_SHOWN) -> str:
    return text if len(text) <= most else text[:most] + " … " + _(Msg("({n} characters; all of it in --json)",
                                                                      n=f"{len(text):,}"))


def block_text(report: Report, a: str, b: str, h: HessianBlock) -> Text:
    """``H[a, b]``: torch's matrix, SymPy's formula (and value when they differ), finite differences, symmetry."""
    rows = math.prod(report.inputs[a].shape)
    text = Text(_(Msg("H[{a}, {b}] = ∂²{output}/∂{a}∂{b}, shape {shape}", a=a, b=b, output=report.output.name,
                      shape=str(list(h.torch.shape)))) + "  ")
    text.append_text(mark(h.agree))
    sym = h.symbolic
    lines = ["", matrix(h.torch, rows), f"  SymPy: {formula(sym.expr)}" if sym else f"  {_(h.reason)}"]
    if sym is not None and not h.agree:
        lines += ["  " + _("its value:"), matrix(sym.value, rows)]
    if h.numeric is not None:
        lines.append("  " + _(Msg("finite differences of torch's gradient: within {diff}",
                                  diff=f"{h.numeric_max_abs_diff:.2g}")))
    if h.symmetric is not None:
        symmetry = _("symmetric ✓") if h.symmetric else _("symmetric: NO ✗")
        eigen = _(Msg("; eigenvalues {values}", values=", ".join(number(e) for e in h.eigenvalues))) \
            if h.eigenvalues else ""
        lines.append(f"  {symmetry}{eigen}")
    text.append("\n".join(lines))
    return text


def whole_hessian(info: HessianInfo) -> list[Any]:
    """What the whole Hessian says about the point: definiteness (and the matrix, for several inputs)."""
    if info.definiteness and len(info.order) > 1:
        return [Text(_(Msg("whole Hessian (inputs {names}, flattened):", names=", ".join(info.order))) + "\n"
                     f"{matrix(info.matrix, len(info.matrix), most=6)}\n" +
                     _(Msg("eigenvalues {values}: {definiteness}", values=", ".join(number(e) for e in info.eigenvalues),
                           definiteness=_(info.definiteness))))]
    if info.definiteness:
        return [Text(_(Msg("at this point the Hessian is {definiteness}", definiteness=_(info.definiteness))))]
    return []


def how_torch_did_it(info: HessianInfo) -> list[Any]:
    """create_graph=True in words, then each gradient's own grad_fn graph as a tree."""
    parts: list[Any] = [Prose(_(
        "how PyTorch computed it: g = torch.autograd.grad(out, inputs, create_graph=True) records "
        "the backward pass itself as a graph, so each gradient has a grad_fn of its own; each row "
        "i of H[a, ·] is then torch.autograd.grad(g_a, inputs, grad_outputs=e_i), a backward pass "
        "through that second graph (all rows at once with is_grads_batched=True):"))]
    for a, nodes in info.grad_graphs.items():
        parts.append(grad_graph_tree(a, nodes))
    return parts


def grad_graph_tree(a: str, nodes: list[dict[str, Any]]) -> Tree:
    tree = Tree(Text(_(Msg("g_{name} = {name}.grad with create_graph=True", name=a)), style="bold"))
    by_id, shown = {n["id"]: n for n in nodes}, set()

    def grow(parent: Tree, node: dict[str, Any]) -> None:
        label = node["node"] + (f" → {node['variable']}" if node["variable"] else "")
        if node["id"] in shown or len(shown) >= TREE_NODES:
            parent.add(Text(_(Msg("{node} (shown above)", node=label)) if node["id"] in shown else "…", style="dim"))
            return
        shown.add(node["id"])
        branch = parent.add(Text(label, style="magenta" if node["variable"] else "cyan"))
        for nxt in node["next"]:
            if nxt is not None:
                grow(branch, by_id[nxt])

    if nodes:
        grow(tree, nodes[0])
    else:
        tree.add(Text(_("no grad_fn: the gradient is a constant, so its derivatives are 0"), style="dim"))
    return tree


def hvp_table(hvp: dict[str, HvpEntry]) -> Table:
    table = Table(title=_("Hessian-vector products H·v = torch.autograd.grad(g·v, inputs), no matrix built"),
                  box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    for col in (N_("input"), "v", "torch", N_("symbolic formula"), N_("its value"), N_("finite diff."), N_("agree")):
        table.add_column(_(col), overflow="fold")
    for b, e in hvp.items():
        sym = e.symbolic
        table.add_row(b, escape(fmt_value(e.direction)), escape(fmt_value(e.torch)),
                      escape(formula(sym.expr) if sym and sym.expr else _(e.reason or "—")),
                      escape(fmt_value(sym.value)) if sym else "—", escape(fmt_value(e.numeric)), mark(e.agree))
    return table


def hessian_section(report: Report) -> Group | None:
    """``--hessian`` / ``--hvp``: the blocks, the whole Hessian, how torch got it, the products."""
    if not report.hessian and not report.hvp:
        return None
    parts: list[Any] = [Text(_(Msg("second derivatives of {output}", output=report.output.name)), style="bold")]
    parts += [block_text(report, a, b, h) for a, row in (report.hessian or {}).items() for b, h in row.items()]
    if report.hessian_info is not None:
        parts += whole_hessian(report.hessian_info) + how_torch_did_it(report.hessian_info)
    if report.hvp:
        parts.append(hvp_table(report.hvp))
    return Group(*parts)
