"""Reductions: ``sum mean max min norm logsumexp numel trace``."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ..ir import Call
from .spec import NONLINEAR, In, Kink, Linear, RuleContext, ValueSample, as_tensor, obj_np, op, \
    sample, ufunc


def _sum_torch(a: Any, dim: Any = None, keepdim: bool = False) -> torch.Tensor:
    a = as_tensor(a)
    return a.sum() if dim is None else a.sum(dim=dim, keepdim=keepdim)


def _mean_torch(a: Any, dim: Any = None, keepdim: bool = False) -> torch.Tensor:
    a = as_tensor(a)
    return a.mean() if dim is None else a.mean(dim=dim, keepdim=keepdim)


def obj_reduce(fn_name: str) -> Callable[..., Any]:
    """``sum`` or ``mean`` over numpy object arrays."""

    def apply(a: Any, dim: Any = None, keepdim: bool = False) -> Any:
        np = obj_np()
        a = np.asarray(a, dtype=object)
        axis = tuple(dim) if isinstance(dim, (list, tuple)) else dim
        if fn_name == "sum":
            return np.sum(a, axis=axis, keepdims=keepdim)
        count = a.size if axis is None else math.prod(a.shape[d] for d in np.atleast_1d(axis))
        return np.sum(a, axis=axis, keepdims=keepdim) / count

    return apply


op("sum", "a", "dim=None, keepdim=False", torch=_sum_torch, method=True, positional_params=("dim",),
   rules={"a": lambda c: f"g{c.unsqueeze()}*ones_like(a)"}, shown={"a": "g*ones_like(a)  (g unsqueezed along dim)"},
   obj=obj_reduce("sum"), linear=Linear("a", batch="dims", dims=("dim",)), doc="sum of elements (over dim)",
   samples=(sample("a.sum()", lambda a: a.sum(), a=In(2, 3)),
            sample("sum(a, dim=1)", lambda a: a.sum(1), a=In(2, 3)),
            sample("a.sum((0, 2), keepdim=True)", lambda a: a.sum((0, 2), keepdim=True), a=In(2, 3, 2))))
op("mean", "a", "dim=None, keepdim=False", torch=_mean_torch, method=True, positional_params=("dim",),
   rules={"a": lambda c: f"g{c.unsqueeze()}*ones_like(a)/{c.count()}"},
   shown={"a": "g*ones_like(a)/numel(a)  (numel over dim)"}, obj=obj_reduce("mean"),
   linear=Linear("a", batch="dims", dims=("dim",)), doc="mean of elements (over dim)",
   samples=(sample("(a*a).mean()", lambda a: (a * a).mean(), a=In(2, 3)),
            sample("mean(a, 0, keepdim=True)", lambda a: a.mean(0, keepdim=True), a=In(2, 3)),
            sample("a.mean(-1)", lambda a: a.mean(-1), a=In(2, 3))))


def _extreme_torch(which: str) -> Callable[..., Any]:
    full = torch.amax if which == "max" else torch.amin
    pair = torch.maximum if which == "max" else torch.minimum

    def apply(a: Any, b: Any = None, dim: Any = None, keepdim: bool = False) -> torch.Tensor:
        if b is not None:
            return pair(as_tensor(a), as_tensor(b))
        a = as_tensor(a)
        if dim is None:
            return a.max() if which == "max" else a.min()
        return full(a, dim=dim, keepdim=keepdim)

    return apply


def _extreme_rule(which: str, arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        if "b" in c.shapes:  # elementwise maximum(a, b): ties split evenly, as PyTorch does
            first, second = ("a", "b") if arg == "a" else ("b", "a")
            sign = "" if which == "max" else "-"
            return f"g*heaviside({sign}({first} - {second}), 1/2)"
        # The mask compares a with out directly: a difference a - out would be re-associated by
        # SymPy and come out as -1e-16 instead of 0 at the maximum.
        u = c.unsqueeze()
        mask = f"where(a {'>=' if which == 'max' else '<='} out{u}, 1, 0)"
        dims = c.reduced_dims()
        count = f"{mask}.sum()" if dims is None else \
            f"{mask}.sum({dims[0] if len(dims) == 1 else tuple(dims)}, keepdim=True)"
        return f"g{u}*{mask}/{count}"

    return rule


def _obj_extreme(which: str) -> Callable[..., Any]:
    def apply(a: Any, b: Any = None, dim: Any = None, keepdim: bool = False) -> Any:
        import sympy  # heavy

        np = obj_np()
        fn = sympy.Max if which == "max" else sympy.Min
        if b is not None:
            return ufunc(fn, 2)(a, b)
        a = np.asarray(a, dtype=object)
        if dim is None:
            return np.asarray(fn(*a.ravel().tolist()), dtype=object)
        return np.apply_along_axis(lambda v: fn(*v), dim, a) if not keepdim else \
            np.expand_dims(np.apply_along_axis(lambda v: fn(*v), dim, a), dim)

    return apply


for _which, _all, _pair, _full in (("max", torch.max, torch.maximum, torch.amax),
                                   ("min", torch.min, torch.minimum, torch.amin)):
    _cmp = ">=" if _which == "max" else "<="
    op(_which, "a, b", "dim=None, keepdim=False", torch=_extreme_torch(_which), method=True,
       optional_args=("b",), positional_params=("dim",),
       rules={"a": _extreme_rule(_which, "a"), "b": _extreme_rule(_which, "b")},
       shown={"a": f"g*where(a {_cmp} out, 1, 0)/count  (ties share g)"},
       obj=_obj_extreme(_which), linear=NONLINEAR,
       doc=f"{_which}imum: of all elements, along dim (values only), or elementwise {_which}(a, b)",
       kinks=(Kink("ties: the gradient is shared evenly among the tied elements", {"a": "[[1, 3, 3], [3, 0, 1]]"}),
              Kink(f"{_which}(a, b) at a == b: each gets half of g", {"a": "[[1, 2, 3], [0, 5, -1]]", "b": "[1, 0, 3]"},
                   sample=1)),
       samples=(sample(f"{_which}(a)", lambda a, f=_all: f(a), a=In(2, 3)),
                sample(f"{_which}(a, b)", lambda a, b, f=_pair: f(a, b), a=In(2, 3), b=In(3)),
                sample(f"{'minimum' if _which == 'min' else 'maximum'}(a, b)", lambda a, b, f=_pair: f(a, b),
                       a=In(2, 3), b=In(2, 3)),
                sample(f"a.{_which}(1)", lambda a, f=_full: f(a, 1), a=In(2, 3)),
                sample(f"{_which}(a, dim=0, keepdim=True)", lambda a, f=_full: f(a, 0, keepdim=True), a=In(2, 3))))


def _norm_rule(c: RuleContext) -> str:
    p = c.params.get("p", 2)
    u = c.unsqueeze()
    if p == 0:  # counts the nonzero entries: a step function, gradient 0 (as PyTorch)
        return "zeros_like(a)"
    if p == 2:
        return f"g{u}*a/out{u}"
    if p == 1:
        return f"g{u}*sign(a)"
    return f"g{u}*sign(a)*abs(a)**({p} - 1)/out{u}**({p} - 1)"


def _obj_norm(a: Any, p: Any = 2, dim: Any = None, keepdim: bool = False) -> Any:
    import sympy  # heavy

    s = obj_reduce("sum")(ufunc(lambda v: sympy.Abs(v) ** p, 1)(a), dim, keepdim)
    return ufunc(lambda v: v ** (sympy.S.One / p), 1)(s)


op("norm", "a", "p=2, dim=None, keepdim=False", torch=lambda a, p=2, dim=None, keepdim=False:
   torch.linalg.vector_norm(as_tensor(a), ord=p, dim=dim, keepdim=keepdim),
   rules={"a": _norm_rule}, shown={"a": "g*a/out  (p = 2)"}, obj=_obj_norm, linear=NONLINEAR,
   doc="vector p-norm (default 2)",
   samples=(sample("norm(a)", lambda a: torch.linalg.vector_norm(a), a=In(2, 3)),
            sample("norm(a, p=1)", lambda a: torch.linalg.vector_norm(a, ord=1), a=In(4, domain="nz")),
            sample("norm(a, 3)", lambda a: torch.linalg.vector_norm(a, ord=3), a=In(4, domain="nz")),
            sample("norm(a, dim=1)", lambda a: torch.linalg.vector_norm(a, dim=1), a=In(2, 3))))


def _logsumexp_obj(a: Any, dim: Any, keepdim: bool = False) -> Any:
    import sympy  # heavy

    s = obj_reduce("sum")(ufunc(sympy.exp, 1)(a), dim, keepdim)
    return obj_np().asarray(ufunc(sympy.log, 1)(s), dtype=object)


op("logsumexp", "a", "dim, keepdim=False", torch=lambda a, dim, keepdim=False: torch.logsumexp(as_tensor(a), dim, keepdim),
   method=True, positional_params=("dim",), rules={"a": lambda c: f"g{c.unsqueeze()}*exp(a - out{c.unsqueeze()})"},
   shown={"a": "g*exp(a - out)"}, obj=_logsumexp_obj, linear=NONLINEAR,
   doc="log(sum(exp(a))) along dim, computed stably",
   samples=(sample("logsumexp(a, 1)", lambda a: torch.logsumexp(a, 1), a=In(2, 3)),
            sample("a.logsumexp(0, keepdim=True)", lambda a: torch.logsumexp(a, 0, keepdim=True), a=In(2, 3))))

op("numel", "a", torch=lambda a: as_tensor(a).numel(), method=True, obj=lambda a: obj_np().asarray(a).size,
   doc="number of elements (a constant)",
   samples=(sample("numel(a) * (a*a).sum()", lambda a: a.numel() * (a * a).sum(), a=In(2, 3)),),
   value_samples=(ValueSample(("a.numel()", "a=ones(2, 5)", "--const", "a"), 10),))


def _trace_obj(a: Any) -> Any:
    np = obj_np()
    return np.asarray(np.trace(np.asarray(a, dtype=object)), dtype=object)


def _trace_batch(node: Call, ks: list[Any], lead: tuple[int, ...], shape: Callable[[Any], tuple[int, ...]]) -> Call:
    """trace over the last two dims of K: ``(K * eye(n, m)).sum((-2, -1))``."""
    n, m = shape(node.args[0])
    return Call("sum", (Call("mul", (ks[0], Call("eye", (), {"n": n, "m": m}))),), {"dim": (-2, -1)})


op("trace", "a", torch=torch.trace, rules={"a": lambda c: f"g*eye({c.shapes['a'][0]}, {c.shapes['a'][1]})"},
   shown={"a": "g*eye(n, m)"}, obj=_trace_obj, linear=Linear("a", batch=_trace_batch),
   doc="sum of the diagonal of a matrix",
   samples=(sample("trace(a)", torch.trace, a=In(3, 3)),
            sample("a.trace() * 2", lambda a: torch.trace(a) * 2, a=In(2, 3))))
