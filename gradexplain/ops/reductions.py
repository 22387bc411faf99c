"""Reductions: ``sum mean max min norm logsumexp numel trace``."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ..i18n import Msg
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
    full = torch.max if which == "max" else torch.min

    def apply(a: Any, b: Any = None, dim: Any = None, keepdim: bool = False) -> torch.Tensor:
        if b is not None:
            if dim is not None or keepdim:  # torch.max(a, b) takes no dim: its own message refuses it
                return full(as_tensor(a), as_tensor(b), dim=dim, keepdim=keepdim)
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


def selected_rule(indices_op: str, keeps_dim: bool = False, default_dim: int = 0) -> Callable[[RuleContext], Any]:
    """``zeros_like(a).scatter_add(dim, INDICES, g)``: g to the elements the op selected, ``INDICES`` being
    the op's own indices output (``a.max(1, keepdim=True).indices``); an IR node, built from the params."""

    def rule(c: RuleContext) -> Any:
        nd = max(c.ndim("a"), 1)
        d = c.params.get("dim", default_dim) % nd
        g = c.nodes["g"]
        params = dict(c.params)
        if not keeps_dim:
            params["keepdim"] = True
            if not c.params.get("keepdim") and c.ndim("a"):
                g = Call("unsqueeze", (g,), {"dim": d})
        indices = Call(indices_op, (c.nodes["a"],), params)
        return Call("scatter_add", (Call("zeros_like", (c.nodes["a"],)), indices, g), {"dim": d})

    return rule


def _pair_when(params: dict[str, Any], nargs: int) -> bool:
    return params.get("dim") is not None and nargs == 1


for _which, _pair_fn in (("max", torch.max), ("min", torch.min)):
    op(f"{_which}_values", "a", "dim, keepdim=False", output_of=_which, user=False, positional_params=("dim",),
       torch=lambda a, dim, keepdim=False, f=_pair_fn: f(as_tensor(a), dim, keepdim).values,
       rules={"a": selected_rule(f"{_which}_indices")},
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
                sample(f"{_which}(a, b)", lambda a, b, f=_pair: f(a, b), a=In(2, 3), b=In(2, 3))))


NORM_P_MAX = 1000  # a finite |p| beyond this overflows abs(a)**p in float64 (torch then returns garbage)


def _norm_p(p: Any) -> float:
    """torch.norm's p: a number, 'fro' (2); 'nuc' and huge finite p are refused (exit 2)."""
    if p == "fro":
        return 2
    if p == "nuc":
        raise ValueError(Msg("the nuclear norm (p='nuc') needs singular values, which gradexplain does not have yet"))
    if isinstance(p, (int, float)) and math.isfinite(p) and abs(p) > NORM_P_MAX:
        raise ValueError(Msg("p = {p:g} overflows abs(a)**p; use p=inf for the largest |a|, or |p| <= {most}", p=p,
                             most=NORM_P_MAX))
    return p


def _extreme_abs(u: str, cmp: str, dims: str) -> str:
    """g to the elements of largest (smallest) |a|, shared evenly at ties, as torch's inf-norm backward."""
    mask = f"where(abs(a) {cmp} out{u}, 1, 0)"
    return f"g{u}*sign(a)*{mask}/{mask}.sum({dims})"


def _norm_rule(c: RuleContext) -> str:
    p = _norm_p(c.params.get("p", 2))
    u = c.unsqueeze()
    if p in (math.inf, -math.inf):
        dims = c.reduced_dims()
        return _extreme_abs(u, ">=" if p > 0 else "<=", "" if dims is None else f"{tuple(dims)}, keepdim=True")
    if p == 0:  # counts the nonzero entries: a step function, gradient 0 (as PyTorch)
        return "zeros_like(a)"
    if p == 2:
        return f"g{u}*a/out{u}"
    if p == 1:
        return f"g{u}*sign(a)"
    return f"g{u}*sign(a)*abs(a)**({p} - 1)/out{u}**({p} - 1)"


def _obj_norm(a: Any, p: Any = 2, dim: Any = None, keepdim: bool = False) -> Any:
    import sympy  # heavy

    p = _norm_p(p)
    if p in (math.inf, -math.inf):
        return _obj_extreme("max" if p > 0 else "min")(ufunc(sympy.Abs, 1)(a), dim=dim, keepdim=keepdim)
    s = obj_reduce("sum")(ufunc(lambda v: sympy.Abs(v) ** p, 1)(a), dim, keepdim)
    return ufunc(lambda v: v ** (sympy.S.One / p), 1)(s)


op("norm", "a", "p=2, dim=None, keepdim=False", torch=lambda a, p=2, dim=None, keepdim=False:
   torch.linalg.vector_norm(as_tensor(a), ord=_norm_p(p), dim=dim, keepdim=keepdim),
   rules={"a": _norm_rule}, shown={"a": "g*a/out  (p = 2; g*sign(a)*|a|**(p-1)/out**(p-1); inf: ties share g)"},
   obj=_obj_norm, linear=NONLINEAR, string_values=("fro", "nuc"),
   doc="vector p-norm (default 2; p=inf, -inf, 0, 'fro'); also linalg.vector_norm(a, ord)",
   kinks=(Kink("p = inf at a tie of |a|: the tied elements share g", {"a": "[[1, -3, 3], [3, 0, 1]]"}, sample=4),),
   samples=(sample("norm(a)", lambda a: torch.linalg.vector_norm(a), a=In(2, 3)),
            sample("norm(a, p=1)", lambda a: torch.linalg.vector_norm(a, ord=1), a=In(4, domain="nz")),
            sample("norm(a, 3)", lambda a: torch.linalg.vector_norm(a, ord=3), a=In(4, domain="nz")),
            sample("norm(a, dim=1)", lambda a: torch.linalg.vector_norm(a, dim=1), a=In(2, 3)),
            sample("torch.norm(a, p=inf)", lambda a: torch.norm(a, p=math.inf), a=In(2, 3)),
            sample("vector_norm(a, ord=-inf, dim=1, keepdim=True)",
                   lambda a: torch.linalg.vector_norm(a, ord=-math.inf, dim=1, keepdim=True), a=In(2, 3, domain="nz")),
            sample("torch.norm(a, 'fro')", lambda a: torch.norm(a, "fro"), a=In(2, 3))))


def _matrix_ord(o: Any) -> Any:
    if o in ("fro", 1, -1, math.inf, -math.inf):
        return o
    raise ValueError(Msg("matrix_norm ord={ord!r} needs singular values, which gradexplain does not have yet "
                         "(supported: 'fro', 1, -1, inf, -inf)", ord=o))


def _matrix_norm_rule(c: RuleContext) -> str:
    """'fro': g*a/out; ord = ±1 (±inf): g*sign(a) on the columns (rows) whose |a|-sum is extreme, shared at ties."""
    o = _matrix_ord(c.params.get("ord", "fro"))
    keep = c.params.get("keepdim")
    g2, o1 = ("g", "out.squeeze(-1)") if keep else ("g.unsqueeze(-1).unsqueeze(-1)", "out.unsqueeze(-1)")
    if o == "fro":
        return f"{g2}*a/{'out' if keep else 'out.unsqueeze(-1).unsqueeze(-1)'}"
    over, spread = (-2, -2) if o in (1, -1) else (-1, -1)
    cmp = ">=" if o in (1, math.inf) else "<="
    mask = f"where(abs(a).sum({over}) {cmp} {o1}, 1, 0)"
    return f"{g2}*sign(a)*({mask}/{mask}.sum(-1, keepdim=True)).unsqueeze({spread})"


op("matrix_norm", "a", "ord='fro', keepdim=False",
   torch=lambda a, ord="fro", keepdim=False: torch.linalg.matrix_norm(as_tensor(a), ord=_matrix_ord(ord), keepdim=keepdim),
   rules={"a": _matrix_norm_rule}, shown={"a": "g*a/out  ('fro'; ±1, ±inf: g*sign(a) on the extreme columns/rows)"},
   linear=NONLINEAR, string_values=("fro", "nuc"), positional_params=("ord",),
   doc="matrix norm over the last two dims: 'fro', 1, -1, inf, -inf (torch's own composite graph)",
   kinks=(Kink("ord = 1 at a tie of column sums: the columns share g", {"a": "[[1, -2], [2, 1]]"}, sample=1),),
   samples=(sample("torch.linalg.matrix_norm(a)", torch.linalg.matrix_norm, a=In(2, 3)),
            sample("matrix_norm(a, 1)", lambda a: torch.linalg.matrix_norm(a, 1), a=In(2, 2, domain="nz")),
            sample("matrix_norm(a, ord=-inf, keepdim=True)", lambda a: torch.linalg.matrix_norm(a, -math.inf, keepdim=True),
                   a=In(2, 2, 3, domain="nz")),
            sample("matrix_norm(a, inf)", lambda a: torch.linalg.matrix_norm(a, math.inf), a=In(3, 2, domain="nz")),
            sample("matrix_norm(a, -1)", lambda a: torch.linalg.matrix_norm(a, -1), a=In(3, 2, domain="nz"))))


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


# ------------------------------------------------------------------------- more reductions (issue 13)


def _several(owner: str, names: tuple[str, ...] = ("values", "indices"), when: Any = None) -> Outputs:
    return Outputs(ops=tuple(f"{owner}_{n}" for n in names), names=names if names[0] == "values" else (), when=when)


def _selecting(owner: str, params: str, torch_fn: Callable[..., Any], doc: str, keeps_dim: bool = False,
               default_dim: int = -1, samples: tuple[Any, ...] = (), kinks: tuple[Kink, ...] = (),
               positional: tuple[str, ...] = ("dim",), when: Any = None, owner_samples: tuple[Any, ...] = (),
               owner_kinks: tuple[Kink, ...] = (), **kw: Any) -> None:
    """An op returning (values, indices), the values selected from a: the owner entry (what users call)
    and its two outputs; the gradient of the values goes to the selected indices."""
    kw.setdefault("shown", {"a": "values: zeros_like(a).scatter_add(dim, indices, g); indices: none"})
    op(owner, "a", params, method=True, positional_params=positional, outputs=_several(owner, when=when),
       torch=lambda a, **p: torch_fn(as_tensor(a), **p), doc=doc, samples=owner_samples, kinks=owner_kinks, **kw)
    op(f"{owner}_values", "a", params, output_of=owner, user=False, positional_params=positional,
       torch=lambda a, **p: torch_fn(as_tensor(a), **p).values,
       rules={"a": selected_rule(f"{owner}_indices", keeps_dim, default_dim)},
       shown={"a": f"zeros_like(a).scatter_add(dim, a.{owner}(...).indices, g)"}, linear=NONLINEAR,
       doc=f"{owner}(...).values: the gradient goes to the selected indices", samples=samples, kinks=kinks)
    op(f"{owner}_indices", "a", params, output_of=owner, user=False, positional_params=positional,
       torch=lambda a, **p: torch_fn(as_tensor(a), **p).indices, doc=f"{owner}(...).indices: integers, no gradient")


def _median_torch(a: torch.Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    return a.median() if dim is None else torch.median(a, dim, keepdim)


_selecting("median", "dim=None, keepdim=False", _median_torch, when=lambda p, n: p.get("dim") is not None,
           doc="lower median of all elements (ties share g), or median(a, dim) → (values, indices)",
           rules={"a": lambda c: "g*where(a >= out, where(a <= out, 1, 0), 0)/where(a >= out, where(a <= out, 1, 0), 0).sum()"},
           shown={"a": "g*where(a == out, 1, 0)/count  (ties share g)"}, linear=NONLINEAR,
           samples=(sample("a.median(1).values", lambda a: a.median(1).values, a=In(2, 3)),
                    sample("torch.median(a, 0, keepdim=True)[0]", lambda a: torch.median(a, 0, keepdim=True)[0],
                           a=In(2, 3))),
           kinks=(Kink("a tie: the whole gradient to the returned index", {"a": "[[1, 1, 0], [2, 2, 2]]"}),),
           owner_samples=(sample("median(a)", torch.median, a=In(2, 3)),),
           owner_kinks=(Kink("median(a) at a tie: the tied elements share g", {"a": "[[1, 2, 2], [0, 2, 5]]"}),))
_selecting("mode", "dim=-1, keepdim=False", lambda a, dim=-1, keepdim=False: torch.mode(a, dim, keepdim),
           doc="most frequent value along dim → (values, indices)",
           samples=(sample("a.mode(1).values", lambda a: a.mode(1).values, a=In(2, 3)),),
           kinks=(Kink("repeated values: the gradient to the returned index", {"a": "[[1, 1, 0], [2, 3, 2]]"}),))
_selecting("kthvalue", "k, dim=-1, keepdim=False", lambda a, k, dim=-1, keepdim=False: torch.kthvalue(a, k, dim, keepdim),
           positional=("k", "dim"), doc="k-th smallest along dim → (values, indices)",
           samples=(sample("a.kthvalue(2, 0).values", lambda a: a.kthvalue(2, 0).values, a=In(3, 2)),
                    sample("torch.kthvalue(a, 1)[0]", lambda a: torch.kthvalue(a, 1)[0], a=In(2, 3))))
_selecting("topk", "k, dim=-1, largest=True, sorted=True",
           lambda a, k, dim=-1, largest=True, sorted=True: torch.topk(a, k, dim, largest, sorted), keeps_dim=True,
           positional=("k", "dim", "largest", "sorted"), doc="the k largest (smallest) along dim → (values, indices)",
           samples=(sample("a.topk(2).values", lambda a: a.topk(2).values, a=In(2, 3)),
                    sample("torch.topk(a, 1, dim=0, largest=False)[0]", lambda a: torch.topk(a, 1, dim=0, largest=False)[0],
                           a=In(2, 3))))
_selecting("sort", "dim=-1, descending=False, stable=False",
           lambda a, dim=-1, descending=False, stable=False:  # stable=True is another overload (SortBackward1)
           torch.sort(a, dim=dim, descending=descending, stable=True) if stable else torch.sort(a, dim, descending),
           keeps_dim=True, positional=("dim", "descending"), doc="sorted along dim → (values, indices)",
           samples=(sample("a.sort().values", lambda a: a.sort().values, a=In(2, 3)),
                    sample("v, i = torch.sort(a, 0, descending=True); v", lambda a: torch.sort(a, 0, descending=True)[0],
                           a=In(3, 2))))
_selecting("cummax", "dim", lambda a, dim: torch.cummax(a, dim), keeps_dim=True,
           doc="running maximum along dim → (values, indices)",
           samples=(sample("a.cummax(1).values", lambda a: a.cummax(1).values, a=In(2, 3)),))
_selecting("cummin", "dim", lambda a, dim: torch.cummin(a, dim), keeps_dim=True,
           doc="running minimum along dim → (values, indices)",
           samples=(sample("torch.cummin(a, 0)[0]", lambda a: torch.cummin(a, 0)[0], a=In(3, 2)),))


def _amax_rule(which: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        u = c.unsqueeze()
        mask = f"where(a {'>=' if which == 'max' else '<='} out{u}, 1, 0)"
        dims = c.reduced_dims()
        count = f"{mask}.sum()" if dims is None else f"{mask}.sum({tuple(dims)}, keepdim=True)"
        return f"g{u}*{mask}/{count}"

    return rule


for _which, _fn in (("max", torch.amax), ("min", torch.amin)):
    op(f"a{_which}", "a", "dim=None, keepdim=False", method=True, positional_params=("dim",),
       torch=lambda a, dim=None, keepdim=False, f=_fn: f(as_tensor(a), () if dim is None else dim, keepdim),
       rules={"a": _amax_rule(_which)}, shown={"a": f"g*where(a {'>=' if _which == 'max' else '<='} out, 1, 0)/count  (ties share g)"},
       linear=NONLINEAR, doc=f"{_which}imum over dims (ties share the gradient evenly, as torch)",
       kinks=(Kink("ties: each tied element gets g/count", {"a": "[[1, 3, 3], [3, 0, 3]]"}),),
       samples=(sample(f"a.a{_which}(1)", lambda a, f=_fn: f(a, 1), a=In(2, 3)),
                sample(f"torch.a{_which}(a, (0, 1), keepdim=True)", lambda a, f=_fn: f(a, (0, 1), keepdim=True),
                       a=In(2, 3, 2)),
                sample(f"a.a{_which}()", lambda a, f=_fn: f(a), a=In(2, 3))))


def _prod_torch(a: Any, dim: Any = None, keepdim: bool = False) -> torch.Tensor:
    a = as_tensor(a)
    return a.prod() if dim is None else a.prod(dim, keepdim=keepdim)


def _prod_rule(c: RuleContext) -> str:
    """The product of the *other* elements, without dividing by a (so zeros are fine, as torch's rule):
    ``where(eye(n) > 0, 1, a.unsqueeze(d)).prod(d + 1)``: row i of that n×n mask has a 1 at i."""
    shape, nd = c.shapes["a"], c.ndim("a")
    if nd == 0:
        return "g*ones_like(a)"
    if c.params.get("dim") is None:
        n = math.prod(shape)
        return f"(g*where(eye({n}) > 0, 1, a.reshape(1, {n})).prod(1)).reshape({tuple(shape)})"
    d = c.params["dim"] % nd
    n = shape[d]
    eye = f"eye({n}).reshape({(n, n) + (1,) * (nd - 1 - d)})"
    return f"g{c.unsqueeze()}*where({eye} > 0, 1, a.unsqueeze({d})).prod({d + 1})"


def _obj_prod(a: Any, dim: Any = None, keepdim: bool = False) -> Any:
    np = obj_np()
    a = np.asarray(a, dtype=object)
    return np.asarray(np.prod(a, axis=dim, keepdims=keepdim), dtype=object)


op("prod", "a", "dim=None, keepdim=False", torch=_prod_torch, method=True, positional_params=("dim",),
   rules={"a": _prod_rule}, shown={"a": "g*(product of the other elements)  (zeros as torch)"}, obj=_obj_prod,
   linear=NONLINEAR, doc="product of elements (over dim); the gradient is safe at zeros",
   kinks=(Kink("one zero: only it gets a nonzero gradient", {"a": "[[1, 0, 3], [2, 2, 2]]"}),
          Kink("two zeros: all gradient 0", {"a": "[[0, 0, 3], [2, 0, 2]]"}),
          Kink("zeros along dim", {"a": "[[0, 0, 3], [2, 0, 2]]"}, sample=1)),
   samples=(sample("a.prod()", lambda a: a.prod(), a=In(2, 3)),
            sample("torch.prod(a, 1)", lambda a: torch.prod(a, 1), a=In(2, 3)),
            sample("a.prod(0, keepdim=True)", lambda a: a.prod(0, keepdim=True), a=In(2, 3, 2))))


def _correction(p: dict[str, Any]) -> Any:
    if p.get("correction") is not None:
        return p["correction"]
    return 0 if p.get("unbiased") is False else 1


def _moment_torch(fn: Callable[..., Any]) -> Callable[..., Any]:
    def apply(a: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, correction: Any = None) -> Any:
        return fn(as_tensor(a), dim=dim, correction=_correction({"unbiased": unbiased, "correction": correction}),
                  keepdim=keepdim)

    return apply


def _centered(c: RuleContext) -> str:
    dims = c.reduced_dims()
    mean = "a.mean()" if dims is None else f"a.mean({tuple(dims)}, keepdim=True)"
    return f"(a - {mean})"


def _var_rule(c: RuleContext) -> str:
    return f"2*g{c.unsqueeze()}*{_centered(c)}/{c.count() - _correction(c.params)}"


def _std_rule(c: RuleContext) -> str:
    u = c.unsqueeze()
    return f"g{u}*{_centered(c)}/({c.count() - _correction(c.params)}*out{u})"


_MOMENT = "dim=None, unbiased=None, keepdim=False, correction=None"
for _name, _fn, _rule, _shown in (("var", torch.var, _var_rule, "2*g*(a - a.mean(dim))/(N - correction)"),
                                  ("std", torch.std, _std_rule, "g*(a - a.mean(dim))/((N - correction)*out)")):
    op(_name, "a", _MOMENT, torch=_moment_torch(_fn), method=True, positional_params=("dim", "unbiased", "keepdim"),
       rules={"a": _rule}, shown={"a": _shown}, linear=NONLINEAR,
       doc=f"{'variance' if _name == 'var' else 'standard deviation'} (over dim; correction=1 unless unbiased=False "
           "or correction=)",
       samples=(sample(f"a.{_name}()", lambda a, f=_fn: f(a), a=In(2, 3)),
                sample(f"a.{_name}(0, keepdim=True, unbiased=False)", lambda a, f=_fn: f(a, 0, keepdim=True, unbiased=False),
                       a=In(2, 3)),
                sample(f"torch.{_name}(a, dim=(0, 2), correction=2)", lambda a, f=_fn: f(a, dim=(0, 2), correction=2),
                       a=In(2, 3, 2))))
    pair = torch.var_mean if _name == "var" else torch.std_mean
    owner = f"{_name}_mean"
    op(owner, "a", _MOMENT, method=False, outputs=Outputs(ops=(f"{owner}_{_name}", f"{owner}_mean")),
       torch=_moment_torch(pair), shown={"a": f"[0]: {_shown}; [1]: g*ones_like(a)/N"},
       doc=f"({_name}, mean) in one call → two outputs, [0] and [1]")
    op(f"{owner}_{_name}", "a", _MOMENT, output_of=owner, user=False, torch=lambda *a, f=_moment_torch(pair), **k: f(*a, **k)[0],
       rules={"a": _rule}, shown={"a": _shown}, linear=NONLINEAR, doc=f"{owner}(...)[0]",
       samples=(sample(f"v, m = torch.{owner}(a, 1); v * m", lambda a, f=pair: f(a, 1)[0] * f(a, 1)[1], a=In(2, 3)),))
    op(f"{owner}_mean", "a", _MOMENT, output_of=owner, user=False, torch=lambda *a, f=_moment_torch(pair), **k: f(*a, **k)[1],
       rules={"a": lambda c: f"g{c.unsqueeze()}*ones_like(a)/{c.count()}"}, shown={"a": "g*ones_like(a)/N"},
       linear=NONLINEAR, doc=f"{owner}(...)[1]",
       samples=(sample(f"torch.{owner}(a, 0, keepdim=True)[1]", lambda a, f=pair: f(a, 0, keepdim=True)[1],
                       a=In(2, 3)),))


def _reverse_cumsum(x: str, d: int) -> str:
    """sum over k >= i along d, without flip: total - cumsum + self."""
    return f"({x}.sum({d}, keepdim=True) - {x}.cumsum({d}) + {x})"


def _dim(c: RuleContext) -> int:
    return c.params["dim"] % max(c.ndim("a"), 1)


def _pair_masks(c: RuleContext, d: int) -> tuple[str, str, str]:
    """EXPR for i (dim d) and k (dim d + 1) positions along dim d, and the i == k mask, as broadcastable tensors."""
    nd = c.ndim("a")
    n = c.shapes["a"][d] if nd else 1  # a 0-d input is one element along its only "dim"
    tail = (1,) * max(nd - 1 - d, 0)
    i = f"arange({n}).reshape({(n, 1) + tail})"
    k = f"arange({n}).reshape({(1, n) + tail})"
    return i, k, f"eye({n}).reshape({(n, n) + tail})"


def _cumprod_rule(c: RuleContext) -> str:
    """sum over k >= i of g_k * prod_{j <= k, j != i} a_j: no division, so zeros are fine (as torch)."""
    d = _dim(c)
    i, k, eye = _pair_masks(c, d)
    return f"(where({i} <= {k}, g.unsqueeze({d}), 0)*where({eye} > 0, 1, a.unsqueeze({d})).cumprod({d + 1})).sum({d + 1})"


def _logcumsumexp_rule(c: RuleContext) -> str:
    """sum over k >= i of g_k * exp(a_i - out_k) (stable: each exponent is <= 0); a 0-d input is its own
    running sum, and torch passes g through unchanged (even at inf or nan)."""
    if not c.ndim("a"):
        return "g"
    d = _dim(c)
    i, k, _ = _pair_masks(c, d)
    return f"where({i} <= {k}, g.unsqueeze({d})*exp(a.unsqueeze({d + 1}) - out.unsqueeze({d})), 0).sum({d + 1})"


def _obj_cumsum(a: Any, dim: int) -> Any:
    return obj_np().cumsum(obj_np().asarray(a, dtype=object), axis=dim)


def _obj_cumprod(a: Any, dim: int) -> Any:
    return obj_np().cumprod(obj_np().asarray(a, dtype=object), axis=dim)


op("cumsum", "a", "dim", torch=lambda a, dim: torch.cumsum(as_tensor(a), dim), method=True, positional_params=("dim",),
   rules={"a": lambda c: _reverse_cumsum("g", _dim(c))}, shown={"a": "g.sum(dim, keepdim=True) - g.cumsum(dim) + g"},
   obj=_obj_cumsum, linear=Linear("a", batch="dims", dims=("dim",)), doc="running sum along dim",
   samples=(sample("a.cumsum(1)", lambda a: a.cumsum(1), a=In(2, 3)),
            sample("torch.cumsum(a, dim=0) * a", lambda a: torch.cumsum(a, dim=0) * a, a=In(3, 2))))
op("cumprod", "a", "dim", torch=lambda a, dim: torch.cumprod(as_tensor(a), dim), method=True, positional_params=("dim",),
   rules={"a": _cumprod_rule}, shown={"a": "sum over k >= i of g_k * prod(a_j, j <= k, j != i)"}, obj=_obj_cumprod,
   linear=NONLINEAR, doc="running product along dim (gradient safe at zeros)",
   kinks=(Kink("zeros: no division by a", {"a": "[[1, 0, 3], [0, 0, 2]]"}),),
   samples=(sample("a.cumprod(1)", lambda a: a.cumprod(1), a=In(2, 3)),
            sample("torch.cumprod(a, 0)", lambda a: torch.cumprod(a, 0), a=In(3, 2))))
op("logcumsumexp", "a", "dim", torch=lambda a, dim: torch.logcumsumexp(as_tensor(a), dim), method=True,
   positional_params=("dim",), rules={"a": _logcumsumexp_rule}, shown={"a": "sum over k >= i of g_k*exp(a_i - out_k)"},
   linear=NONLINEAR, doc="log of the running sum of exp along dim",
   samples=(sample("a.logcumsumexp(1)", lambda a: a.logcumsumexp(1), a=In(2, 3)),))
