"""Run a program with real PyTorch autograd and record everything it did.

Forward values per statement (with ``retain_grad`` on named intermediates), the ``grad_fn``
graph walked through ``next_functions``, what each node saved for backward, and — through
``Node.register_hook`` — the gradient arriving at every node and what it sent along each edge.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .errors import GradexplainError
from .execute import Evaluator
from .graphview import Trace, link
from .ir import Call, Node, Program
from .limits import DEFAULT, Limits


@dataclass
class GraphNode:
    id: int
    node: str  # type(node).__name__: MulBackward0, CopySlices, AccumulateGrad
    next: list[int | None]
    variable: str | None = None  # the input an AccumulateGrad writes to
    label: str | None = None  # the piece of EXPR the node came from
    grad_output: torch.Tensor | None = None  # gradient arriving during backward
    grad_inputs: list[torch.Tensor | None] = field(default_factory=list)  # sent along each edge
    saved: dict[str, Any] = field(default_factory=dict)  # _saved_self, _saved_other, ...
    op: str | None = None  # our registry op, for its rule text
    edges: list[Any] = field(default_factory=list)  # graphview.Edge per next edge: argument, rule (None: unknown)
    saved_from: dict[str, str] = field(default_factory=dict)  # saved tensor -> the argument it holds
    shape: list[int] | None = None  # of the node's forward output (of the leaf, for AccumulateGrad)
    value: Any = None  # that output, when small


@dataclass
class StatementRun:
    name: str
    src: str
    value: Any  # a detached snapshot, as it stood after this statement
    grad_fn: str | None
    grad: torch.Tensor | None = None
    is_leaf: bool = False
    requires_grad: bool = False


@dataclass
class TorchRun:
    leaves: dict[str, torch.Tensor]
    statements: list[StatementRun]
    output: torch.Tensor
    graph: list[GraphNode]
    grads: dict[str, torch.Tensor | None]
    backward_ran: bool
    notes: list[str] = field(default_factory=list)
    trace: Trace | None = None  # per IR node: values and grad_fns of the forward run (graphview, misconceptions)


def make_leaves(values: dict[str, torch.Tensor], const: set[str], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Every input is a floating leaf; all but ``--const`` ones require grad.  An integer input
    (``Yb=tensor([1, 0])``, an index tensor) stays integer and, as in PyTorch, cannot require grad."""
    leaves = {}
    for name, v in values.items():
        if not v.is_floating_point():
            leaves[name] = v.detach().clone()
            continue
        t = v.detach().clone().to(dtype)
        leaves[name] = t.requires_grad_(name not in const)
    return leaves


def run_program(program: Program, leaves: dict[str, torch.Tensor], limits: Limits = DEFAULT,
                on_value: Callable[[Node, Any], None] | None = None,
                after: Callable[[int, Any], None] | None = None) -> list[Any]:
    """Evaluate each statement in order (in-place statements mutate, as in PyTorch).

    ``after(i, value)`` sees each statement's value as it stands right after it ran."""
    evaluator = Evaluator(leaves, limits, on_value=on_value)
    values = []
    for i, stmt in enumerate(program.statements):
        values.append(evaluator(stmt.node))
        if after is not None:
            after(i, values[-1])
    return values


def _snapshot(v: Any) -> Any:
    return v.detach().clone() if isinstance(v, torch.Tensor) else v


def _saved(node: Any) -> dict[str, Any]:
    """What a node saved for backward (PyTorch exposes them as ``_saved_*`` attributes)."""
    saved: dict[str, Any] = {}
    for attr in dir(node):
        if not attr.startswith("_saved_") or attr.startswith("_saved_raw"):
            continue
        try:
            value = getattr(node, attr)  # names come from dir(node), never from the user
        except RuntimeError:
            continue
        if isinstance(value, torch.Tensor):
            saved[attr[len("_saved_"):]] = value.detach().clone()
        elif isinstance(value, (int, float, bool, str, tuple, list)) or value is None:
            saved[attr[len("_saved_"):]] = value
    return saved


def walk_graph(output: torch.Tensor, leaf_names: dict[int, str], labels: dict[Any, tuple[str, str]]) -> tuple[list[GraphNode], dict[Any, GraphNode]]:
    """Breadth-first over ``grad_fn.next_functions`` from the output."""
    nodes: list[GraphNode] = []
    index: dict[Any, GraphNode] = {}
    if output.grad_fn is None:
        return nodes, index
    queue = [output.grad_fn]
    order: list[Any] = []
    while queue:
        fn = queue.pop(0)
        if fn in index:
            continue
        label, op = labels.get(fn, (None, None))
        entry = GraphNode(id=len(nodes), node=type(fn).__name__, next=[], label=label, saved=_saved(fn), op=op)
        variable = getattr(fn, "variable", None)
        if variable is not None:
            entry.variable = leaf_names.get(id(variable))
            entry.label = entry.label or entry.variable
        nodes.append(entry)
        index[fn] = entry
        order.append(fn)
        queue.extend(nxt for nxt, _ in fn.next_functions if nxt is not None)
    for fn in order:
        index[fn].next = [index[nxt].id if nxt is not None else None for nxt, _ in fn.next_functions]
    return nodes, index


def record_flow(index: dict[Any, GraphNode]) -> list[Any]:
    """Hook every node: what arrives (grad_outputs) and what leaves along each edge (grad_inputs)."""
    handles = []
    for fn, entry in index.items():
        def hook(grad_inputs: tuple, grad_outputs: tuple, entry: GraphNode = entry) -> None:
            entry.grad_output = grad_outputs[0].detach().clone() if grad_outputs and grad_outputs[0] is not None else None
            if entry.node == "AccumulateGrad":
                entry.grad_output = entry.grad_output if entry.grad_output is not None else (
                    grad_inputs[0].detach().clone() if grad_inputs and grad_inputs[0] is not None else None)
            entry.grad_inputs = [g.detach().clone() if g is not None else None for g in grad_inputs]
        handles.append(fn.register_hook(hook))
    return handles


def torch_run(program: Program, leaves: dict[str, torch.Tensor], grad_output: torch.Tensor | None,
              limits: Limits = DEFAULT) -> TorchRun:
    labels: dict[Any, tuple[str, str]] = {}
    trace = Trace.of(program)

    def on_value(node: Node, value: Any) -> None:
        trace.record(node, value)
        if isinstance(node, Call) and isinstance(value, torch.Tensor) and value.grad_fn is not None:
            labels.setdefault(value.grad_fn, (node.src or "", node.op))

    statements: list[StatementRun] = []

    def after(i: int, value: Any) -> None:
        stmt = program.statements[i]
        grad_fn = value.grad_fn if isinstance(value, torch.Tensor) else None
        statements.append(StatementRun(stmt.name, stmt.src, _snapshot(value), type(grad_fn).__name__ if grad_fn else None))

    values = run_program(program, leaves, limits, on_value, after)
    retained: dict[int, torch.Tensor] = {}
    later_objects = [id(v) for v in values]
    for i, (run, value) in enumerate(zip(statements, values)):
        if isinstance(value, torch.Tensor):
            run.is_leaf, run.requires_grad = value.is_leaf, value.requires_grad
            changed_later = id(value) in later_objects[i + 1:]  # mutated in place by a later statement
            if value.requires_grad and not changed_later:
                if not value.is_leaf:
                    value.retain_grad()
                retained[i] = value

    output = values[program.output]
    if not isinstance(output, torch.Tensor):
        output = torch.tensor(output, dtype=torch.get_default_dtype())
    leaf_names = {id(t): name for name, t in leaves.items()}
    graph, index = walk_graph(output, leaf_names, labels)
    link(index, trace)
    notes: list[str] = []
    backward_ran = False
    if output.requires_grad and (output.numel() == 1 and output.dim() == 0 or grad_output is not None):
        if grad_output is not None and tuple(grad_output.shape) != tuple(output.shape):
            raise GradexplainError(f"--grad-output has shape {list(grad_output.shape)} but the output has shape "
                                   f"{list(output.shape)}: backward() needs a gradient of the output's shape")
        handles = record_flow(index)
        try:
            output.backward(grad_output.to(output.dtype) if grad_output is not None else None)
        except RuntimeError as e:
            raise GradexplainError(f"backward(): {str(e).strip().splitlines()[0]}") from None
        finally:
            for h in handles:
                h.remove()
        backward_ran = True
        for i, t in retained.items():
            statements[i].grad = t.grad.detach().clone() if t.grad is not None else None
    grads = {name: (t.grad.detach().clone() if t.grad is not None else None)
             for name, t in leaves.items() if t.requires_grad}
    return TorchRun(leaves, statements, output, graph, grads, backward_ran, notes, trace)


def torch_jacobian(program: Program, leaves: dict[str, torch.Tensor], limits: Limits = DEFAULT) -> dict[str, torch.Tensor]:
    """d output / d input for every input that requires grad, shape ``out.shape + in.shape``."""
    names = [n for n, t in leaves.items() if t.requires_grad]
    fixed = {n: t.detach() for n, t in leaves.items() if not t.requires_grad}

    def f(*xs: torch.Tensor) -> torch.Tensor:
        env = dict(fixed, **{n: x.clone() for n, x in zip(names, xs)})
        out = run_program(program, env, limits)[program.output]
        return out if isinstance(out, torch.Tensor) else torch.tensor(out, dtype=torch.get_default_dtype())

    jac = torch.autograd.functional.jacobian(f, tuple(leaves[n].detach() for n in names))
    return {n: j.detach() for n, j in zip(names, jac)}
