"""Reductions: ``sum mean max min norm logsumexp numel trace``."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ..ir import Call
from .spec import NONLINEAR, In, Kink, Linear, Outputs, RuleContext, ValueSample, as_tensor, obj_np, op, \
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
    pair = torch.maximum if which == "max" else torch.minimum

    def apply(a: Any, b: Any = None, dim: Any = None, keepdim: bool = False) -> torch.Tensor:
        if b is not None:
            return pair(as_tensor(a), as_tensor(b))
        assert dim is None, "max(a, dim) is two ops (max_values, max_indices): the parser picks one"
        return as_tensor(a).max() if which == "max" else as_tensor(a).min()

    return apply


# ------------------------------------------------------------------ values selected by indices

def scatter_add_torch(a: Any, dim: int, index: Any, src: Any) -> torch.Tensor:
    """torch.scatter_add, promoting a and src to a common dtype: a simplified gradient formula may have
    lost the float factor (``ones_like(v)*i`` → ``i``) that torch's gradient carries."""
    a, src = as_tensor(a), as_tensor(src)
    dtype = torch.promote_types(a.dtype, src.dtype)
    return torch.scatter_add(a.to(dtype), dim, index, src.to(dtype))


def _obj_scatter_add(a: Any, index: Any, src: Any, dim: int) -> Any:
    np = obj_np()
    out = np.array(a, dtype=object, copy=True)
    index, src = np.asarray(index), np.asarray(src, dtype=object)
    for pos in np.ndindex(*index.shape):
        target = list(pos)
        target[dim] = int(index[pos])
        out[tuple(target)] = out[tuple(target)] + src[pos]
    return out


# The gradient of every op whose values are elements selected by indices (max(a, dim), sort, topk,
# cummax...): the incoming gradient added at the selected positions, as torch's
# value_selecting_reduction_backward does.  torch's own name; OPS-B's indexing family has it too.
op("scatter_add", "a, index, src", "dim", torch=lambda a, index, src, dim: scatter_add_torch(a, dim, index, src),
   method=True, call_order=("a", "dim", "index", "src"), rules={"a": "g", "src": lambda c: f"g.gather({c.params['dim']}, index)"},
   shown={"a": "g", "src": "g.gather(dim, index)"}, obj=_obj_scatter_add, linear=Linear("a, src", joint=True, batch=None),
   doc="a with src added at index along dim (a.scatter_add(dim, index, src))",
   samples=(sample("a.scatter_add(1, a.max(1, keepdim=True).indices, b)",
                   lambda a, b: a.scatter_add(1, a.max(1, keepdim=True).indices, b), const=("a",), a=In(2, 3), b=In(2, 1)),))


def gather_torch(a: Any, dim: int, index: Any) -> torch.Tensor:
    return torch.gather(as_tensor(a), dim, index)


def _obj_gather(a: Any, index: Any, dim: int) -> Any:
    np = obj_np()
    index = np.asarray(index)  # an integer constant arrives as SymPy integers over object arrays
    return np.take_along_axis(np.asarray(a, dtype=object), index.astype(int) if index.dtype == object else index, axis=dim)


op("gather", "a, index", "dim", torch=lambda a, index, dim: gather_torch(a, dim, index), method=True,
   call_order=("a", "dim", "index"), rules={"a": lambda c: f"zeros_like(a).scatter_add({c.params['dim']}, index, g)"},
   shown={"a": "zeros_like(a).scatter_add(dim, index, g)"}, obj=_obj_gather, linear=Linear("a", batch=None),
   doc="elements of a at index along dim (a.gather(dim, index))",
   samples=(sample("a.gather(1, a.min(1, keepdim=True).indices) * b",
                   lambda a, b: a.gather(1, a.min(1, keepdim=True).indices) * b, a=In(2, 3), b=In(2, 1)),))


def selected_rule(indices: Callable[[RuleContext, int], str], keeps_dim: bool = False) -> Callable[[RuleContext], str]:
    """``zeros_like(a).scatter_add(dim, INDICES, g)``: g to the elements the op selected (``indices``:
    the EXPR of the selected indices, of g's shape with the dim kept)."""

    def rule(c: RuleContext) -> str:
        d = (c.reduced_dims() or [0])[0] if c.ndim("a") else 0
        u = "" if keeps_dim or c.params.get("keepdim") or not c.ndim("a") else f".unsqueeze({d})"
        return f"zeros_like(a).scatter_add({d}, {indices(c, d)}, g{u})"

    return rule


def _pair_when(params: dict[str, Any], nargs: int) -> bool:
    return params.get("dim") is not None and nargs == 1


for _which, _pair_fn in (("max", torch.max), ("min", torch.min)):
    op(f"{_which}_values", "a", "dim, keepdim=False", output_of=_which, user=False, positional_params=("dim",),
       torch=lambda a, dim, keepdim=False, f=_pair_fn: f(as_tensor(a), dim, keepdim).values,
       rules={"a": selected_rule(lambda c, d, w=_which: f"a.{w}({d}, keepdim=True).indices")},
       shown={"a": f"zeros_like(a).scatter_add(dim, a.{_which}(dim, keepdim=True).indices, g)"}, linear=NONLINEAR,
       doc=f"{_which}(a, dim).values: the whole gradient goes to the returned index (ties, NaN as torch)",
       kinks=(Kink(f"{_which}(a, dim) at a tie: the whole gradient to the returned index",
                   {"a": "[[1, 1, 0], [2, 2, 2]]" if _which == "max" else "[[0, 0, 1], [2, 2, 2]]"}),),
       samples=(sample(f"a.{_which}(1).values", lambda a, f=_pair_fn: f(a, 1).values, a=In(2, 3)),
                sample(f"{_which}(a, dim=1, keepdim=True)[0]", lambda a, f=_pair_fn: f(a, 1, keepdim=True)[0],
                       a=In(2, 3)),
                sample(f"v, i = torch.{_which}(a, 0); v * i", lambda a, f=_pair_fn: f(a, 0)[0] * f(a, 0)[1],
                       a=In(3, 2))))
    op(f"{_which}_indices", "a", "dim, keepdim=False", output_of=_which, user=False, positional_params=("dim",),
       torch=lambda a, dim, keepdim=False, f=_pair_fn: f(as_tensor(a), dim, keepdim).indices,
       doc=f"{_which}(a, dim).indices: integer positions, no gradient")


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
       outputs=Outputs(ops=(f"{_which}_values", f"{_which}_indices"), names=("values", "indices"), when=_pair_when),
       rules={"a": _extreme_rule(_which, "a"), "b": _extreme_rule(_which, "b")},
       shown={"a": f"g*where(a {_cmp} out, 1, 0)/count  (ties share g)"},
       obj=_obj_extreme(_which), linear=NONLINEAR,
       doc=f"{_which}imum of all elements, or elementwise {_which}(a, b); {_which}(a, dim) returns (values, indices)",
       kinks=(Kink("ties: the gradient is shared evenly among the tied elements", {"a": "[[1, 3, 3], [3, 0, 1]]"}),
              Kink(f"{_which}(a, b) at a == b: each gets half of g", {"a": "[[1, 2, 3], [0, 5, -1]]", "b": "[1, 0, 3]"},
                   sample=1)),
       samples=(sample(f"{_which}(a)", lambda a, f=_all: f(a), a=In(2, 3)),
                sample(f"{_which}(a, b)", lambda a, b, f=_pair: f(a, b), a=In(2, 3), b=In(3)),
                sample(f"{'minimum' if _which == 'min' else 'maximum'}(a, b)", lambda a, b, f=_pair: f(a, b),
                       a=In(2, 3), b=In(2, 3))))


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
