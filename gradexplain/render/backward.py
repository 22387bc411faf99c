"""The backward pass told node by node, for the terminal (rich).

A tree from the output down to the leaves: at each node the gradient ``g`` arriving, and per
edge the registry's rule for that argument in the user's names (``g*x``) with the value it sent;
then where the gradients land (each ``AccumulateGrad`` once, its contributions and their sum),
what leaves and non-leaves are, and the vector-Jacobian product spelled out.
"""
from __future__ import annotations

import itertools
from typing import Any

from rich import box
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..errors import GradexplainError
from ..format import fmt_value, number
from ..formula import read_formula
from ..i18n import N_, Msg, _
from ..ir import Call
from ..printer import to_text
from ..report import GraphEntry, Report
from .style import Prose

TREE_MAX = 60  # graph nodes drawn; more are cut with a note
SAVED_SHOW = 8  # a saved tensor with more elements is summarised by its shape
JAC_CELLS = 64  # a Jacobian is drawn as a matrix up to this many entries


def contributions(report: Report, leaf: GraphEntry) -> list[tuple[GraphEntry, int, Any]]:
    """Every (node, edge, value) that sends a gradient into ``leaf``, in graph order."""
    found = []
    for g in report.graph:
        for e, target in enumerate(g.next):
            if target == leaf.id and e < len(g.grad_inputs) and g.grad_inputs[e] is not None:
                found.append((g, e, g.grad_inputs[e]))
    return found


def _edge(g: GraphEntry, e: int) -> Any:
    return g.edges[e] if e < len(g.edges) else None


ROLES = ("self", "other")  # derivatives.yaml's names for an op's first and second tensor argument


def user_names(report: Report) -> set[str]:
    return set(report.inputs) | {f.name for f in report.forward}


def operand_text(edge: Any, e: int, taken: set[str]) -> str:
    """The argument as the user wrote it (``a[0,0]**2``), with its role in the rule when the rule's own
    variable name could be mistaken for one of the user's names (``self``, ``other`` as derivatives.yaml)."""
    if edge.source == edge.arg and edge.arg not in taken:
        return edge.arg
    if edge.arg in taken or len(edge.arg) <= 2:
        role = ROLES[e] if e < len(ROLES) else _(Msg("argument {n}", n=e + 1))
    else:
        role = edge.arg  # descriptive already: base, value
    return _(Msg("{operand} (as {role})", operand=edge.source, role=role))


def edge_text(g: GraphEntry, e: int, taken: set[str] = frozenset()) -> Text:
    """``x (as self):  g*x = [2, 4, 6]`` — the argument, its rule, the value sent along edge ``e``."""
    edge = _edge(g, e)
    sent = g.grad_inputs[e] if e < len(g.grad_inputs) else None
    text = Text()
    if edge is None:
        text.append(_(Msg("sends {value}", value=fmt_value(sent))))
        return text
    text.append(operand_text(edge, e, taken), style="bold")
    if edge.rule:
        text.append(f":  {edge.rule}", style="cyan")
    if sent is not None:
        text.append(f"  = {fmt_value(sent)}" if edge.rule else "  " + _(Msg("sends {value}", value=fmt_value(sent))))
    if not edge.direct:
        text.append(_("  (through a step PyTorch made inside this op)"), style="dim")
    return text


def node_names(report: Report) -> dict[int, str]:
    """``SelectBackward0 [a[0,0]]``, with ``#1``, ``#2`` where several nodes would read the same."""
    plain = {g.id: f"{g.node} [{g.label}]" if g.label and g.node != "AccumulateGrad" else g.node for g in report.graph}
    counts: dict[str, int] = {}
    for name in plain.values():
        counts[name] = counts.get(name, 0) + 1
    seen: dict[str, int] = {}
    out = {}
    for g in report.graph:
        name = plain[g.id]
        if counts[name] > 1 and g.node != "AccumulateGrad":
            seen[name] = seen.get(name, 0) + 1
            name += f" #{seen[name]}"
        out[g.id] = name
    return out


def node_text(g: GraphEntry, prefix: Text | None, receives: str, title: str | None = None) -> Text:
    text = prefix.copy() if prefix is not None else Text()
    if prefix is not None:
        text.append("  ⟶  ")
    text.append(g.node, style="bold magenta" if g.node == "AccumulateGrad" else "bold cyan")
    if title and title != g.node:
        text.append(title[len(g.node):], style="italic")
    if receives:
        text.append(f"  g = {receives}", style="green")
    saved = saved_text(g)
    if saved:
        text.append("\n" + saved, style="dim")
    return text


def saved_text(g: GraphEntry) -> str | None:
    """The tensors the node keeps for backward (PyTorch's ``_saved_*``), named after the arguments."""
    import torch  # heavy

    parts = []
    for attr, v in g.saved.items():
        if not isinstance(v, torch.Tensor):
            continue  # dims, exponents, sizes: not tensors
        shown = fmt_value(v) if v.numel() <= SAVED_SHOW else _(Msg("shape {shape}", shape=str(list(v.shape))))
        source = f" ({g.saved_from[attr]})" if attr in g.saved_from else ""
        parts.append(f"{attr} = {shown}{source}")
    return _(Msg("saved tensors: {tensors}", tensors=", ".join(parts))) if parts else None


def received(report: Report, g: GraphEntry) -> str:
    """``g`` at a node, saying when it is the sum of several edges (a shared subexpression)."""
    if g.grad_output is None:
        return ""
    n = sum(1 for p in report.graph for t in p.next if t == g.id)
    return fmt_value(g.grad_output) + (_(Msg(" (sum of the {n} edges into it)", n=n)) if n > 1 else "")


def graph_tree(report: Report) -> Tree | None:
    """The grad_fn graph from the output down to the leaves, with the flow through each edge."""
    if not report.graph:
        return None
    by_id = {g.id: g for g in report.graph}
    seed = N_("the --grad-output v") if report.grad_output is not None else N_("1, as backward() does for a scalar")
    title = (Msg("backward pass: gradients flow from the output down to the leaves (g = gradient arriving; the "
                 "output's g is {seed})", seed=_(seed)) if report.graph[0].grad_output is not None else
             Msg("the grad_fn graph backward() would walk (it did not run: see the notes), with each edge's rule"))
    root = Tree(Prose(_(title), style="bold"))
    drawn: set[int] = set()
    count = 0
    leaf_edges: dict[int, int] = {}
    totals = {g.id: len(contributions(report, g)) for g in report.graph if g.node == "AccumulateGrad"}
    titles = node_names(report)
    taken = user_names(report)

    def add(parent: Tree, g: GraphEntry, prefix: Text | None) -> None:
        nonlocal count
        if count >= TREE_MAX:
            return
        count += 1
        if g.node == "AccumulateGrad":
            leaf_edges[g.id] = leaf_edges.get(g.id, 0) + 1
            text = prefix.copy() if prefix is not None else Text()
            text.append(f"  ⟶  {g.variable}.grad", style="bold magenta")
            if totals.get(g.id, 0) > 1:
                text.append(_(Msg("  (contribution {i} of {n})", i=leaf_edges[g.id], n=totals[g.id])), style="yellow")
            parent.add(Prose(text))
            return
        if g.id in drawn:
            text = prefix.copy() if prefix is not None else Text()
            text.append("  ⟶  " + _(Msg("{node} (drawn above: its g is the sum of its edges)", node=titles[g.id])),
                        style="dim")
            parent.add(Prose(text))
            return
        drawn.add(g.id)
        branch = parent.add(Prose(node_text(g, prefix, received(report, g), titles[g.id])))
        for e, nxt in enumerate(g.next):
            edge = _edge(g, e)
            if nxt is None:
                if edge is not None:
                    branch.add(Prose(_(Msg("{operand}: needs no gradient (a constant or --const), so the edge leads "
                                          "to nothing and nothing is computed for it",
                                          operand=operand_text(edge, e, taken))), style="dim"))
                continue
            add(branch, by_id[nxt], edge_text(g, e, taken))

    add(root, report.graph[0], None)
    if count >= TREE_MAX:
        root.add(Prose(_(Msg("… {n} nodes in all; the first {shown} are drawn", n=len(report.graph), shown=TREE_MAX)),
                      style="dim"))
    return root


def leaves_section(report: Report) -> Prose | None:
    """Each AccumulateGrad once: the separate contributions and their sum, and why .grad accumulates."""
    leaves = [g for g in report.graph if g.node == "AccumulateGrad"]
    if not leaves or all(g.grad_output is None for g in leaves):
        return None
    text = Text(_("where the gradients land (AccumulateGrad, one per leaf)") + "\n", style="bold")
    for g in leaves:
        parts = [_(Msg("{value} (from {node}, {arg})", value=fmt_value(v), node=p.label or p.node, arg=_edge(p, e).arg)
                   if _edge(p, e) else Msg("{value} (from {node})", value=fmt_value(v), node=p.label or p.node))
                 for p, e, v in contributions(report, g)]
        text.append(f"  {g.variable}.grad = ", style="bold magenta")
        if len(parts) > 1:
            text.append(" + ".join(parts) + f" = {fmt_value(g.grad_output)}")
            text.append("\n    " + _(Msg("{name} is used {n} times: each use sends its own gradient and "
                                         "AccumulateGrad adds them up", name=g.variable, n=len(parts))), style="dim")
        else:
            text.append(fmt_value(g.grad_output))
        text.append("\n")
    first = next(g for g in leaves if g.grad_output is not None)
    text.append("  " + _(Msg(".grad accumulates across backward() calls too: a second backward() would add again "
                             "({name}.grad = {twice}); that is why training loops call optimizer.zero_grad() (or "
                             "x.grad.zero_()) before each backward()", name=first.variable,
                             twice=fmt_value(first.grad_output * 2))), style="dim")
    return Prose(text)


def concepts_section(report: Report) -> Prose | None:
    """Leaves vs non-leaves, where gradients live, and retain_graph — in this expression's names."""
    if not report.graph:
        return None
    leaves = [n for n, i in report.inputs.items() if i.requires_grad]
    const = [n for n, i in report.inputs.items() if not i.requires_grad]
    steps = [f.name for f in report.forward if f.grad_fn]
    lines = []
    if leaves:
        lines.append(Msg("leaves: {names} — made by you, requires_grad=True; backward() writes their gradient to "
                         ".grad (gradients live in .grad, not in grad_fn: grad_fn is the recipe)",
                         names=", ".join(leaves)))
    if const:
        lines.append(Msg("{names}: requires_grad=False (--const), so no gradient is computed and .grad stays None",
                         names=", ".join(const)))
    if steps:
        lines.append(Msg("non-leaves: {names} — made by ops (they have a grad_fn); PyTorch drops their gradient once "
                         "passed on, so their .grad is None unless you call .retain_grad() (gradexplain does: see the "
                         "forward table's last column)", names=", ".join(dict.fromkeys(steps))))
    if any(g.saved for g in report.graph):
        lines.append(Msg("retain_graph: backward() frees what the nodes saved; a second backward() through this graph "
                         "raises \"Trying to backward through the graph a second time\" unless the first one was "
                         "backward(retain_graph=True) — and then it adds the same gradients to .grad again"))
    return Prose("\n".join(f"• {_(line)}" for line in lines), style="dim") if lines else None


def _index_labels(name: str, shape: list[int]) -> list[str]:
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, idx))}]" for idx in itertools.product(*(range(s) for s in shape))]


def jacobian_matrix(report: Report, name: str, jac: Any, title: str) -> Table | Text:
    """J as a matrix: a row per output entry, a column per input entry."""
    out_labels = _index_labels(report.output.name, report.output.shape)
    in_labels = _index_labels(name, report.inputs[name].shape)
    if len(out_labels) * len(in_labels) > JAC_CELLS or jac.numel() != len(out_labels) * len(in_labels):
        return Text(f"{_(title)}: {fmt_value(jac, JAC_CELLS)}")
    matrix = jac.double().reshape(len(out_labels), len(in_labels))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column(_(title))
    for label in in_labels:
        table.add_column(f"∂/∂{label}", justify="right")
    for r, label in enumerate(out_labels):
        table.add_row(label, *(number(float(x)) for x in matrix[r]))
    return table


def stacked_entries(node: Any) -> list[Any]:
    """The scalar formulas of a nested ``stack([...])``, in row-major order."""
    if isinstance(node, Call) and node.op == "stack" and not node.params:
        return [e for arg in node.args for e in stacked_entries(arg)]
    return [node]


def formula_matrix(report: Report, name: str, text: str) -> Table | None:
    """SymPy's per-element Jacobian as a matrix of formulas (a row per output entry), not nested
    ``stack([stack(...`` text; None when it does not have that form or is too big to draw."""
    out_labels = _index_labels(report.output.name, report.output.shape)
    in_labels = _index_labels(name, report.inputs[name].shape)
    if len(out_labels) * len(in_labels) > JAC_CELLS:
        return None
    try:
        entries = stacked_entries(read_formula(text))
    except GradexplainError:
        return None
    if len(entries) != len(out_labels) * len(in_labels) or len(entries) < 2:
        return None
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("SymPy")
    for label in in_labels:
        table.add_column(f"∂/∂{label}", justify="right", overflow="fold")
    for r, label in enumerate(out_labels):
        row = entries[r * len(in_labels):(r + 1) * len(in_labels)]
        table.add_row(label, *(escape(to_text(e)) for e in row))
    return table


def jacobian_section(report: Report) -> Group | None:
    if not report.jacobian:
        return None
    parts: list[Any] = []
    for name, j in report.jacobian.items():
        parts.append(Prose(_(Msg("Jacobian J = d{output}/d{name}, shape {output_shape} + {input_shape} (row: an entry "
                                "of {output}; column: an entry of {name})", output=report.output.name, name=name,
                                output_shape=str(report.output.shape), input_shape=str(report.inputs[name].shape))),
                          style="bold"))
        if j.torch is not None:
            parts.append(jacobian_matrix(report, name, j.torch, "torch"))
        sym = j.symbolic
        if sym is not None and sym.expr:
            grid = formula_matrix(report, name, sym.expr)
            parts.append(grid if grid is not None else Text(_(Msg("symbolic (SymPy): {formula}",
                                                                      formula=escape(sym.expr)))))
            if sym.value is not None:
                parts.append(jacobian_matrix(report, name, sym.value, N_("SymPy value")))
        elif j.reason:
            parts.append(Text(_(j.reason), style="yellow"))
        agreement = N_("torch and SymPy Jacobians agree") if j.agree else \
            N_("torch and SymPy Jacobians disagree") if j.agree is False else N_("torch and SymPy Jacobians ?")
        parts.append(Text(_(agreement), style="green" if j.agree else "yellow"))
        if report.grad_output is not None and j.torch is not None and name in report.grads:
            parts.append(vjp_explanation(report, name, j.torch))
    return Group(*parts)


def vjp_explanation(report: Report, name: str, jac: Any) -> Prose:
    """Spell out x.grad = vᵀ J: each entry as the sum of products (v is --grad-output)."""
    v = report.grad_output.double().reshape(-1)
    out_n = v.numel()
    j = jac.double().reshape(out_n, -1)
    grad = v @ j
    in_labels = _index_labels(f"{name}.grad", report.inputs[name].shape)
    text = Text(_(Msg("vector-Jacobian product: backward(v) gives {name}.grad = vᵀ·J (v = {v}, flattened); no "
                      "Jacobian is ever built by PyTorch, each node applies its rule to g instead", name=name,
                      v=fmt_value(report.grad_output))) + "\n", style="bold")
    if j.shape[1] <= 16 and out_n <= 16:
        for col, label in enumerate(in_labels):
            terms = " + ".join(f"{number(float(v[r]))}·{number(float(j[r, col]))}" for r in range(out_n))
            text.append(f"  {label} = {terms} = {number(float(grad[col]))}\n")
    shape = report.inputs[name].shape
    text.append(f"  {name}.grad = {fmt_value(grad.reshape(shape) if shape else grad[0])}")
    return Prose(text)
