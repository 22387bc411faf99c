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
from .execute import Evaluator, use_counts
from .graph_link import Trace, link
from .i18n import Msg
from .ir import Call, Node, Program
from .limits import DEFAULT, Limits
from .bulk import Summary


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
    edges: list[Any] = field(default_factory=list)  # graph_link.Edge per next edge: argument, rule (None: unknown)
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
    trace: Trace | None = None  # per IR node: values and grad_fns of the forward run (graph_link, misconceptions)


def make_leaves(values: dict[str, torch.Tensor], const: set[str], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Every input is a floating leaf; all but ``--const`` ones require grad.  An integer input
    (``Yb=tensor([1, 0])``, an index tensor) stays integer and, as in PyTorch, cannot require grad."""
    leaves = {}
    for name, v in values.items():
        if not v.is_floating_point():
            leaves[name] = v.detach().clone()
            continue
        # a big value is not copied: a leaf that requires grad cannot change in place, and a --const one
        # that an in-place statement changes is copied by the torch run (run_torch's ``own``)
        t = v.detach().to(dtype) if v.numel() > SHARE_ABOVE else v.detach().clone().to(dtype)
        leaves[name] = t.requires_grad_(name not in const)
    return leaves


def run_program(program: Program, leaves: dict[str, torch.Tensor], limits: Limits = DEFAULT,
                on_value: Callable[[Node, Any], None] | None = None,
                after: Callable[[int, Any], None] | None = None) -> list[Any]:
    """Evaluate each statement in order (in-place statements mutate, as in PyTorch).

    ``after(i, value)`` sees each statement's value as it stands right after it ran."""
    evaluator = Evaluator(leaves, limits, on_value=on_value, as_torch=True)
    values = []
    for i, stmt in enumerate(program.statements):
        values.append(evaluator(stmt.node))
        if after is not None:
            after(i, values[-1])
    return values


def run_output(program: Program, env: dict[str, torch.Tensor], limits: Limits = DEFAULT,
               on_value: Callable[[Node, Any], None] | None = None) -> Any:
    """The output's value, each statement run in order as :func:`run_program` does, but every
    intermediate let go once its last consumer has run: a finite-difference run of
    ``(x*x*x*x*x*x).sum()`` over 10^7 entries holds two tensors at a time, not six."""
    uses = use_counts([s.node for s in program.statements])  # each statement's value is read once it has run
    uses[id(program.output_node)] += 1  # and the output's at the end
    evaluator = Evaluator(env, limits, on_value=on_value, uses=uses)
    for stmt in program.statements:
        evaluator(stmt.node)
        uses[id(stmt.node)] -= 1
        if uses[id(stmt.node)] == 0:
            evaluator.memo[id(stmt.node)] = None
    return evaluator.memo[id(program.output_node)]


SHARE_ABOVE = 10**6  # elements: larger recorded tensors are shared, never copied


def _keep(t: torch.Tensor, most: int) -> Any:
    """A recorded tensor, safe from later changes.  Small ones are copied; one past ``most``
    elements (``--max-json-values``: no document writes it out) is kept as its summary, which is
    all the report shows of it, so that autograd can free the tensor — a 10^7-element program
    would otherwise hold every gradient of every node; in between they are shared (autograd never
    changes a gradient it handed to a hook, and copying would materialise expanded gradients:
    ``sum()``'s is one number seen 10^7 times)."""
    t = t.detach()
    if t.numel() > most:
        return Summary.of(t)
    return t if t.numel() > SHARE_ABOVE else t.clone()


def _snapshot(v: Any, most: int, in_place: bool = True) -> Any:
    """A statement's value as it stands now (a copy, or a summary, when a later in-place
    statement may change it)."""
    if not isinstance(v, torch.Tensor):
        return v
    if in_place and v.numel() <= most:
        return v.detach().clone()
    return _keep(v, most)


def _shape_only(v: Any) -> Any:
    """A big saved tensor once the graph is linked: the report shows its shape only."""
    if isinstance(v, torch.Tensor) and v.numel() > SHARE_ABOVE:
        return torch.empty(v.shape, dtype=v.dtype, device="meta")
    return v


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
        if isinstance(value, torch.Tensor):  # shared until link() has named it, then its shape only
            saved[attr[len("_saved_"):]] = value.detach() if value.numel() > SHARE_ABOVE else value.detach().clone()
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


def record_flow(index: dict[Any, GraphNode], most: int) -> list[Any]:
    """Hook every node: what arrives (grad_outputs) and what leaves along each edge (grad_inputs);
    past ``most`` elements, their summaries."""
    handles = []
    for fn, entry in index.items():
        def hook(grad_inputs: tuple, grad_outputs: tuple, entry: GraphNode = entry) -> None:
            entry.grad_output = _keep(grad_outputs[0], most) if grad_outputs and grad_outputs[0] is not None else None
            if entry.node == "AccumulateGrad":
                entry.grad_output = entry.grad_output if entry.grad_output is not None else (
                    _keep(grad_inputs[0], most) if grad_inputs and grad_inputs[0] is not None else None)
            entry.grad_inputs = [_keep(g, most) if g is not None else None for g in grad_inputs]
        handles.append(fn.register_hook(hook))
    return handles


def torch_run(program: Program, leaves: dict[str, torch.Tensor], grad_output: torch.Tensor | None,
              limits: Limits = DEFAULT, on_forward: Callable[[Trace], None] | None = None) -> TorchRun:
    """One real run and its backward().  ``on_forward(trace)`` reads the forward values before
    backward (misconceptions: kinks, ties); after it the trace keeps only small values, and no
    recorded tensor past ``--max-json-values`` elements is kept whole, so a 10^7-element program
    holds little more than plain torch would."""
    most = limits.max_json_values
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
        statements.append(StatementRun(stmt.name, stmt.src, _snapshot(value, most, program.in_place),
                                       type(grad_fn).__name__ if grad_fn else None))

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
    for entry in graph:
        entry.saved = {k: _shape_only(v) for k, v in entry.saved.items()}
    if on_forward is not None:
        on_forward(trace)
    trace.forget_values(SHARE_ABOVE)
    del values  # the statements' tensors: retained (for .grad) or recorded; the rest may go
    notes: list[str] = []
    backward_ran = False
    if output.requires_grad and (output.numel() == 1 and output.dim() == 0 or grad_output is not None):
        if grad_output is not None and tuple(grad_output.shape) != tuple(output.shape):
            raise GradexplainError(Msg("--grad-output has shape {shape} but the output has shape {expected}: "
                                       "backward() needs a gradient of the output's shape",
                                       shape=list(grad_output.shape), expected=list(output.shape)))
        handles = record_flow(index, most)
        try:
            output.backward(grad_output.to(output.dtype) if grad_output is not None else None)
        except (RuntimeError, IndexError, ValueError) as e:  # torch's backward refuses (index_put with no index)
            raise GradexplainError(Msg("backward(): {reason}", reason=str(e).strip().splitlines()[0])) from None
        finally:
            for h in handles:
                h.remove()
        backward_ran = True
        for i, t in retained.items():
            statements[i].grad = _keep(t.grad, most) if t.grad is not None else None
    grads = {name: (_own(t) if t.grad is not None else None) for name, t in leaves.items() if t.requires_grad}
    return TorchRun(leaves, statements, output, graph, grads, backward_ran, notes, trace)


def _own(leaf: torch.Tensor) -> torch.Tensor:
    """A leaf's .grad, taken: the leaf lets go of it (a later backward() starts a new one rather
    than adding into the tensor the report holds), so a big gradient is not copied."""
    grad = leaf.grad.detach()
    if grad.numel() <= SHARE_ABOVE:
        return grad.clone()
    leaf.grad = None
    return grad


BATCH_WORK = 2**23  # elements one batched backward pass may hold (64 MiB of float64)


class JacobianTooCostly(Exception):
    """The Jacobian would cost more passes × elements than ``--max-jacobian`` (``Limits.max_jacobian``)."""


def torch_jacobian(program: Program, leaves: dict[str, torch.Tensor], limits: Limits = DEFAULT,
                   work: int | None = None) -> dict[str, torch.Tensor]:
    """d output / d input for every input that requires grad, shape ``out.shape + in.shape``.

    The cost is predicted before the work: a Jacobian takes one pass per output entry (reverse
    mode) or one per input entry (forward mode), each touching every element the program makes
    (its footprint, measured on one run).  The cheaper mode is used — ``x*ones(100000)`` is one
    forward-mode pass, not 10^5 backward passes — reverse passes are batched in chunks of
    :data:`BATCH_WORK` elements, and past ``work`` elements in all (default ``limits.max_jacobian``)
    :class:`JacobianTooCostly` is raised instead of running for minutes."""
    work = limits.max_jacobian if work is None else work
    names = [n for n, t in leaves.items() if t.requires_grad]
    fixed = {n: t.detach() for n, t in leaves.items() if not t.requires_grad}
    footprint = [0]

    def count(_node: Node, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            footprint[0] += value.numel()

    def f(*xs: torch.Tensor, on_value: Callable[[Node, Any], None] | None = None) -> torch.Tensor:
        consts = {n: t.clone() for n, t in fixed.items()} if program.in_place else fixed  # may be changed in place
        env = dict(consts, **{n: x.clone() for n, x in zip(names, xs)})
        out = run_program(program, env, limits, on_value=on_value)[program.output]
        return out if isinstance(out, torch.Tensor) else torch.tensor(out, dtype=torch.get_default_dtype())

    primals = [leaves[n].detach().requires_grad_(True) for n in names]
    with torch.enable_grad():
        out = f(*primals, on_value=count)
    per_pass = max(footprint[0] + sum(p.numel() for p in primals), 1)
    n_in, n_out = sum(p.numel() for p in primals), out.numel()
    if not out.requires_grad:  # a constant output: nothing to differentiate
        return {n: torch.zeros(tuple(out.shape) + tuple(p.shape), dtype=out.dtype) for n, p in zip(names, primals)}
    if min(n_in, n_out) * per_pass > work:
        raise JacobianTooCostly(Msg("{passes:,} passes over {per_pass:,} elements each", passes=min(n_in, n_out),
                                    per_pass=per_pass))
    if n_in < n_out:
        try:
            return _forward_mode(f, names, primals, out.shape)
        except (RuntimeError, NotImplementedError):  # an op without a forward-mode formula
            pass
    return _reverse_mode(out, names, primals, max(1, BATCH_WORK // per_pass))


def _forward_mode(f: Callable[..., torch.Tensor], names: list[str], primals: list[torch.Tensor],
                  out_shape: torch.Size) -> dict[str, torch.Tensor]:
    """One dual-number run per input entry: column j of the Jacobian is the tangent of the output."""
    import torch.autograd.forward_ad as fwAD  # heavy

    base = [p.detach() for p in primals]
    jac: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for k, name in enumerate(names):
            cols = []
            for j in range(base[k].numel()):
                tangent = torch.zeros_like(base[k]).reshape(-1)
                tangent[j] = 1
                with fwAD.dual_level():
                    xs = [fwAD.make_dual(b, tangent.reshape(b.shape)) if i == k else b for i, b in enumerate(base)]
                    col = fwAD.unpack_dual(f(*xs)).tangent
                cols.append(torch.zeros(out_shape, dtype=base[k].dtype) if col is None else col.detach().clone())
            stacked = torch.stack(cols, dim=-1) if cols else torch.zeros(tuple(out_shape) + (0,), dtype=base[k].dtype)
            jac[name] = stacked.reshape(tuple(out_shape) + tuple(base[k].shape))
    return jac


def _reverse_mode(out: torch.Tensor, names: list[str], primals: list[torch.Tensor],
                  chunk: int) -> dict[str, torch.Tensor]:
    """Rows of the Jacobian by batched backward passes over chunks of the identity."""
    n_out = out.numel()
    rows: list[list[torch.Tensor]] = [[] for _ in names]
    for start in range(0, n_out, chunk):
        stop = min(start + chunk, n_out)
        eye = torch.zeros(stop - start, n_out, dtype=out.dtype)
        eye[torch.arange(stop - start), torch.arange(start, stop)] = 1
        seeds = eye.reshape((stop - start,) + tuple(out.shape))
        try:
            grads = torch.autograd.grad(out, primals, grad_outputs=seeds, retain_graph=True, allow_unused=True,
                                        is_grads_batched=True)
        except RuntimeError:  # an op without a batching rule: one backward pass per row
            per_row = [torch.autograd.grad(out, primals, grad_outputs=s, retain_graph=True, allow_unused=True)
                       for s in seeds]
            grads = tuple(None if per_row[0][k] is None else torch.stack([r[k] for r in per_row])
                          for k in range(len(primals)))
        for k, g in enumerate(grads):
            rows[k].append(torch.zeros((stop - start,) + tuple(primals[k].shape), dtype=out.dtype) if g is None
                           else g.detach().clone())
    return {n: (torch.cat(rows[k]) if rows[k] else torch.zeros((0,) + tuple(primals[k].shape), dtype=out.dtype))
            .reshape(tuple(out.shape) + tuple(primals[k].shape)) for k, n in enumerate(names)}
