"""Linear algebra: ``matmul mm mv dot outer linear``."""
from __future__ import annotations

import math
import operator
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..ir import Call
from .spec import NONLINEAR, In, Linear, RuleContext, Shape, broadcast_shape, obj_np, op, sample


def matmul_shape(shapes: list[Shape], params: dict[str, Any]) -> Shape:
    """torch.matmul's output shape, with its 1-D promotion and batch broadcasting."""
    a, b = shapes[0], shapes[1]
    if len(a) < 2 or len(b) < 2:
        return tuple(a[:-1]) + tuple(b[:-2] + b[-1:] if len(b) >= 2 else ())
    return broadcast_shape(a[:-2], b[:-2]) + (a[-2], b[-1])


def _matmul_rule(arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        na, nb = c.ndim("a"), c.ndim("b")
        table = {(1, 1): ("g*b", "g*a"), (2, 1): ("outer(g, b)", "a.T @ g"),
                 (1, 2): ("b @ g", "outer(a, g)"), (2, 2): ("g @ b.T", "a.T @ g")}
        if (na, nb) in table:
            return table[(na, nb)][0 if arg == "a" else 1]
        if na >= 2 and nb >= 2:
            return "g @ b.transpose(-2, -1)" if arg == "a" else "a.transpose(-2, -1) @ g"
        if na == 1:  # a vector times a batch of matrices: a is a row, batched over b's leading dims
            return "(b @ g.unsqueeze(-1)).squeeze(-1)" if arg == "a" else "a.unsqueeze(-1) * g.unsqueeze(-2)"
        # a batch of matrices times a vector (nb == 1): b is a column
        return "g.unsqueeze(-1) * b" if arg == "a" else "(a.transpose(-2, -1) @ g.unsqueeze(-1)).squeeze(-1)"

    return rule


def _matmul_batch(node: Call, ks: list[Any], lead: Shape, shape: Callable[[Any], Shape]) -> Call:
    """K of ``a @ b``: ``K_a @ b`` and ``a @ K_b`` are batched over the leading direction dims by
    matmul's own batch broadcasting, once K has 1s for the batch dims the other argument adds;
    b a vector, whose K is ``lead + (n,)``: ``K_b @ a.T``."""
    a, b = node.args
    out_nd = len(shape(node))

    def aligned(k: Any, arg: Any) -> Any:
        sa = shape(arg)
        if lead and 2 <= len(sa) < out_nd:
            return Call("reshape", (k,), {"shape": lead + (1,) * (out_nd - len(sa)) + sa})
        return k

    sa, sb = shape(a), shape(b)
    if lead and ks[0] is not None and len(sa) == 1 and len(sb) >= 3:  # row vector K_a times a batch of matrices
        row = Call("reshape", (ks[0],), {"shape": lead + (1,) * (len(sb) - 2) + (1, sa[0])})
        return Call("reshape", (Call("matmul", (row, b)),), {"shape": lead + shape(node)})
    if lead and ks[1] is not None and len(sb) == 1 and len(sa) >= 3:  # a batch of matrices times column K_b
        col = Call("reshape", (ks[1],), {"shape": lead + (1,) * (len(sa) - 2) + (sb[0], 1)})
        return Call("reshape", (Call("matmul", (a, col)),), {"shape": lead + shape(node)})
    if ks[0] is not None:
        return Call("matmul", (aligned(ks[0], a), b))
    if len(shape(b)) >= 2 or not lead:
        return Call("matmul", (a, aligned(ks[1], b)))
    other = Call("t", (a,)) if len(shape(a)) == 2 else a
    return Call("matmul", (ks[1], other))


def _obj_matmul(a: Any, b: Any) -> Any:
    np = obj_np()
    return np.asarray(np.matmul(np.asarray(a, dtype=object), np.asarray(b, dtype=object)), dtype=object)


_BILINEAR = Linear("a, b", batch=_matmul_batch)
op("matmul", "a, b", torch=operator.matmul, rules={"a": _matmul_rule("a"), "b": _matmul_rule("b")},
   shown={"a": "g @ b.T  (1-D: g*b, outer(g, b), b @ g)", "b": "a.T @ g  (1-D: g*a, outer(a, g))"},
   obj=_obj_matmul, infix="@", predict=matmul_shape, linear=_BILINEAR, doc="a @ b with torch's 1-D promotion rules",
   samples=(sample("a @ b", lambda a, b: a @ b, a=In(2, 3), b=In(3)),
            sample("a @ b", lambda a, b: a @ b, a=In(3), b=In(3, 2)),
            sample("matmul(a, b)", lambda a, b: a @ b, a=In(2, 3), b=In(3, 4)),
            sample("a @ b", lambda a, b: a @ b, a=In(3), b=In(3)),
            sample("a @ b", lambda a, b: a @ b, a=In(2, 2, 3), b=In(3, 4)),
            sample("a @ b", lambda a, b: a @ b, a=In(2, 3), b=In(2, 3, 4)),
            sample("a @ b", lambda a, b: a @ b, a=In(3), b=In(2, 3, 4)),
            sample("a @ b", lambda a, b: a @ b, a=In(2, 1, 2, 3), b=In(3)),
            sample("a @ b", lambda a, b: a @ b, a=In(2, 1, 2, 3), b=In(3, 3, 2))))
op("mm", "a, b", torch=torch.mm, rules={"a": "g @ b.T", "b": "a.T @ g"}, obj=_obj_matmul, predict=matmul_shape,
   linear=_BILINEAR, doc="matrix @ matrix", samples=(sample("mm(a, b)", torch.mm, a=In(2, 3), b=In(3, 2)),))
op("mv", "a, b", torch=torch.mv, rules={"a": "outer(g, b)", "b": "a.T @ g"}, obj=_obj_matmul, predict=matmul_shape,
   linear=_BILINEAR, doc="matrix @ vector", samples=(sample("mv(a, b)", torch.mv, a=In(2, 3), b=In(3)),))
op("dot", "a, b", torch=torch.dot, rules={"a": "g*b", "b": "g*a"}, obj=_obj_matmul, predict=matmul_shape,
   linear=_BILINEAR, doc="inner product of two vectors", samples=(sample("dot(a, b)", torch.dot, a=In(3), b=In(3)),))


def _outer_batch(node: Call, ks: list[Any], lead: Shape, shape: Callable[[Any], Shape]) -> Call:
    """K of ``outer(a, b)``: ``K_a.unsqueeze(-1) * b`` or ``a.unsqueeze(-1) * K_b.unsqueeze(-2)``."""
    a, b = node.args
    if ks[0] is not None:
        return Call("mul", (Call("unsqueeze", (ks[0],), {"dim": -1}), b))
    return Call("mul", (Call("unsqueeze", (a,), {"dim": -1}), Call("unsqueeze", (ks[1],), {"dim": -2})))


op("outer", "a, b", torch=torch.outer, rules={"a": "g @ b", "b": "g.T @ a"},
   obj=lambda a, b: obj_np().multiply.outer(obj_np().asarray(a, dtype=object), obj_np().asarray(b, dtype=object)),
   predict=lambda shapes, p: (math.prod(shapes[0]), math.prod(shapes[1])), linear=Linear("a, b", batch=_outer_batch),
   doc="outer product a bᵀ of two vectors", samples=(sample("outer(a, b)", torch.outer, a=In(2), b=In(3)),))


def _linear_rule(arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        if arg == "b":
            return "g"
        if c.ndim("W") == 1:  # a weight vector: out = x @ W has lost the feature dim, g puts it back
            g = "g" if not c.out_shape else "g.unsqueeze(-1)"
            return f"{g}*W" if arg == "x" else f"{g}*x"
        if arg == "x":
            return "g @ W"
        if c.ndim("x") == 1:
            return "outer(g, x)"
        if c.ndim("x") == 2:
            return "g.T @ x"
        return "g.transpose(-2, -1) @ x"  # one product per batch element, summed by the un-broadcast

    return rule


def _obj_linear(x: Any, W: Any, b: Any = None) -> Any:
    np = obj_np()
    out = np.matmul(np.asarray(x, dtype=object), np.asarray(W, dtype=object).T)
    return np.asarray(out if b is None else out + b, dtype=object)


op("linear", "x, W, b", torch=lambda x, W, b=None: F.linear(x, W, b), optional_args=("b",),
   rules={"x": _linear_rule("x"), "W": _linear_rule("W"), "b": _linear_rule("b")},
   shown={"x": "g @ W", "W": "g.T @ x", "b": "g"}, obj=_obj_linear,
   predict=lambda shapes, p: matmul_shape([shapes[0], tuple(reversed(shapes[1]))], p),
   linear=NONLINEAR,  # affine (the bias): a gradient formula never applies it to the direction
   doc="x @ W.T + b (a fully connected layer)",
   samples=(sample("linear(x, W, b)", F.linear, x=In(2, 3), W=In(4, 3), b=In(4)),
            sample("linear(x, W)", F.linear, x=In(3), W=In(2, 3)),
            sample("F.linear(x, W, b)", F.linear, x=In(2, 2, 3), W=In(4, 3), b=In(4))))
