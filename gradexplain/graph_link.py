"""Tell the backward graph in the user's words.

PyTorch's ``grad_fn`` graph knows nothing of the EXPR: its nodes are ``MulBackward0`` and its
edges are bare ``next_functions`` pairs.  During the forward run a :class:`Trace` remembers,
per IR node, the value it produced and the ``grad_fn`` (or leaf tensor) that value carried at
that moment; :func:`link` then matches every edge of every node to the EXPR argument it leads
to, instantiates the registry's rule for that argument (``mul``'s ``a: g*b`` becomes ``g*x``),
names the saved tensors after the arguments they hold, and labels the nodes PyTorch created
inside one of our ops (the second ``SelectBackward0`` of ``a[0,0]``) with that op's text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .ir import Call, Const, Input, Node, Program, key_text, walk
from .ops import REGISTRY, RuleContext
from .printer import Printer
from .rules import rule_node

VALUE_MAX = 64  # forward values kept per graph node (larger ones: shape only)


def _small(v: torch.Tensor) -> torch.Tensor | None:
    return v.detach().clone() if v.numel() <= VALUE_MAX else None


@dataclass
class Edge:
    """One ``next_functions`` edge, in EXPR terms."""

    arg: str | None  # the registry's name for the argument it leads to (a, b, base, value, t0, ...)
    source: str | None  # that argument as the user wrote it (x, y, dot(x, x), 2)
    rule: str | None  # the rule for that argument, instantiated: g*x
    constant: bool = False  # the argument needs no gradient: PyTorch's edge leads to nothing
    direct: bool = True  # False: the edge enters a node PyTorch made inside the op (its gradient may be reshaped)


@dataclass
class Trace:
    """What the forward run produced per IR node (ids are kept valid by ``alive``)."""

    names: dict[int, str] = field(default_factory=dict)  # id(statement node) -> statement name
    values: dict[int, Any] = field(default_factory=dict)
    keys: dict[int, Any] = field(default_factory=dict)  # grad_fn, or the leaf tensor itself
    calls: dict[Any, Call] = field(default_factory=dict)  # grad_fn -> the Call that made it
    snapshots: dict[Any, Any] = field(default_factory=dict)  # grad_fn -> its output as computed (small ones)
    shapes: dict[Any, list[int]] = field(default_factory=dict)  # grad_fn -> its output's shape
    alive: list[Node] = field(default_factory=list)

    @classmethod
    def of(cls, program: Program) -> "Trace":
        return cls(names={id(s.node): s.name for s in program.statements})

    def record(self, node: Node, value: Any) -> None:
        """``Evaluator.on_value``: called as each node is computed, arguments first."""
        self.alive.append(node)
        self.values[id(node)] = value
        if not isinstance(value, torch.Tensor) or not value.requires_grad:
            return
        self.keys[id(node)] = value.grad_fn if value.grad_fn is not None else value
        if isinstance(node, Call) and value.grad_fn is not None and value.grad_fn not in self.calls:
            self.calls[value.grad_fn] = node
            self.snapshots[value.grad_fn] = _small(value)
            self.shapes[value.grad_fn] = list(value.shape)

    def forget_values(self, above: int) -> None:
        """Keep only shape and dtype (a meta tensor) of values past ``above`` elements: once the graph
        is linked and the forward notes are made, holding every intermediate of a big program would
        double what its run needs."""
        for key, v in self.values.items():
            if isinstance(v, torch.Tensor) and v.numel() > above and v.device.type != "meta":
                self.values[key] = torch.empty(v.shape, dtype=v.dtype, device="meta")

    def source(self, node: Node) -> str:
        if id(node) in self.names:
            return self.names[id(node)]
        if isinstance(node, Call) and node.src:
            return node.src
        return self.text(node)

    def text(self, node: Node) -> str:
        """EXPR text with named steps printed by their names."""
        return Printer(self.names).text(node)


def arg_names(call: Call) -> list[str]:
    spec = REGISTRY[call.op]
    return [f"t{i}" for i in range(len(call.args))] if spec.variadic else list(spec.tensor_args[: len(call.args)])


def _leads_to(fn: Any, key: Any) -> bool:
    return key is not None and (fn is key or getattr(fn, "variable", None) is key)


def match_edges(fn: Any, call: Call, trace: Trace) -> list[int | None]:
    """For each edge, the index of the argument it leads to (each argument used once, in order)."""
    keys = [trace.keys.get(id(a)) for a in call.args]
    taken: set[int] = set()
    result: list[int | None] = []
    for nxt, _ in fn.next_functions:
        found = next((i for i, k in enumerate(keys) if i not in taken and nxt is not None and _leads_to(nxt, k)),
                     None)
        if found is not None:
            taken.add(found)
        result.append(found)
    for e, (nxt, _) in enumerate(fn.next_functions):  # edges to nothing: arguments that need no gradient
        if nxt is None and result[e] is None:
            found = next((i for i, k in enumerate(keys) if i not in taken and k is None), None)
            if found is not None:
                taken.add(found)
            result[e] = found
    open_edges = [e for e, (nxt, _) in enumerate(fn.next_functions) if nxt is not None and result[e] is None]
    open_args = [i for i, k in enumerate(keys) if i not in taken and k is not None]
    if len(open_edges) == len(open_args):  # edges into nodes torch made inside our op (a[0,0]: two selects)
        for e, i in zip(open_edges, open_args):
            result[e] = i
    return result


def _shape(v: Any) -> tuple[int, ...]:
    return tuple(v.shape) if isinstance(v, torch.Tensor) else ()


def _dtype(v: Any) -> torch.dtype:
    return v.dtype if isinstance(v, torch.Tensor) else torch.get_default_dtype()


def instantiated_rule(call: Call, index: int, trace: Trace) -> str | None:
    """The registry rule for argument ``index`` over the user's own names: ``g*x``."""
    names = arg_names(call)
    values = [trace.values.get(id(a)) for a in call.args]
    nodes: dict[str, Any] = dict(zip(names, call.args), g=Input("g"), out=call)
    ctx = RuleContext(dict(call.params), {n: _shape(v) for n, v in zip(names, values)},
                      {n: _dtype(v) for n, v in zip(names, values)}, _shape(trace.values.get(id(call))), nodes)
    try:
        node = rule_node(call.op, names[index], index, ctx)
    except Exception:  # noqa: BLE001 - best-effort text; the numbers shown always come from torch
        return None
    if node is None:
        return None
    text = trace.text(node)
    internal = any(isinstance(n, Call) and not REGISTRY[n.op].user and f"{n.op}(" in text for n in walk(node))
    shown = REGISTRY[call.op].shown.get(names[index])
    if internal and shown:  # index_put(g, 0, key=(0, 1)) is our plumbing: say it in words
        return shown.replace("[key]", f"[{key_text(call.params['key'], lambda s: trace.text(call.args[s.index]))}]") if "key" in call.params else shown
    return text


def edges_of(fn: Any, call: Call, trace: Trace) -> list[Edge | None]:
    names = arg_names(call)
    edges: list[Edge | None] = []
    for e, index in enumerate(match_edges(fn, call, trace)):
        if index is None:
            edges.append(None)
            continue
        arg = call.args[index]
        nxt = fn.next_functions[e][0]
        constant = nxt is None
        rule = None if constant else instantiated_rule(call, index, trace)
        direct = constant or _leads_to(nxt, trace.keys.get(id(arg)))
        edges.append(Edge(names[index], trace.source(arg), rule, constant, direct))
    return edges


def saved_sources(saved: dict[str, Any], call: Call, trace: Trace) -> dict[str, str]:
    """Name each saved tensor after the argument (or output) whose value it is."""
    candidates = [(trace.source(a), trace.values.get(id(a))) for a in call.args if not isinstance(a, Const)]
    candidates.append((trace.source(call) + " (the output)", trace.values.get(id(call))))
    found: dict[str, str] = {}
    for attr, value in saved.items():
        if not isinstance(value, torch.Tensor):
            continue
        for name, v in candidates:
            if isinstance(v, torch.Tensor) and v.shape == value.shape and bool(torch.equal(v.detach(), value)):
                found[attr] = name
                break
    return found


def link(index: dict[Any, Any], trace: Trace) -> None:
    """Fill ``edges``, ``saved_from``, ``shape``, ``value`` and inner labels of the walked nodes (BFS order)."""
    for fn, entry in index.items():
        variable = getattr(fn, "variable", None)
        if isinstance(variable, torch.Tensor):
            entry.shape, entry.value = list(variable.shape), _small(variable)
        call = trace.calls.get(fn)
        if call is not None:
            entry.edges = edges_of(fn, call, trace)
            entry.saved_from = saved_sources(entry.saved, call, trace)
            entry.shape, entry.value = trace.shapes.get(fn), trace.snapshots.get(fn)
        for nxt, _ in fn.next_functions:
            inner = index.get(nxt) if nxt is not None else None
            if inner is not None and inner.label is None and nxt not in trace.calls:
                inner.label = entry.label  # made by torch inside our op (a[0,0] is two SelectBackward0)
