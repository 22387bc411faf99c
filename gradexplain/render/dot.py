"""The backward graph as a picture: Graphviz DOT, Mermaid ``flowchart``, or SVG via Graphviz.

Nodes carry the user's label, the shape and value of what the node computed, and the gradient
``g`` that arrived in backward; edges carry the argument, its rule and the gradient sent.
Leaves (``AccumulateGrad``) and saved tensors are styled apart, constants (edges to nothing)
are drawn dashed.  Text is built by hand with full escaping (no extra dependency); graphs
larger than ``max_nodes`` are cut in breadth-first order with a note node saying so.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable

from .. import sanitize
from ..errors import GradexplainError
from ..i18n import Msg
from ..format import fmt_value, number
from ..report import GraphEntry, Report

LABEL_VALUES = 8  # elements of a tensor written on a node; more are summarised
MAX_NODES = 150
INSTALL_HINT = Msg("--format svg needs Graphviz's `dot` program, which is not installed: install it with "
                   "`apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) or "
                   "`conda install graphviz`; --format dot prints the DOT text without it")


@dataclass
class Box:
    """One drawn node: its id, lines of text and kind (op, leaf, saved, constant, note)."""

    key: str
    lines: list[str]
    kind: str


@dataclass
class Arrow:
    src: str
    dst: str
    label: str
    kind: str  # grad, saved, constant


def short(v: Any) -> str:
    """A value small enough for a picture: in full when short, else its shape and range."""
    import torch  # heavy

    if isinstance(v, torch.Tensor) and v.numel() > LABEL_VALUES:
        flat = v.detach().double().reshape(-1)
        return f"{list(v.shape)} in [{number(float(flat.min()))}, {number(float(flat.max()))}]"
    return fmt_value(v, LABEL_VALUES)


def node_box(g: GraphEntry) -> Box:
    shape = f"shape {g.shape}" if g.shape is not None else ""
    value = f"value {short(g.value)}" if g.value is not None else ""
    if g.node == "AccumulateGrad":
        lines = [f"{g.variable} (leaf)", "AccumulateGrad", " · ".join(p for p in (shape, value) if p)]
        if g.grad_output is not None:
            lines.append(f"{g.variable}.grad = {short(g.grad_output)}")
        return Box(f"n{g.id}", [x for x in lines if x], "leaf")
    lines = [g.node]
    if g.label:
        lines.append(g.label)
    if shape or value:
        lines.append(" · ".join(p for p in (shape, value) if p))
    if g.grad_output is not None:
        lines.append(f"g = {short(g.grad_output)}")
    return Box(f"n{g.id}", lines, "op")


def layout(report: Report, max_nodes: int = MAX_NODES) -> tuple[list[Box], list[Arrow]]:
    """Boxes and arrows of the (capped) graph, shared by the DOT and Mermaid writers."""
    import torch  # heavy

    drawn = [g for g in report.graph if g.id < max_nodes]
    ids = {g.id for g in drawn}
    boxes, arrows = [node_box(g) for g in drawn], []
    for g in drawn:
        for e, target in enumerate(g.next):
            edge = g.edges[e] if e < len(g.edges) else None
            if target is None:
                if edge is not None:
                    key = f"c{g.id}_{e}"
                    boxes.append(Box(key, [edge.source or "?", "constant: no gradient"], "constant"))
                    arrows.append(Arrow(f"n{g.id}", key, edge.arg or "", "constant"))
                continue
            if target not in ids:
                continue
            sent = g.grad_inputs[e] if e < len(g.grad_inputs) else None
            parts = [f"{edge.arg}: {edge.rule}" if edge is not None and edge.rule else (edge.arg if edge else "")]
            if sent is not None:
                parts.append(short(sent))
            arrows.append(Arrow(f"n{g.id}", f"n{target}", "\n".join(p for p in parts if p), "grad"))
        for attr, v in g.saved.items():
            if isinstance(v, torch.Tensor):
                key = f"s{g.id}_{attr}"
                source = g.saved_from.get(attr)
                boxes.append(Box(key, [f"saved {attr}" + (f" ({source})" if source else ""),
                                       f"shape {list(v.shape)} · {short(v)}"], "saved"))
                arrows.append(Arrow(f"n{g.id}", key, "", "saved"))
    if len(report.graph) > max_nodes:
        boxes.append(Box("more", [f"… {len(report.graph) - max_nodes} more nodes not drawn",
                                  f"(the first {max_nodes} in breadth-first order; raise with --max-nodes)"], "note"))
    return boxes, arrows


def title(report: Report) -> str:
    return f"backward graph of {report.expr}"


# ------------------------------------------------------------------------------------ DOT

DOT_STYLE = {
    "op": 'shape=box, style="rounded,filled", fillcolor="#eef3fb", color="#3b6ab5"',
    "leaf": 'shape=box, style="filled,bold", fillcolor="#dff3e4", color="#2e8540"',
    "saved": 'shape=note, style="filled,dashed", fillcolor="#fff8e1", color="#b08800", fontsize=10',
    "constant": 'shape=box, style="dashed", color="#999999", fontcolor="#777777", fontsize=10',
    "note": 'shape=plaintext, fontcolor="#aa0000"',
}
DOT_ARROW = {"grad": "", "saved": 'style=dashed, color="#b08800", arrowhead=none',
             "constant": 'style=dotted, color="#999999"'}


def dot_quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, lines joined by DOT's \\n."""
    return sanitize.dot(text.splitlines())


def to_dot(report: Report, max_nodes: int = MAX_NODES) -> str:
    boxes, arrows = layout(report, max_nodes)
    out = ["digraph backward {", f"  label={dot_quote(title(report))};", "  labelloc=t;", "  rankdir=TB;",
           '  node [fontname="Helvetica", fontsize=11];', '  edge [fontname="Helvetica", fontsize=9];']
    for b in boxes:
        out.append(f"  {b.key} [label={dot_quote(chr(10).join(b.lines))}, {DOT_STYLE[b.kind]}];")
    for a in arrows:
        attrs = [x for x in (DOT_ARROW[a.kind], f"label={dot_quote(a.label)}" if a.label else "") if x]
        out.append(f"  {a.src} -> {a.dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    out.append("}")
    return "\n".join(out) + "\n"


# -------------------------------------------------------------------------------- Mermaid

MERMAID_SHAPE = {"op": ('["', '"]'), "leaf": ('(["', '"])'), "saved": ('[/"', '"/]'), "constant": ('["', '"]'),
                 "note": ('["', '"]')}
MERMAID_CLASS = {
    "op": "fill:#eef3fb,stroke:#3b6ab5",
    "leaf": "fill:#dff3e4,stroke:#2e8540,stroke-width:2px",
    "saved": "fill:#fff8e1,stroke:#b08800,stroke-dasharray:4 3",
    "constant": "fill:#ffffff,stroke:#999999,stroke-dasharray:2 2,color:#777777",
    "note": "fill:#ffffff,stroke:#ffffff,color:#aa0000",
}


def mermaid_text(text: str) -> str:
    """Mermaid label text: entity codes for the characters its parser treats specially."""
    return sanitize.mermaid(text.splitlines())


def to_mermaid(report: Report, max_nodes: int = MAX_NODES) -> str:
    boxes, arrows = layout(report, max_nodes)
    out = ["---", f"title: {json.dumps(title(report))}", "---", "flowchart TD"]  # a JSON string is valid YAML
    for b in boxes:
        left, right = MERMAID_SHAPE[b.kind]
        out.append(f"  {b.key}{left}{mermaid_text(chr(10).join(b.lines))}{right}")
    for a in arrows:
        link = {"grad": "-->", "saved": "-.-", "constant": "-.->"}[a.kind]
        out.append(f'  {a.src} {link}|"{mermaid_text(a.label)}"| {a.dst}' if a.label else f"  {a.src} {link} {a.dst}")
    for kind, style in MERMAID_CLASS.items():
        members = [b.key for b in boxes if b.kind == kind]
        if members:
            out.append(f"  classDef {kind} {style}")
            out.append(f"  class {','.join(members)} {kind}")
    return "\n".join(out) + "\n"


def to_svg(report: Report, max_nodes: int = MAX_NODES) -> str:
    """Graphviz's ``dot -Tsvg`` over :func:`to_dot` (a clear error when it is not installed)."""
    program = shutil.which("dot")
    if program is None:
        raise GradexplainError(INSTALL_HINT)
    done = subprocess.run([program, "-Tsvg"], input=to_dot(report, max_nodes), capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise GradexplainError(Msg("Graphviz dot failed: {reason}",
                                   reason=done.stderr.strip().splitlines()[0] if done.stderr.strip() else ""))
    return done.stdout


RENDERERS = {"dot": to_dot, "mermaid": to_mermaid, "svg": to_svg}


def renderer(fmt: str) -> Callable[[Report, int], str]:
    """The writer for ``--format`` (checked before any work is done)."""
    if fmt not in RENDERERS:
        raise GradexplainError(Msg("--format must be one of {choices}, not {value!r}", choices=", ".join(RENDERERS),
                                   value=fmt))
    write = RENDERERS[fmt]

    def draw(report: Report, max_nodes: int = MAX_NODES) -> str:
        if not report.graph:
            raise GradexplainError(Msg("the output has no backward graph: it depends on no input that requires grad"))
        return write(report, max_nodes)

    return draw


def graph_printer(fmt: str) -> Callable[[Report, int], None]:
    """:func:`renderer` for ``fmt``, writing the picture to stdout (what ``gradexplain graph`` prints)."""
    draw = renderer(fmt)

    def show(report: Report, max_nodes: int = MAX_NODES) -> None:
        sys.stdout.write(draw(report, max_nodes))

    return show
