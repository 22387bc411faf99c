"""Second derivatives (``eval --hessian``, ``--hvp V``): torch double backward beside SymPy.

**torch.**  ``torch.autograd.grad(out, inputs, create_graph=True)`` returns gradients that are
themselves graph outputs (their own ``grad_fn`` chain, recorded while backward ran).
Differentiating every entry of ``grad_a`` again w.r.t. ``b`` gives the block ``H_ab`` (one
batched backward pass over the rows of an identity matrix); ``grad(grad · v)`` gives ``H v``.

**SymPy.**  The closed-form gradient ``G_a`` (``grads.a.symbolic.expr``, read back as EXPR) is
an expression like any other, so the same reverse-mode engine differentiates it again: the
gradient of ``(G_a * v).sum()`` w.r.t. ``b`` is ``R(v)[j] = Σ_i v[i] ∂G_a[i]/∂b[j]``, linear in
the direction ``v``.  Summed over the inputs that is the printed Hessian-vector product (``4*v``
for ``2*dot(x,x)``).  Reading off the matrix of that linear map (:class:`LinearMap`) gives the
block in closed form (``A + A.T``, ``4*eye(3)``), driven by the registry's ``Linear`` declarations;
where that fails it is written per element.

**Numbers.**  Central differences of the torch gradient are the third opinion for small inputs.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from .autograd import make_leaves, run_program, walk_graph
from .compare import agrees, compare
from .errors import GradexplainError, LimitError
from .execute import Shapes, evaluate
from .formula import read_formula
from .i18n import Msg, N_
from .ir import Call, Const, Input, Node, Program, Slice, substitute, walk
from .numeric import STEP
from .ops import REGISTRY, Linear
from .phrases import message_of, reason_detail, symbolic_reason
from .printer import to_text
from .report import HessianBlock, HessianInfo, HvpEntry, Report, Symbolic
from .symbolic import NoClosedForm, Simplifier, SymbolicTimeout, budget, gradients, jacobian_text, printable
from .values import parse_value, split_assignment

NUMERIC_MAX = 256  # input elements (all inputs together) for the finite-difference Hessian
EIGEN_MAX = 32  # rows of a square matrix whose eigenvalues are shown


# =========================================================================== entry point


def second_order(report: Report, program: Program, leaves: dict[str, torch.Tensor], wrt: list[str],
                 seed: torch.Tensor | None, opts: Any, tol: float) -> list[bool | None]:
    """Fill the Report's ``hessian`` (and ``hessian_info``) and/or ``hvp``; return their agreement flags."""
    directions = read_directions(opts.hvp, wrt, leaves, opts.limits) if opts.hvp else {}
    if opts.hessian:
        check_size(leaves, wrt, opts.limits.max_hessian)
    torch_side = TorchSecondOrder(program, leaves, wrt, seed, opts.limits)
    symbolic_side = SymbolicSecondOrder(report, leaves, wrt, opts.limits)
    flags: list[bool | None] = []
    if opts.hessian:
        blocks = hessian_blocks(torch_side, symbolic_side, tol, opts.numeric, report.notes)
        report.hessian = blocks
        report.hessian_info = torch_side.info(blocks, tol)
        flags += [b.agree for row in blocks.values() for b in row.values()]
    if directions:
        report.hvp = hvp_entries(torch_side, symbolic_side, directions, tol, opts.numeric, report.notes)
        flags += [e.agree for e in report.hvp.values()]
    return flags


def check_size(leaves: dict[str, torch.Tensor], wrt: list[str], limit: int) -> None:
    n = sum(leaves[a].numel() for a in wrt)
    if n * n > limit:
        raise LimitError(Msg("the Hessian would have {entries:,} entries ({n:,} input elements squared), over the "
                             "limit of {limit:,} (raise it with --max-hessian, or use --hvp V for Hessian-vector "
                             "products without building the matrix)", entries=n * n, n=n, limit=limit))


def read_directions(texts: list[str], wrt: list[str], leaves: dict[str, torch.Tensor],
                    limits: Any) -> dict[str, torch.Tensor]:
    """``--hvp V`` (the only input that requires grad) or ``--hvp NAME=V`` per input."""
    directions: dict[str, torch.Tensor] = {}
    for text in texts:
        head = text.partition("=")[0].strip()
        if "=" in text and head.isidentifier():
            name, value = split_assignment(text)
        elif len(wrt) == 1:
            name, value = wrt[0], text
        else:
            raise GradexplainError(Msg("--hvp {text}: several inputs require grad ({names}); say which with "
                                       "--hvp NAME=V", text=text, names=", ".join(wrt)))
        if name not in leaves:
            raise GradexplainError(Msg("--hvp {name}: no input of that name", name=name))
        if name not in wrt:
            raise GradexplainError(Msg("--hvp {name}: {name} is --const, so it has no second derivatives", name=name))
        if name in directions:
            raise GradexplainError(Msg("--hvp {name} is given twice", name=name))
        v = parse_value(value, limits, leaves[name].dtype).tensor
        if tuple(v.shape) != tuple(leaves[name].shape):
            if v.numel() != 1 or leaves[name].dim() != 0:
                raise GradexplainError(Msg("--hvp {name}: the direction has shape {shape} but {name} has shape "
                                           "{expected}", name=name, shape=list(v.shape),
                                           expected=list(leaves[name].shape)))
            v = v.reshape(())
        directions[name] = v
    return directions


# ================================================================================ torch


class TorchSecondOrder:
    """Double backward on one fresh run of the program."""

    def __init__(self, program: Program, leaves: dict[str, torch.Tensor], wrt: list[str],
                 seed: torch.Tensor | None, limits: Any):
        self.program, self.wrt, self.seed, self.limits = program, wrt, seed, limits
        self.values = {n: t.detach() for n, t in leaves.items()}
        self.leaves = make_leaves(self.values, set(leaves) - set(wrt), leaves[wrt[0]].dtype)
        self.grads = first_grads(program, self.leaves, wrt, seed, limits, create_graph=True)

    def block_rows(self, a: str) -> dict[str, torch.Tensor]:
        """``H_ab`` for every b: ``grad_a`` differentiated again, one batched pass over eye's rows."""
        g, shape = self.grads[a], tuple(self.values[a].shape)
        zero = {b: torch.zeros(shape + tuple(self.values[b].shape), dtype=g.dtype) for b in self.wrt}
        n = g.numel()
        if not g.requires_grad or not n:
            return zero  # the gradient is a constant (no graph to differentiate), or empty (no rows)
        eye = torch.eye(n, dtype=g.dtype).reshape((n,) + shape)
        targets = [self.leaves[b] for b in self.wrt]
        try:
            rows = torch.autograd.grad(g, targets, grad_outputs=eye, retain_graph=True, allow_unused=True,
                                       is_grads_batched=True)
        except RuntimeError:  # an op without a batching rule: one backward pass per row
            per_row = [torch.autograd.grad(g, targets, grad_outputs=eye[i], retain_graph=True,
                                           materialize_grads=True) for i in range(n)]
            rows = tuple(torch.stack([r[k] for r in per_row]) for k in range(len(targets)))
        # clone: a batched grad through a piecewise-constant derivative (abs, relu) comes back as an
        # expanded zero whose .tolist() raises "tensor with unallocated storage" (torch 2.13)
        return {b: r.detach().reshape(zero[b].shape).clone() if r is not None else zero[b]
                for b, r in zip(self.wrt, rows)}

    def hvp(self, directions: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``grad(Σ_a grad_a · v_a, b)`` — the matrix is never built."""
        pairs = [(self.grads[a], v.to(self.grads[a].dtype)) for a, v in directions.items()
                 if self.grads[a].requires_grad]
        if not pairs:
            return {b: torch.zeros_like(self.values[b]) for b in self.wrt}
        hv = torch.autograd.grad([g for g, _ in pairs], [self.leaves[b] for b in self.wrt],
                                 grad_outputs=[v for _, v in pairs], retain_graph=True, materialize_grads=True)
        return {b: h.detach().clone() for b, h in zip(self.wrt, hv)}  # clone: see block_rows

    def info(self, blocks: dict[str, dict[str, HessianBlock]], tol: float) -> HessianInfo:
        names = {id(t): n for n, t in self.leaves.items()}
        graphs = {a: [{"id": n.id, "node": n.node, "next": n.next, "variable": n.variable}
                      for n in walk_graph(self.grads[a], names, {})[0]] for a in self.wrt}
        info = HessianInfo(grad_graphs=graphs, order=list(self.wrt))
        full = full_matrix(blocks, self.wrt, self.values)
        if full is not None and full.shape[0] <= EIGEN_MAX:
            info.matrix, info.eigenvalues = full, eigenvalues(full)
            info.definiteness = definiteness(info.eigenvalues, tol)
        return info


def first_grads(program: Program, leaves: dict[str, torch.Tensor], wrt: list[str], seed: torch.Tensor | None,
                limits: Any, create_graph: bool = False) -> dict[str, torch.Tensor]:
    """The gradients of one run (zeros for inputs the output does not reach)."""
    out = run_program(program, leaves, limits)[program.output]
    grads = torch.autograd.grad(out, [leaves[n] for n in wrt], grad_outputs=seed.to(out.dtype) if seed is not None
                                else None, create_graph=create_graph, materialize_grads=True)
    return dict(zip(wrt, grads))


def numeric_hessian(program: Program, values: dict[str, torch.Tensor], wrt: list[str], seed: torch.Tensor | None,
                    limits: Any) -> dict[str, dict[str, torch.Tensor]]:
    """``H_ab[:, j] ≈ (grad_a(b + h e_j) - grad_a(b - h e_j)) / 2h``, in float64."""
    env = {n: v.double() for n, v in values.items()}
    cols: dict[str, dict[str, torch.Tensor]] = {a: {} for a in wrt}
    for b in wrt:
        flat = env[b].reshape(-1)
        h = STEP * (1 + flat.abs())
        per_j = []
        for j in range(flat.numel()):
            shift = torch.zeros_like(flat)
            shift[j] = h[j]
            plus = _grads_at(program, dict(env, **{b: (flat + shift).reshape(env[b].shape)}), wrt, seed, limits)
            minus = _grads_at(program, dict(env, **{b: (flat - shift).reshape(env[b].shape)}), wrt, seed, limits)
            per_j.append({a: (plus[a] - minus[a]) / (2 * h[j]) for a in wrt})
        for a in wrt:
            stacked = torch.stack([p[a] for p in per_j], dim=-1) if per_j else torch.zeros(env[a].shape + (0,))
            cols[a][b] = stacked.reshape(tuple(env[a].shape) + tuple(env[b].shape))
    return cols


def numeric_hvp(program: Program, values: dict[str, torch.Tensor], wrt: list[str], seed: torch.Tensor | None,
                directions: dict[str, torch.Tensor], limits: Any) -> dict[str, torch.Tensor]:
    """``(grad(x + h v) - grad(x - h v)) / 2h``: two gradient runs, whatever the size."""
    env = {n: v.double() for n, v in values.items()}
    scale = max(float(v.abs().max()) if v.numel() else 0.0 for v in directions.values()) or 1.0
    h = STEP * (1 + max(float(env[a].abs().max()) if env[a].numel() else 0.0 for a in directions)) / scale
    plus = _grads_at(program, dict(env, **{a: env[a] + h * v.double() for a, v in directions.items()}), wrt, seed,
                     limits)
    minus = _grads_at(program, dict(env, **{a: env[a] - h * v.double() for a, v in directions.items()}), wrt, seed,
                      limits)
    return {b: (plus[b] - minus[b]) / (2 * h) for b in wrt}


def _grads_at(program: Program, env: dict[str, torch.Tensor], wrt: list[str], seed: torch.Tensor | None,
              limits: Any) -> dict[str, torch.Tensor]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        leaves = make_leaves(env, set(env) - set(wrt), torch.float64)
        grads = first_grads(program, leaves, wrt, seed.double() if seed is not None else None, limits)
        return {n: g.detach() for n, g in grads.items()}
    finally:
        torch.set_default_dtype(previous)


# ================================================================================ SymPy


class SymbolicSecondOrder:
    """The gradient formulas of the report, differentiated again by the same engine."""

    def __init__(self, report: Report, leaves: dict[str, torch.Tensor], wrt: list[str], limits: Any):
        self.leaves, self.wrt, self.limits = leaves, wrt, limits
        self.formulas: dict[str, Node | None] = {}
        self.inputs: dict[str, Node] = {n: Input(n) for n in leaves}
        self.reasons: dict[str, str] = {}
        for a in wrt:
            entry = report.grads.get(a)
            text = entry.symbolic.expr if entry is not None and entry.symbolic is not None else None
            if text is None:
                why = reason_detail(entry.reason) if entry is not None and entry.reason else Msg("none")
                self.reasons[a] = Msg("the gradient of {name} has no formula to differentiate again ({why})", name=a,
                                      why=why)
                self.formulas[a] = None
            else:
                # one shared Input node per name: reverse mode tells inputs apart by node, not by name
                self.formulas[a] = substitute(read_formula(text, limits), self.inputs)
        taken = set(leaves)
        self.v_names = {a: direction_name(a, taken, len(wrt) == 1) for a in wrt}

    def env(self, directions: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return dict(self.leaves, **{self.v_names[a]: v for a, v in directions.items()})

    def directional(self, directions: dict[str, torch.Tensor]) -> tuple[dict[str, Any], Shapes]:
        """``∂/∂b Σ_a (G_a * v_a).sum()`` for every b: the Hessian-vector product as formulas in ``v``."""
        env = self.env(directions)
        shapes = Shapes(env, self.limits)
        missing = [a for a in directions if self.formulas[a] is None]
        if missing:
            raise NoFormula(self.reasons[missing[0]])
        terms = [Call("sum", (Call("mul", (self.formulas[a], Input(self.v_names[a]))),)) for a in directions]
        total = terms[0]
        for t in terms[1:]:
            total = Call("add", (total, t))
        input_shapes = {n: tuple(t.shape) for n, t in env.items()}
        return gradients(total, Const(1), self.wrt, shapes, input_shapes, self.limits), shapes

    def block_row(self, a: str) -> dict[str, Symbolic]:
        """``H_ab`` for every b: the matrix of ``v ↦ R(v)``, closed form or else per element."""
        v = torch.zeros_like(self.leaves[a])
        directional, shapes = self.directional({a: v})
        simplify = Simplifier(shapes)
        row: dict[str, Symbolic] = {}
        for b in self.wrt:
            target = tuple(self.leaves[a].shape) + tuple(self.leaves[b].shape)
            try:
                node = simplify(LinearMap(self.v_names[a], shapes)(directional[b].expr))
                if not printable(node):
                    raise NoClosedForm("not printable")
                text, note = to_text(node), Msg("closed form")
            except NoClosedForm:
                input_shapes = {n: tuple(t.shape) for n, t in self.leaves.items()}
                text = jacobian_text(self.formulas[a], b, input_shapes, self.limits)
                note = Msg("written per element: the Jacobian of the gradient formula")
            value = evaluate(read_formula(text, self.limits), self.leaves, self.limits)
            row[b] = Symbolic(text, value.to(self.leaves[a].dtype).reshape(target), note=note)
        return row


class NoFormula(Exception):
    """A gradient formula is missing (symbolic budget, no closed form): no second derivative either."""


def direction_name(a: str, taken: set[str], only: bool) -> str:
    """``v`` for the only input, ``v_x`` per input otherwise; never an input's name."""
    name = "v" if only else f"v_{a}"
    while name in taken:
        name += "_"
    taken.add(name)
    return name


class LinearMap:
    """The matrix ``K[i..., j...] = ∂f[j...]/∂v[i...]`` of a formula ``f`` that is linear in ``v``.

    A generic driver over the registry's :class:`~gradexplain.ops.Linear` declarations (JAX's
    ``deflinear``): each node's ``K`` has the direction's dims in front of the node's own, and an op
    declared linear maps its arguments' ``K`` to its own by being applied to them with that leading
    batch of dims: ``A.T @ v`` ↦ ``eye(n) @ A`` (= A), ``v * s`` ↦ ``eye(n) * s`` (a diagonal).  An op
    without a VJP rule is a constant here (``ones_like``, ``sign``); any other op of the direction is
    :class:`NoClosedForm` (the block is then written per element).
    """

    def __init__(self, v: str, shapes: Shapes):
        self.v, self.shapes = v, shapes
        self.lead: tuple[int, ...] = ()
        self.memo: dict[int, Node | None] = {}
        self.alive: list[Node] = []

    def __call__(self, root: Node) -> Node:
        self.lead = self.shapes.shape(Input(self.v))
        full = self.lead + self.shapes.shape(root)
        for n in walk(root):
            self.alive.append(n)
            self.memo[id(n)] = self.rule(n)
        k = self.memo[id(root)]
        if k is None:
            return Call("zeros", (), {"shape": full}) if full else Const(0)
        if self.shapes.shape(k) != full:
            raise NoClosedForm(Msg("linear map of shape {shape}, expected {expected}", shape=list(self.shapes.shape(k)),
                                   expected=list(full)))
        return k

    def rule(self, n: Node) -> Node | None:
        if isinstance(n, Input):
            return self.identity() if n.name == self.v else None
        if not isinstance(n, Call):
            return None
        ks = [self.memo[id(a)] for a in n.args]
        if all(k is None for k in ks):
            return None
        spec = REGISTRY[n.op]
        names = [f"t{i}" for i in range(len(n.args))] if spec.variadic else list(spec.tensor_args[: len(n.args)])
        moving = [name for name, k in zip(names, ks) if k is not None]
        linear = spec.linear
        if linear is None and not spec.rules and spec.variadic_rule is None:
            return None  # no gradient at all: a constant of the direction (ones_like(v), sign(v))
        if linear is None or not all(linear.covers(name) for name in moving):
            raise NoClosedForm(Msg("{op} of the direction has no closed-form matrix here", op=n.op))
        if len(moving) > 1 and not linear.joint:
            raise NoClosedForm(Msg("{op} of the direction with itself is not linear", op=n.op))
        if linear.batch is None:
            raise NoClosedForm(Msg("{op} of the direction has no batched form", op=n.op))
        k = self.batched(n, ks, names, linear)
        if k is not None and self.shape(k) != self.lead + self.shape(n):  # broadcast by the op's other arguments
            k = Call("mul", (k, Call("ones", (), {"shape": self.lead + self.shape(n)})))
        return k

    def batched(self, n: Call, ks: list[Node | None], names: list[str], linear: Linear) -> Node | None:
        """The op applied to its arguments' ``K`` with the direction's dims in front."""
        batch = linear.batch
        if callable(batch):
            return batch(n, ks, self.lead, self.shape)
        if batch == "reshape":
            return Call("reshape", (ks[0],), {"shape": self.lead + self.shape(n)})
        if batch == "broadcast":  # aligned here, then broadcast to the output's shape by rule()
            return self.align(ks[0], n.args[0], n)
        if batch == "key":
            return Call(n.op, (ks[0], *n.args[1:]),  # index tensors (Slots) stay where they are
                        dict(n.params, key=(Slice(),) * len(self.lead) + tuple(n.params["key"])))
        zero = Const(0) if batch == "elementwise" else None
        # a pure sum (add, sub) broadcasts each summand to the output's shape itself; where's cond does it
        full = linear.joint and all(linear.covers(name) for name in names)
        args = []
        for name, arg, k in zip(names, n.args, ks):
            if k is not None:
                args.append(self.align(k, arg, n, full=full) if batch == "elementwise" else k)
            elif linear.joint and linear.covers(name):  # the direction's part of a sum: zero
                args.append(zero if zero is not None else Call("zeros", (), {"shape": self.lead + self.shape(arg)}))
            else:
                args.append(arg)
        if batch == "elementwise":
            return Call(n.op, tuple(args), n.params)
        assert batch == "dims", batch
        params = self.shift_dims(n, linear)
        if params is None:
            return ks[0]  # a reduction over the dims of a 0-d tensor: the identity
        return Call(n.op, tuple(args), params)

    def shift_dims(self, n: Call, linear: Linear) -> dict[str, Any] | None:
        """``n``'s params with its dim-valued ones moved past the direction's dims (None = all dims)."""
        ref = n if linear.dims_of == "out" else n.args[0]
        nd, lead = len(self.shape(ref)), len(self.lead)
        params = dict(n.params)
        for name in linear.dims:
            dim = params.get(name)
            if dim is None:
                dims = tuple(range(nd))
                if not dims:
                    return None
                params.pop("keepdim", None)  # keepdim means nothing without a dim
            else:
                dims = tuple(d % nd for d in (dim if isinstance(dim, (tuple, list)) else (dim,)))
            shifted = tuple(d + lead for d in dims)
            params[name] = shifted if len(shifted) > 1 else shifted[0]
        return params

    def identity(self) -> Node:
        n = math.prod(self.lead)
        if not self.lead:
            return Const(1)
        eye = Call("eye", (), {"n": n})
        return eye if len(self.lead) == 1 else Call("reshape", (eye,), {"shape": self.lead + self.lead})

    def shape(self, n: Node) -> tuple[int, ...]:
        return self.shapes.shape(n)

    def align(self, k: Node, arg: Node, out: Node, full: bool = False) -> Node:
        """``k`` (for ``arg``) reshaped so that it broadcasts like ``arg`` does in ``out``; with ``full``
        (a summand of a joint op) broadcast all the way to the output's shape."""
        sa, so = self.shape(arg), self.shape(out)
        if self.lead and len(sa) < len(so):
            k = Call("reshape", (k,), {"shape": self.lead + (1,) * (len(so) - len(sa)) + sa})
        if full and self.shape(k) != self.lead + so:
            k = Call("mul", (k, Call("ones", (), {"shape": self.lead + so})))
        return k


# ========================================================================== the sections


def _outside_domain(notes: list[str], what: str, e: GradexplainError) -> None:
    """``what``: a template (N_) naming the estimate."""
    notes.append(Msg("no finite-difference {what}: a step of ~1e-5 leaves the domain ({why})", what=Msg(what),
                     why=e.message))


def hessian_blocks(torch_side: TorchSecondOrder, symbolic_side: SymbolicSecondOrder, tol: float,
                   numeric: bool, notes: list[str]) -> dict[str, dict[str, HessianBlock]]:
    wrt = torch_side.wrt
    fd = None
    if numeric and sum(torch_side.values[a].numel() for a in wrt) <= NUMERIC_MAX:
        try:
            fd = numeric_hessian(torch_side.program, torch_side.values, wrt, torch_side.seed, torch_side.limits)
        except GradexplainError as e:
            _outside_domain(notes, N_("Hessian"), e)
    rows = {a: torch_side.block_rows(a) for a in wrt}
    sym: dict[str, dict[str, Symbolic]] = {}
    reasons: dict[str, str] = {}
    try:
        with budget(symbolic_side.limits.symbolic_timeout):
            for a in wrt:
                try:
                    sym[a] = symbolic_side.block_row(a)
                except (NoFormula, NoClosedForm, NotImplementedError) as e:
                    reasons[a] = symbolic_reason(Msg("skipped — {why}", why=message_of(e)))
    except SymbolicTimeout as e:
        reasons = {a: symbolic_reason(Msg("skipped — {why}", why=message_of(e))) for a in wrt if a not in sym}
    blocks: dict[str, dict[str, HessianBlock]] = {a: {} for a in wrt}
    for a in wrt:
        for b in wrt:
            s = sym.get(a, {}).get(b)
            ok, diff = compare(rows[a][b], s.value, tol) if s is not None else (None, None)
            num = fd[a][b] if fd is not None else None
            num_diff = compare(rows[a][b], num, tol).max_abs_diff if num is not None else None
            blocks[a][b] = HessianBlock(rows[a][b], s, diff, ok, num, num_diff, reasons.get(a))
    for a in wrt:
        describe_diagonal(blocks[a][a], tol)
    return blocks


def hvp_entries(torch_side: TorchSecondOrder, symbolic_side: SymbolicSecondOrder, directions: dict[str, torch.Tensor],
                tol: float, numeric: bool, notes: list[str]) -> dict[str, HvpEntry]:
    hv = torch_side.hvp(directions)
    fd: dict[str, torch.Tensor] = {}
    try:
        fd = numeric_hvp(torch_side.program, torch_side.values, torch_side.wrt, torch_side.seed, directions,
                         torch_side.limits) if numeric else {}
    except GradexplainError as e:
        _outside_domain(notes, N_("Hessian-vector product"), e)
    formulas: dict[str, Any] = {}
    reason = None
    try:
        with budget(symbolic_side.limits.symbolic_timeout):
            formulas, _ = symbolic_side.directional(directions)
    except (NoFormula, NoClosedForm, NotImplementedError, SymbolicTimeout) as e:
        reason = symbolic_reason(Msg("skipped — {why}", why=message_of(e)))
    env = symbolic_side.env(directions)
    entries: dict[str, HvpEntry] = {}
    for b in torch_side.wrt:
        sg = formulas.get(b)
        sym = None
        if sg is not None and sg.expr is not None:
            value = evaluate(sg.expr, env, symbolic_side.limits).to(hv[b].dtype).reshape(hv[b].shape)
            sym = Symbolic(sg.text, value, note=None if printable(sg.expr) else sg.note)
        ok, diff = compare(hv[b], sym.value, tol) if sym is not None else (None, None)
        entries[b] = HvpEntry(hv[b], sym, diff, ok, fd.get(b), reason if sym is None else None, directions.get(b))
    return entries


def as_matrix(t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """A block of shape a.shape + b.shape as rows × cols (both given: reshape(0, -1) is ambiguous)."""
    return t.double().reshape(rows, cols)


def describe_diagonal(block: HessianBlock, tol: float) -> None:
    """A diagonal block ``H_aa`` is square: note whether it is symmetric, and its eigenvalues when small."""
    n = int(math.isqrt(block.torch.numel()))
    if n < 2:
        return  # a single number: nothing to say beyond its sign
    m = as_matrix(block.torch, n, n)
    block.symmetric = agrees(m, m.T, tol)
    if n <= EIGEN_MAX:
        block.eigenvalues = eigenvalues(m)


def full_matrix(blocks: dict[str, dict[str, HessianBlock]], wrt: list[str],
                values: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """All blocks as one square matrix over the flattened inputs (None if a block is missing)."""
    if any(blocks[a][b].torch is None for a in wrt for b in wrt):
        return None
    rows = [torch.cat([as_matrix(blocks[a][b].torch, values[a].numel(), values[b].numel()) for b in wrt], dim=1) for a in wrt]
    return torch.cat(rows, dim=0)


def eigenvalues(m: torch.Tensor) -> list[float]:
    """Of the symmetric part (what a quadratic form sees), ascending."""
    return [float(e) for e in torch.linalg.eigvalsh((m + m.T) / 2)]


def definiteness(eigs: list[float], tol: float) -> str:
    """Convex, concave or a saddle at this point, from the signs of the eigenvalues."""
    scale = tol * (1 + max((abs(e) for e in eigs), default=0.0))
    pos, neg = sum(e > scale for e in eigs), sum(e < -scale for e in eigs)
    if neg == 0:
        return (Msg("positive definite: locally strictly convex here") if pos == len(eigs) else
                Msg("positive semidefinite: convex along every direction here, flat along some"))
    if pos == 0:
        return (Msg("negative definite: locally strictly concave here") if neg == len(eigs) else
                Msg("negative semidefinite: concave along every direction here, flat along some"))
    return Msg("indefinite: a saddle point shape here (convex along some directions, concave along others)")

