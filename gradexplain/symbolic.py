"""The symbolic engine: exact, closed-form, shape-generic gradients as IR expressions.

1. **Reverse mode over our IR.**  Starting from the seed (``1`` or the ``--grad-output``
   constant) we walk the program backwards; at each op we instantiate the registry's rule
   (EXPR text such as ``g @ b.T``) with the node's arguments, sum the result back to the
   argument's shape where broadcasting expanded it, and add contributions per variable.  The
   result is an IR expression whose size follows the program, never the data.
2. **Simplify with SymPy where SymPy is strong.**  Maximal elementwise subtrees become scalar
   SymPy expressions (each tensor a commutative real symbol, valid because those ops act
   elementwise with broadcasting); everything else (``W @ x``, ``x.sum()``) is an opaque symbol.
   ``2*x + 2*x`` becomes ``4*x``.  The result is converted back to IR, and where SymPy dropped a
   shape (``x - x`` → ``0``) the shape is restored with ``zeros_like``/``ones_like``.
3. **Per element only where needed.**  Gradients through indexing have no spelling in EXPR, so
   they are written per element with ``stack([...])`` (evaluated over numpy object arrays of
   SymPy scalars), within a size limit.  The same per-element evaluation gives symbolic
   Jacobians and an independent check.
"""
from __future__ import annotations

import functools
import math
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterator

import sympy

from .errors import GradexplainError
from .execute import Shapes
from .ir import Call, Const, Input, Node, nested_text, walk
from .i18n import Msg
from .limits import DEFAULT, Limits, run_left
from .ops import REGISTRY, RuleContext
from .ops.spec import sympy_function
from .phrases import message_of
from .printer import to_text
from .rules import rule_node

UNPRINTABLE = {name for name, spec in REGISTRY.items() if not spec.printable}  # index_grad: no EXPR spelling


class SymbolicTimeout(Exception):
    """The symbolic budget (--symbolic-timeout) ran out."""


class NoClosedForm(Exception):
    """The gradient cannot be written as EXPR within the limits."""


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Raise :class:`SymbolicTimeout` inside SymPy when ``seconds`` of wall time pass, or the run's
    whole budget (:func:`gradexplain.limits.run_budget`) is spent, whichever comes first."""
    total = seconds
    run = run_left()
    if run is not None:
        left, total = run
        if left <= 0:
            raise SymbolicTimeout(Msg("symbolic work exceeded {total:g} s (raise it with --symbolic-timeout)", total=total))
        seconds = min(seconds, left) if seconds > 0 else left
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise SymbolicTimeout(Msg("symbolic work exceeded {total:g} s (raise it with --symbolic-timeout)", total=total))

    try:
        previous = signal.signal(signal.SIGALRM, on_alarm)
    except ValueError:  # not the main thread: no budget enforcement possible
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# =============================================================================== rules




# ============================================================================ reverse mode


def add_all(terms: list[Node]) -> Node:
    total = terms[0]
    for t in terms[1:]:
        total = Call("add", (total, t))
    return total


def unbroadcast(contrib: Node, arg: Node, shapes: Shapes) -> Node:
    """Sum a contribution back to its argument's shape (the gradient of broadcasting)."""
    shape, target = shapes.shape(contrib), shapes.shape(arg)
    if shape == target:
        return contrib
    lead = len(shape) - len(target)
    node = contrib
    if lead > 0:
        node = Call("sum", (node,), {"dim": tuple(range(lead)) if lead > 1 else 0})
    kept = [i for i, (s, t) in enumerate(zip(shape[lead:], target)) if t == 1 and s != 1]
    if kept:
        node = Call("sum", (node,), {"dim": tuple(kept) if len(kept) > 1 else kept[0], "keepdim": True})
    if lead < 0 or shapes.shape(node) != target:  # a scalar flowing into a bigger argument
        node = Call("mul", (node, Call("ones_like", (arg,))))
    return node


def reverse_mode(root: Node, seed: Node, wrt: list[str], shapes: Shapes,
                 adjoints: dict[int, Node] | None = None) -> dict[str, Node | None]:
    """d(seed · root)/d(input) for each name in ``wrt``, as unsimplified IR (None: no path).

    The result is a DAG: each node's adjoint is built once and shared by every rule that uses it.
    ``adjoints``, when given, receives that adjoint per forward node id (what the let-form program
    of :mod:`gradexplain.program` names ``g_h3``)."""
    order = list(walk(root))
    depends: set[int] = set()
    for n in order:
        if isinstance(n, Input) and n.name in wrt:
            depends.add(id(n))
        elif isinstance(n, Call) and any(id(a) in depends for a in n.args):
            depends.add(id(n))
    grads: dict[int, list[Node]] = {id(root): [seed]}
    result: dict[str, Node | None] = {name: None for name in wrt}
    for n in reversed(order):
        contribs = grads.pop(id(n), None)
        if not contribs or id(n) not in depends:
            continue
        g = add_all(contribs)
        if adjoints is not None:
            adjoints[id(n)] = g
        if isinstance(n, Input):  # separately built formulas may hold several nodes of one name
            previous = result[n.name]
            result[n.name] = g if previous is None else Call("add", (previous, g))
            continue
        if not isinstance(n, Call):
            continue
        spec = REGISTRY[n.op]
        names = [f"t{i}" for i in range(len(n.args))] if spec.variadic else list(spec.tensor_args[: len(n.args)])
        nodes = dict(zip(names, n.args), g=g, out=n)
        ctx = RuleContext(dict(n.params), {k: shapes.shape(v) for k, v in zip(names, n.args)},
                          {k: shapes.dtype(v) for k, v in zip(names, n.args)}, shapes.shape(n), nodes)
        for i, (name, arg) in enumerate(zip(names, n.args)):
            if id(arg) not in depends:
                continue
            contrib = contribution(n.op, name, i, ctx, arg, shapes)
            if contrib is not None:
                grads.setdefault(id(arg), []).append(contrib)
    return result


def contribution(op: str, name: str, index: int, ctx: RuleContext, arg: Node, shapes: Shapes) -> Node | None:
    """The rule's contribution, summed back to the argument's shape.  For an argument or an output
    with no elements, ``zeros_like`` where the rule breaks down (a mean over 0 classes, a dim an
    empty legacy ``[0]`` lacks, a weight whose reshape only an empty input lets torch skip): the
    gradient of an empty tensor is empty, and nothing flows back from an empty output, whatever
    the formula, so this is exact.  (``arg`` is given: an op's argument may be named ``g`` itself,
    which ``ctx.nodes`` maps to the adjoint.)"""
    try:
        contrib = rule_node(op, name, index, ctx)
        return None if contrib is None else unbroadcast(contrib, arg, shapes)
    except (ArithmeticError, LookupError, ValueError, GradexplainError):
        if math.prod(ctx.shapes[name]) and math.prod(ctx.out_shape):
            raise
        return Call("zeros_like", (arg,))


# ========================================================================== SymPy bridge


def sympy_number(v: Any) -> sympy.Expr:
    if isinstance(v, bool):
        return sympy.Integer(int(v))
    if isinstance(v, int):
        return sympy.Integer(v)
    if isinstance(v, Fraction):
        return sympy.Rational(v.numerator, v.denominator)
    if v != v:
        return sympy.nan
    if v in (math.inf, -math.inf):
        return sympy.oo if v > 0 else -sympy.oo
    return sympy.Rational(repr(v))  # the decimal the user wrote, exactly


def sympy_to_number(c: sympy.Expr) -> int | Fraction | float:
    if c.is_Integer:
        return int(c)
    if c.is_Rational:
        return Fraction(int(c.p), int(c.q))
    return float(c)


SHAPE_ONLY = {name: spec.fill for name, spec in REGISTRY.items() if spec.fill is not None}  # ones_like: 1


class ToSympy:
    """IR → a SymPy scalar expression; non-elementwise subterms become opaque symbols."""

    def __init__(self, shapes: Shapes | None, simplify_leaf: Any = None):
        self.shapes = shapes
        self.simplify_leaf = simplify_leaf or (lambda n: n)
        self.leaves: dict[sympy.Symbol, Node] = {}
        self.by_text: dict[str, sympy.Symbol] = {}
        self.witnesses: list[Node] = []  # nodes whose shape an elementwise subtree broadcast over

    def leaf(self, node: Node) -> sympy.Expr:
        node = self.simplify_leaf(node)
        if is_elementwise(node):  # simplifying a leaf can float a constant out: (A @ x)/2
            return self.convert(node)
        if isinstance(node, Call) and node.op in SHAPE_ONLY:  # simplifying revealed ones_like(...)
            self.witnesses.extend(elementwise_parts(node.args[0]))
            return sympy.Integer(SHAPE_ONLY[node.op])
        text = to_text(node)
        if text not in self.by_text:
            name = text if len(text) < 60 else f"t{len(self.by_text)}"
            sym = sympy.Symbol(name, real=True)
            while sym in self.leaves:
                sym = sympy.Symbol(sym.name + "'", real=True)
            self.by_text[text] = sym
            self.leaves[sym] = node
        self.witnesses.append(node)
        return self.by_text[text]

    def convert(self, node: Node) -> sympy.Expr:
        memo: dict[int, sympy.Expr] = {}
        stack = [node]
        while stack:  # iterative post-order, so long chains do not hit Python's recursion limit
            n = stack[-1]
            if id(n) in memo:
                stack.pop()
                continue
            if isinstance(n, Call) and is_elementwise(n):
                pending = [a for a in n.args if id(a) not in memo]
                if pending:
                    stack.extend(pending)
                    continue
                memo[id(n)] = REGISTRY[n.op].scalar(*(memo[id(a)] for a in n.args), **n.params)
            elif isinstance(n, Const):
                memo[id(n)] = sympy_number(n.value)
            elif isinstance(n, Call) and n.op in SHAPE_ONLY:
                self.witnesses.extend(elementwise_parts(n.args[0]))
                memo[id(n)] = sympy.Integer(SHAPE_ONLY[n.op])
            elif isinstance(n, Call) and n.op == "full_like" and isinstance(n.args[1], Const):
                self.witnesses.append(n.args[0])
                memo[id(n)] = sympy_number(n.args[1].value)
            elif isinstance(n, Call) and n.op == "numel" and self.shapes is not None:
                memo[id(n)] = sympy.Integer(self.shapes.numel(n.args[0]))
            elif isinstance(n, Input):
                memo[id(n)] = self.leaf(n)
            else:
                memo[id(n)] = self.leaf(n)
            stack.pop()
        return memo[id(node)]


def elementwise_parts(node: Node) -> list[Node]:
    """``node`` and what it is built from through elementwise ops only: the tensors whose shape an
    elementwise expression takes (``x`` in ``x*1 + x``, but not inside ``A @ x``)."""
    parts, stack = [], [node]
    while stack:
        n = stack.pop()
        parts.append(n)
        if is_elementwise(n):
            stack.extend(n.args)
    return parts


def is_elementwise(node: Node) -> bool:
    return isinstance(node, Call) and REGISTRY[node.op].elementwise and REGISTRY[node.op].sym is not None \
        and not node.inplace


def function_ops() -> dict[type, str]:
    """SymPy function class → the unary elementwise op it reads back as, from the registry: the class
    each op's ``sym`` builds (``sympy.exp`` → exp, ``symfuncs.sigmoid`` → sigmoid) and its ``sym_also``."""
    x = sympy.Symbol("x", real=True)
    table: dict[type, str] = {}
    for name, spec in REGISTRY.items():
        if not (spec.elementwise and spec.sym is not None and len(spec.tensor_args) == 1):
            continue
        e = spec.scalar(x)
        if isinstance(e, sympy.Function) and e.args == (x,):  # not a composite like sqrt (a Pow)
            table.setdefault(type(e), name)
        for other in spec.sym_also:
            table.setdefault(sympy_function(other), name)
    return table


def relation_ops() -> dict[type, str]:
    """SymPy relation class → the comparison op it reads back as (``StrictGreaterThan`` → gt), from the
    registry's comparison entries."""
    x, y = sympy.Symbol("x", real=True), sympy.Symbol("y", real=True)
    table: dict[type, str] = {}
    for name, spec in REGISTRY.items():
        if spec.sym is not None and len(spec.tensor_args) == 2 and not spec.elementwise:
            e = spec.scalar(x, y)
            if isinstance(e, sympy.core.relational.Relational):
                table.setdefault(type(e), name)
    return table


FUNCTION_OPS = function_ops()
RELATIONS = relation_ops()


class FromSympy:
    """A SymPy scalar expression → IR, reading symbols back as the leaves they stand for."""

    def __init__(self, leaves: dict[sympy.Symbol, Node]):
        self.leaves = leaves

    def number(self, e: sympy.Expr) -> Node:
        if e.is_Integer:
            return Const(int(e))  # exact at any size: torch gets a float where it runs (bignum)
        if e.is_Rational:
            return Const(Fraction(int(e.p), int(e.q)))
        if e in (sympy.oo, sympy.zoo):
            return Const(math.inf)
        if e == -sympy.oo:
            return Const(-math.inf)
        if e is sympy.nan:
            return Const(math.nan)
        if e == sympy.pi:
            return Const(math.pi)
        if e == sympy.E:
            return Call("exp", (Const(1),))
        return Const(float(e))

    def convert(self, e: sympy.Expr) -> Node:
        if e in self.leaves:
            return self.leaves[e]
        if e.is_Number or e in (sympy.zoo, sympy.oo, -sympy.oo, sympy.nan, sympy.pi, sympy.E):
            return self.number(e)
        if e.is_Add:
            terms = list(e.as_ordered_terms())
            terms.sort(key=lambda t: t.could_extract_minus_sign())  # start with a positive term
            node = self.convert(terms[0])
            for t in terms[1:]:
                node = Call("sub", (node, self.convert(-t))) if t.could_extract_minus_sign() \
                    else Call("add", (node, self.convert(t)))
            return node
        if e.is_Mul:
            return self.product(e)
        if e.is_Pow:
            base, exp = e.args
            if exp == -1:
                return Call("div", (Const(1), self.convert(base)))
            if exp == sympy.Rational(1, 2):
                return Call("sqrt", (self.convert(base),))
            if exp.is_Number and exp.is_negative:
                return Call("div", (Const(1), self.convert(base ** -exp)))
            if base == sympy.E:
                return Call("exp", (self.convert(exp),))
            return Call("pow", (self.convert(base), self.convert(exp)))
        if isinstance(e, sympy.Heaviside):
            value = e.args[1] if len(e.args) > 1 else sympy.Rational(1, 2)
            return Call("heaviside", (self.convert(e.args[0]), self.convert(value)))
        if isinstance(e, sympy.Piecewise):
            return self.piecewise(list(e.args))
        if type(e) in RELATIONS:
            return Call(RELATIONS[type(e)], (self.convert(e.lhs), self.convert(e.rhs)))
        if isinstance(e, (sympy.Max, sympy.Min)):
            op = "max" if isinstance(e, sympy.Max) else "min"
            node = self.convert(e.args[0])
            for arg in e.args[1:]:
                node = Call(op, (node, self.convert(arg)))
            return node
        for fn, op in FUNCTION_OPS.items():
            if isinstance(e, fn):
                return Call(op, (self.convert(e.args[0]),))
        raise NoClosedForm(Msg("cannot write {expr} as EXPR", expr=str(e)))

    def piecewise(self, pieces: list[tuple[sympy.Expr, Any]]) -> Node:
        (value, cond), rest = pieces[0], pieces[1:]
        if cond is sympy.true or not rest:
            return self.convert(value)
        return self.where(cond, self.convert(value), self.piecewise(rest))

    def where(self, cond: Any, then: Node, other: Node) -> Node:
        """``where(cond, then, other)``; SymPy's ``Or``/``And`` of relations become nested wheres."""
        if isinstance(cond, sympy.Or):
            for c in reversed(cond.args):
                other = self.where(c, then, other)
            return other
        if isinstance(cond, sympy.And):
            for c in reversed(cond.args):
                then = self.where(c, then, other)
            return then
        if cond in self.leaves:
            return Call("where", (self.leaves[cond], then, other))
        if type(cond) not in RELATIONS:
            raise NoClosedForm(Msg("condition {cond} has no EXPR spelling", cond=str(cond)))
        return Call("where", (self.convert(cond), then, other))

    def product(self, e: sympy.Expr) -> Node:
        negative = e.could_extract_minus_sign()
        if negative:
            e = -e
        numer, denom = sympy.fraction(e, exact=True)
        coeff, rest = numer.as_coeff_Mul()
        factors = [f for f in (rest.as_ordered_factors() if rest != 1 else [])]
        nodes: list[Node] = []
        if coeff != 1 or not factors:
            nodes.append(self.number(-coeff if negative else coeff))
            negative = False
        nodes += [self.convert(f) for f in factors]
        if negative:
            nodes[0] = Call("neg", (nodes[0],))
        node = nodes[0]
        for f in nodes[1:]:
            node = Call("mul", (node, f))
        if denom != 1:
            node = Call("div", (node, self.convert(denom)))
        return node


# ========================================================================== simplification


SIMPLIFY_OPS_MAX = 80  # cancel/factor expand products: above this size they can take seconds


@functools.lru_cache(maxsize=4096)  # same expression, same answer: problems of one shape in a batch share it
def sympy_simplify(e: sympy.Expr) -> sympy.Expr:
    """The shortest of a few cheap SymPy rewrites.

    ``sympy.simplify`` itself is avoided: its first call imports ``sympy.physics.units``
    (~0.45 s), more than the whole gradient costs; these rewrites cover gradient algebra.
    ``cancel`` and ``factor`` expand first, so they are kept to small expressions (a chain of 40
    ``tanh`` would otherwise take longer than the whole symbolic budget)."""
    if e.is_Atom:
        return e
    size = sympy.count_ops(e)
    rewrites = [sympy.factor_terms] + ([sympy.cancel, sympy.factor] if size <= SIMPLIFY_OPS_MAX else [])
    candidates = [e]
    for fn in rewrites:
        try:
            candidates.append(fn(e))
        except (sympy.PolynomialError, TypeError, ValueError, NotImplementedError):
            pass
    return min(candidates, key=lambda c: (sympy.count_ops(c), len(str(c))))


class Simplifier:
    """Simplify gradient IR, keeping every subterm's shape."""

    def __init__(self, shapes: Shapes, max_nodes: int = 2000):
        self.shapes = shapes
        self.max_nodes = max_nodes
        self.memo: dict[int, tuple[Node, Node]] = {}  # id → (node, result); holding node keeps its id unique

    def __call__(self, node: Node) -> Node:
        if sum(1 for _ in walk(node)) > self.max_nodes:
            return node
        return self.simplify(node)

    def simplify(self, node: Node) -> Node:
        if id(node) in self.memo:
            return self.memo[id(node)][1]
        if is_elementwise(node) or (isinstance(node, Call) and node.op in SHAPE_ONLY):
            result = self.elementwise(node)
        elif isinstance(node, Call):
            args = tuple(self.simplify(a) for a in node.args)
            result = self.rewrite(Call(node.op, args, node.params) if any(a is not b for a, b in zip(args, node.args))
                                  else node)
            if is_elementwise(result):  # a constant floated out of a product: let SymPy combine it
                result = self.elementwise(result)
        else:
            result = node
        self.memo[id(node)] = (node, result)
        return result

    def elementwise(self, node: Node) -> Node:
        to = ToSympy(self.shapes, simplify_leaf=self.simplify)
        expr = sympy_simplify(to.convert(node))
        expr = expr.replace(lambda e: e.is_Add, lambda e: self.collect_matmuls(e, to))
        back = FromSympy(to.leaves).convert(expr)
        return self.restore_shape(back, self.shapes.shape(node), to.witnesses + [node])

    def collect_matmuls(self, expr: sympy.Expr, to: ToSympy) -> sympy.Expr:
        """Matrix-calculus style: ``A @ x + x @ A`` → ``(A + A.T) @ x`` (for a vector x, ``x @ M``
        is ``M.T @ x``).  SymPy sees each product as an opaque symbol, so this is done here."""
        if not expr.is_Add:
            return expr
        groups: dict[str, list[tuple[sympy.Expr, sympy.Expr, Node, Node]]] = {}
        rest: list[sympy.Expr] = []
        for term in expr.args:
            coeff, factor = term.as_coeff_Mul()
            node = to.leaves.get(factor)
            if isinstance(node, Call) and node.op in ("matmul", "mv") and len(node.args) == 2:
                left, right = node.args
                dims = (len(self.shapes.shape(left)), len(self.shapes.shape(right)))
                if dims == (2, 1):
                    groups.setdefault(to_text(right), []).append((term, coeff, left, right))
                    continue
                if dims == (1, 2):
                    groups.setdefault(to_text(left), []).append((term, coeff, Call("t", (right,)), left))
                    continue
            rest.append(term)
        for items in groups.values():
            if len(items) == 1:
                rest.append(items[0][0])
                continue
            total = add_all([m if c == 1 else Call("mul", (Const(sympy_to_number(c)), m)) for _, c, m, _ in items])
            rest.append(to.leaf(Call("matmul", (total, items[0][3]))))
        return sympy.Add(*rest)

    def restore_shape(self, node: Node, shape: tuple[int, ...], witnesses: list[Node]) -> Node:
        """Broadcast ``node`` back to ``shape`` when simplification made it smaller (x - x → 0)."""
        if self.shapes.shape(node) == shape:
            return node
        # a comparison (x > 0) or an integer target has the shape but not a gradient's dtype, and EXPR
        # spells a comparison only as a where() condition: zeros_like(x > 0) would not even read back
        fits = [w for w in witnesses[:-1] if self.shapes.shape(w) == shape and self.shapes.dtype(w).is_floating_point]
        # the plainest witness reads best: ones_like(x) rather than ones_like(x*1 + x)
        witness = min(fits, key=lambda w: (not isinstance(w, Input), len(to_text(w))), default=None)
        if witness is None:
            return Call("mul", (node, Call("ones", (), {"shape": shape})))
        if isinstance(node, Const) and node.value in (0, 1):
            return Call("ones_like" if node.value == 1 else "zeros_like", (witness,))
        if isinstance(node, Const):
            return Call("full_like", (witness, node))
        return Call("mul", (node, Call("ones_like", (witness,))))

    def one_hot_pick(self, node: Call) -> Node | None:
        """The gradient of picking one component of a vector (``p[2]``) in closed form:
        ``g*one_hot(tensor(2), n)``, instead of an index-gradient that only goes per element."""
        if node.op != "index_grad":
            return None
        key = node.params.get("key")
        shape = self.shapes.shape(node.args[1])
        if len(shape) != 1 or not isinstance(key, tuple) or len(key) != 1 or type(key[0]) is not int \
                or self.shapes.shape(node.args[0]) != ():
            return None
        k = key[0] % shape[0]
        return Call("mul", (node.args[0], Call("one_hot", (Call("tensor", (), {"data": k}),),
                                               {"num_classes": shape[0]})))

    def rewrite(self, node: Call) -> Node:
        """Shape-aware rewrites SymPy cannot see."""
        if node.op in ("sum", "mean") and node.args and self.shapes.shape(node) == self.shapes.shape(node.args[0]) \
                and node.params.get("dim") is not None:
            return node.args[0]  # an un-broadcast that sums over nothing
        first = node.args[0] if node.args else None
        picked = self.one_hot_pick(node)
        if picked is not None:
            return picked
        if node.op == "t" and isinstance(first, Call) and first.op == "t":
            return first.args[0]
        if node.op == "index" and isinstance(first, Call) and first.op in SHAPE_ONLY:
            return Call(first.op, (Call("index", (first.args[0],), node.params),))  # ones_like(u)[k] → ones_like(u[k])
        if node.op in ("matmul", "mm"):
            a, b = node.args
            for eye, other in ((a, b), (b, a)):
                if isinstance(eye, Call) and eye.op == "eye" and self.shapes.shape(node) == self.shapes.shape(other):
                    return other  # I @ X → X
        if node.op in BILINEAR:
            for i, arg in enumerate(node.args[:2]):
                scaled = constant_factor(arg)
                if scaled is not None:  # A @ (x/2) → (A @ x)/2: SymPy can then combine the products
                    factor, rest = scaled
                    args = node.args[:i] + (rest,) + node.args[i + 1:]
                    return Call("mul", (Const(factor), self.rewrite(Call(node.op, args, node.params))))
        return node


# linear in each of two arguments with the other fixed (matmul, dot, outer): constants move out of either
BILINEAR = {name for name, spec in REGISTRY.items() if not spec.elementwise and spec.linear is not None
            and not spec.linear.joint and len(spec.linear.args) == 2}


def constant_factor(node: Node) -> tuple[int | Fraction | float, Node] | None:
    """``c*y``, ``y*c``, ``y/c`` or ``-y`` with a constant c → (c, y); else None."""
    if not isinstance(node, Call):
        return None
    if node.op == "neg":
        return -1, node.args[0]
    if node.op == "mul":
        for i in (0, 1):
            if isinstance(node.args[i], Const):
                return node.args[i].value, node.args[1 - i]
    if node.op == "div" and isinstance(node.args[1], Const) and node.args[1].value not in (0, 0.0):
        value = node.args[1].value
        return (Fraction(1, value) if isinstance(value, int) else 1 / value), node.args[0]
    return None


def fit_shape(node: Node, wrt: Input, shapes: Shapes) -> Node:
    """The gradient of ``wrt`` must have ``wrt``'s shape: ``x.sum()`` → ``ones_like(x)``."""
    target = shapes.shape(wrt)
    if shapes.shape(node) == target:
        return node
    if isinstance(node, Const):
        if node.value == 0:
            return Call("zeros_like", (wrt,))
        if node.value == 1:
            return Call("ones_like", (wrt,))
        return Call("full_like", (wrt, node))
    return Call("mul", (node, Call("ones_like", (wrt,))))


def printable(node: Node) -> bool:
    return not any(isinstance(n, Call) and n.op in UNPRINTABLE for n in walk(node))


# ============================================================================ per element


def element_symbols(name: str, shape: tuple[int, ...]) -> Any:
    """A numpy object array of real symbols named like the EXPR that selects them: ``a[0, 1]``."""
    import numpy as np  # heavy

    if not shape:
        return np.asarray(sympy.Symbol(name, real=True), dtype=object)
    arr = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        arr[idx] = sympy.Symbol(f"{name}[{', '.join(map(str, idx))}]", real=True)
    return arr


def element_node(sym: sympy.Symbol) -> Node:
    name, _, rest = sym.name.partition("[")
    if not rest:
        return Input(name)
    return Call("index", (Input(name),), {"key": tuple(int(i) for i in rest.rstrip("]").split(","))})


class ObjEvaluator:
    """Evaluate IR over numpy object arrays of SymPy scalars (each op's ``obj`` implementation)."""

    def __init__(self, inputs: dict[str, Any]):
        self.inputs = inputs

    def __call__(self, root: Node) -> Any:
        import numpy as np  # heavy

        memo: dict[int, Any] = {}
        for n in walk(root):
            if isinstance(n, Input):
                memo[id(n)] = self.inputs[n.name]
            elif isinstance(n, Const):
                memo[id(n)] = np.asarray(sympy_number(n.value), dtype=object)
            else:
                assert isinstance(n, Call)
                spec = REGISTRY[n.op]
                args = [memo[id(a)] for a in n.args]
                if spec.elementwise and spec.sym is not None:
                    fn, params = spec.scalar, n.params
                    value = np.frompyfunc(lambda *xs, fn=fn, p=params: fn(*xs, **p), len(args), 1)(*args)
                elif spec.obj is not None:
                    value = spec.obj(*args, **n.params)
                else:
                    raise NoClosedForm(Msg("{op} has no per-element form", op=n.op))
                memo[id(n)] = np.asarray(value, dtype=object)
        return memo[id(root)]


EXACT_MAX = 64  # input elements in all: exact values are for small homework-sized inputs


def exact_value(node: Node, exact_inputs: dict[str, Any], seconds: float = 2.0) -> Any | None:
    """``node`` over exact inputs (nested lists of int/Fraction) as nested lists of int/Fraction.

    None when the inputs are too many, or any entry is not rational (``exp(1/3)``), or SymPy
    needs more than ``seconds``.
    """
    import numpy as np  # heavy

    def count(v: Any) -> int:
        return sum(count(x) for x in v) if isinstance(v, list) else 1

    if sum(count(v) for v in exact_inputs.values()) > EXACT_MAX:
        return None
    to_sympy = np.frompyfunc(sympy_number, 1, 1)
    env = {n: np.asarray(to_sympy(np.array(v, dtype=object)), dtype=object) for n, v in exact_inputs.items()}
    try:
        with budget(seconds):
            arr = np.asarray(ObjEvaluator(env)(node), dtype=object)
    except (SymbolicTimeout, NoClosedForm, ArithmeticError, TypeError, ValueError, NotImplementedError, KeyError):
        return None
    if arr.size > EXACT_MAX or not all(isinstance(e, sympy.Basic) and e.is_Rational for e in arr.reshape(-1)):
        return None
    as_fraction = np.frompyfunc(lambda e: int(e) if e.is_Integer else Fraction(int(e.p), int(e.q)), 1, 1)
    return as_fraction(arr).tolist() if arr.ndim else as_fraction(arr[()])


def stack_text(arr: Any, fmt: Any) -> str:
    """A nested ``stack([...])`` EXPR for an object array, each scalar printed by ``fmt``; an array of
    plain numbers is a floating ``tensor([...])`` literal instead (shorter, and read back the same)."""
    import numpy as np  # heavy

    arr = np.asarray(arr, dtype=object)
    if any(not isinstance(v, sympy.Basic) for v in arr.flat):  # plain numbers (np.zeros(..., object) holds int 0)
        arr = np.frompyfunc(lambda v: v if isinstance(v, sympy.Basic) else sympy_number(v), 1, 1)(arr)
        arr = np.asarray(arr, dtype=object)
    if arr.ndim and all(getattr(v, "is_Rational", False) for v in arr.flat):
        return f"tensor({nested_text(np.vectorize(float, otypes=[float])(arr).tolist())})"
    if arr.ndim == 0:
        return fmt(arr[()])
    return "stack([" + ", ".join(stack_text(arr[i], fmt) for i in range(arr.shape[0])) + "])"


def scalar_text(e: sympy.Expr) -> str:
    e = sympy_simplify(e) if sympy.count_ops(e) < 60 else e
    leaves = {s: element_node(s) for s in e.free_symbols}
    return to_text(FromSympy(leaves).convert(e))


def per_element_text(node: Node, inputs: dict[str, tuple[int, ...]], limits: Limits) -> str:
    """A gradient formula written element by element (``stack([...])``)."""
    env = {name: element_symbols(name, shape) for name, shape in inputs.items()}
    arr = ObjEvaluator(env)(node)
    if arr.size > limits.max_per_element:
        raise NoClosedForm(Msg("no closed form, and {size} elements exceed the per-element limit of {limit}",
                               size=arr.size, limit=limits.max_per_element))
    return stack_text(arr, scalar_text)


def jacobian_text(output: Node, wrt: str, inputs: dict[str, tuple[int, ...]], limits: Limits) -> str:
    """The Jacobian d output / d wrt, per element, shape ``output.shape + wrt.shape``."""
    import numpy as np  # heavy

    env = {name: element_symbols(name, shape) for name, shape in inputs.items()}
    out = ObjEvaluator(env)(output)
    syms = env[wrt]
    if out.size * syms.size > limits.max_per_element:
        raise NoClosedForm(Msg("a Jacobian of {entries} entries exceeds the per-element limit of {limit}",
                               entries=out.size * syms.size, limit=limits.max_per_element))
    jac = np.empty(out.shape + syms.shape, dtype=object)
    for oi in np.ndindex(*out.shape):
        for ii in np.ndindex(*syms.shape):
            # a step's impulse is invisible to autograd: PyTorch's slope of heaviside/sign/where is 0
            jac[oi + ii] = sympy.diff(out[oi], syms[ii]).replace(sympy.DiracDelta, lambda *_: sympy.Integer(0))
    return stack_text(jac, scalar_text)


# ============================================================================ entry point


INLINE_MAX = 600  # nodes of the gradient written out as one tree; past it only the let-form program is built


def tree_size(root: Node, size: dict[int, int]) -> int:
    """Nodes of ``root`` printed as one expression (every shared node written out again); ``size``
    memoises it per node id across calls."""
    for n in walk(root, done=size):
        size[id(n)] = 1 + sum(size[id(c)] for c in n.children())
    return size[id(root)]


def spelled(root: Node, memo: dict[int, bool]) -> bool:
    """Whether every op below ``root`` has an EXPR spelling (``printable``, memoised across calls)."""
    for n in walk(root, done=memo):
        memo[id(n)] = not (isinstance(n, Call) and n.op in UNPRINTABLE) and all(memo[id(c)] for c in n.children())
    return memo[id(root)]


@dataclass
class SymbolicGradient:
    expr: Node | None  # simplified IR (None: no path from the input to the output)
    text: str | None  # EXPR text, None when it cannot be written within limits
    note: str | None = None
    raw: Node | None = None  # reverse mode's DAG, shared nodes shared (what the let-form program cuts)


def gradients(root: Node, seed: Node, wrt: list[str], shapes: Shapes, input_shapes: dict[str, tuple[int, ...]],
              limits: Limits = DEFAULT, adjoints: dict[int, Node] | None = None) -> dict[str, SymbolicGradient]:
    """Closed-form gradients of ``seed · root`` for every input in ``wrt``.

    A gradient whose single expression would exceed :data:`INLINE_MAX` nodes (a deep network
    repeats itself at every layer) is not simplified as a whole: ``text`` is None with a note, and
    the let-form program (:mod:`gradexplain.program`, from ``raw`` and ``adjoints``) holds it."""
    raw = reverse_mode(root, seed, wrt, shapes, adjoints)
    simplifier = Simplifier(shapes)
    result: dict[str, SymbolicGradient] = {}
    sizes: dict[int, int] = {}
    spellings: dict[int, bool] = {}
    for name in wrt:
        wrt_node = Input(name)
        g = raw[name]
        if g is None:
            expr: Node = Call("zeros_like", (wrt_node,))
            result[name] = SymbolicGradient(expr, to_text(expr), Msg("the output does not depend on it"))
            continue
        if tree_size(g, sizes) > INLINE_MAX and spelled(g, spellings):
            result[name] = SymbolicGradient(fit_shape(g, wrt_node, shapes), None,
                                            Msg("written out as one expression the gradient would exceed {limit} "
                                                "nodes; symbolic.program holds it as let-bindings", limit=INLINE_MAX),
                                            raw=g)
            continue
        expr = fit_shape(simplifier(g), wrt_node, shapes)
        if printable(expr):
            result[name] = SymbolicGradient(expr, to_text(expr), raw=g)
            continue
        try:
            text = per_element_text(expr, input_shapes, limits)
            result[name] = SymbolicGradient(expr, text, Msg("no closed form through indexing: written per element"), raw=g)
        except NoClosedForm as e:
            result[name] = SymbolicGradient(expr, None, message_of(e), raw=g)
    return result
