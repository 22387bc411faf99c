"""Let-form gradients: the gradient as a small EXPR program in the user's own names.

Reverse mode (:func:`gradexplain.symbolic.reverse_mode`) builds the gradient as a DAG whose
shared nodes are shared; printing it as one expression inlines every shared node, so a chain
``h1 = tanh(W1 @ x + b1); …; h16 = …`` prints the whole network again at every layer and the
formula grows quadratically with depth.  Here the DAG is cut at

* the user's own statements (``h3 = tanh(W3 @ h2 + b3)``, printed as written, earlier
  statements by name),
* the adjoint of each of those statements (``g_h3 = W4.T @ (g_h4*(1 - h4**2))``: the gradient
  of the output with respect to ``h3``), and
* any other subexpression used more than once (``t1 = …``),

and each piece is one let-binding.  Every binding is simplified on its own (SymPy sees the
names of other bindings as symbols), so both the text and the simplification time grow
linearly with the program.  The result is valid EXPR that ``eval`` reads back: its last
statement's value is the gradient.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .execute import Shapes
from .ir import Call, Const, Input, Node, Program, walk
from .printer import Printer
from .symbolic import Simplifier, fit_shape, printable

ADJOINT_PREFIX = "g_"  # derivatives.yaml calls the incoming gradient ``grad``; ``g_h3`` reads as "g at h3"


@dataclass
class GradientProgram:
    """``bindings`` (name, EXPR text) in order, then ``result``: the gradient in terms of them."""

    bindings: list[tuple[str, str]]
    result: str

    @property
    def lines(self) -> list[str]:
        return [f"{name} = {text}" for name, text in self.bindings] + [self.result]

    @property
    def text(self) -> str:
        """One EXPR program: statements separated by ``; `` (copy it into ``eval`` as it is)."""
        return "; ".join(self.lines)


class Names:
    """Fresh binding names that never clash with the user's names or each other."""

    def __init__(self, taken: set[str]):
        self.taken = set(taken)

    def fresh(self, wanted: str) -> str:
        name, k = wanted, 2
        while name in self.taken:
            name, k = f"{wanted}_{k}", k + 1
        self.taken.add(name)
        return name


def statement_names(program: Program, taken: set[str]) -> tuple[dict[int, str], Names]:
    """Forward node id → the name the user gave it, and the namer for every other binding.

    A reassigned name gets ``h_2`` for its later versions: bindings are never reassigned, since
    the backward lines still need the earlier value."""
    reserved = taken | {s.name for s in program.statements}
    names = Names(reserved)
    claimed: set[str] = set()
    named: dict[int, str] = {}
    for stmt in program.statements:
        if id(stmt.node) in named or isinstance(stmt.node, (Input, Const)):
            continue
        named[id(stmt.node)] = stmt.name if stmt.name not in claimed else names.fresh(stmt.name)
        claimed.add(stmt.name)
    return named, names


def param_key(params: dict) -> str:
    return repr(sorted(params.items()))


class Sharer:
    """Hash-consing: structurally equal nodes become one node, the first one seen.

    A rule that recomputes a forward value (``tanh``'s rule is ``g*(1 - tanh(a)**2)``) then
    reuses the forward node itself, which has the user's name (``h3``)."""

    def __init__(self) -> None:
        self.table: dict[tuple, Node] = {}
        self.canon: dict[int, Node] = {}
        self.alive: list[Node] = []  # canon's keys are ids: keep their nodes alive so ids are not reused

    def __call__(self, root: Node | list[Node]) -> None:
        for n in walk(root):
            if id(n) in self.canon:
                continue
            rep = n
            if not isinstance(n, Call):
                key: tuple = ("input", n.name) if isinstance(n, Input) else ("const", type(n.value).__name__, n.value)
            else:
                args = tuple(self.canon[id(a)] for a in n.args)
                key = (n.op, tuple(id(a) for a in args), param_key(n.params), n.inplace)
                if key not in self.table and any(a is not b for a, b in zip(args, n.args)):
                    rep = Call(n.op, args, n.params, n.src, n.inplace)
            self.canon[id(n)] = self.table.setdefault(key, rep)
            self.alive.append(n)

    def get(self, node: Node) -> Node:
        return self.canon[id(node)]


def trivial(node: Node, named: dict[int, str]) -> bool:
    """Too small to be worth a name: a leaf, a number, or one op on leaves or names (``W1.T``, ``2*h3``)."""
    return not isinstance(node, Call) or all(isinstance(a, (Input, Const)) or id(a) in named for a in node.args)


def cut(node: Node, names: dict[int, str], memo: dict[int, Node]) -> Node:
    """``node`` with every named node below it replaced by ``Input(name)`` (``node`` itself kept).

    The walk stops at named nodes, so cutting every binding costs one pass over the DAG in all."""
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        n, expanded = stack.pop()
        if id(n) in memo or not isinstance(n, Call):
            continue
        below = [a for a in n.args if id(a) not in names and isinstance(a, Call) and id(a) not in memo]
        if not expanded and below:
            stack.append((n, True))
            stack.extend((a, False) for a in below)
            continue
        args = tuple(Input(names[id(a)]) if id(a) in names else memo.get(id(a), a) for a in n.args)
        memo[id(n)] = n if all(a is b for a, b in zip(args, n.args)) else Call(n.op, args, n.params, n.src, n.inplace)
    return memo.get(id(node), node)


def gradient_programs(program: Program, gradients: dict[str, Any], adjoints: dict[int, Node],
                      shapes: Shapes) -> dict[str, str | None]:
    """``symbolic.program`` per input (None where a piece has no EXPR spelling: indexing).

    The bindings are built once for all inputs (the adjoints ``g_h3`` are the same whichever input
    is asked for), each simplified once; each input's program takes the ones its result needs.
    ``gradients`` maps an input to its :class:`gradexplain.symbolic.SymbolicGradient`."""
    raws = {name: sg.raw for name, sg in gradients.items() if sg.raw is not None}
    out: dict[str, str | None] = {name: sg.text for name, sg in gradients.items() if sg.raw is None}
    if not raws:
        return out
    forward, names = statement_names(program, set(program.inputs))
    share = Sharer()
    share([s.node for s in program.statements])
    share(list(raws.values()))
    roots = {name: share.get(raw) for name, raw in raws.items()}
    named: dict[int, str] = dict(forward)
    for fid, name in forward.items():
        g = adjoints.get(fid)
        if g is not None and id(g) in share.canon:
            g = share.get(g)
            if id(g) not in named and not trivial(g, named):
                named[id(g)] = names.fresh(ADJOINT_PREFIX + name)
    order = list(walk(list(roots.values())))
    root_ids = {id(r) for r in roots.values()}
    counts: dict[int, int] = {}  # uses inside bindings: a result line (a root) is not a binding
    for n in order:
        if id(n) not in root_ids or id(n) in named:
            for c in n.children():
                counts[id(c)] = counts.get(id(c), 0) + 1
    for n in order:
        if id(n) not in named and counts.get(id(n), 0) > 1 and not trivial(n, named):
            named[id(n)] = names.fresh("t")
    forward_ids = {id(n) for n in walk([s.node for s in program.statements])}
    simplifier = Simplifier(shapes)
    memo: dict[int, Node] = {}
    lines: dict[str, tuple[str, set[str]]] = {}  # binding name -> (EXPR text, the names it uses); in order
    broken: set[str] = set()  # bindings with no EXPR spelling
    for n in order:
        if id(n) not in named:
            continue
        name = named[id(n)]
        body = cut(n, named, memo)
        if id(n) not in forward_ids:  # a backward piece: simplify it (the user's statements stay as written)
            body = simplifier(body)
        if isinstance(body, Input) and body.name in lines:  # h8*ones_like(h8) → h8: an alias, not a line
            named[id(n)] = body.name
            continue
        used = {i.name for i in walk(body) if isinstance(i, Input) and (i.name in lines or i.name in broken)}
        if not printable(body) or used & broken:
            broken.add(name)
        else:
            lines[name] = (Printer().text(body), used)
        shapes.bind(name, n)
    for name, root in roots.items():
        body = Input(named[id(root)]) if id(root) in named else simplifier(cut(root, named, memo))
        result = fit_shape(body, Input(name), shapes)
        used = {i.name for i in walk(result) if isinstance(i, Input) and (i.name in lines or i.name in broken)}
        if not printable(result) or used & broken:
            out[name] = None
            continue
        out[name] = GradientProgram(needed(lines, used), Printer().text(result)).text
    return out


def needed(lines: dict[str, tuple[str, set[str]]], used: set[str]) -> list[tuple[str, str]]:
    """The bindings ``used`` needs, directly or through other bindings, in program order."""
    want, stack = set(), list(used)
    while stack:
        name = stack.pop()
        if name not in want:
            want.add(name)
            stack.extend(lines[name][1])
    return [(name, text) for name, (text, _) in lines.items() if name in want]
