"""Softmax and friends along any dim: ``softmax log_softmax softmin`` (``dim`` positional, keyword or
negative; left out, torch's implicit dim).  Closed-form rules: the Jacobian of softmax is
``diag(s) - s sᵀ`` along ``dim``, so its VJP is ``out*(g - (g*out).sum(dim, keepdim=True))``."""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from .spec import NONLINEAR, In, RuleContext, as_tensor, obj_np, op, sample, ufunc


def implicit_dim(ndim: int) -> int:
    """torch's implicit softmax dim (``_get_softmax_dim``): 0 for 0-, 1- and 3-D input, else 1."""
    return 0 if ndim in (0, 1, 3) else 1


def softmax_dim(c: RuleContext) -> int:
    """The dim a softmax-family rule sums over: the given one (negative dims work as they are)."""
    dim = c.params.get("dim")
    return implicit_dim(c.ndim("a")) if dim is None else dim


def obj_softmax(a: Any, dim: Any = None, log: bool = False) -> Any:
    import sympy  # heavy

    np = obj_np()
    a = np.asarray(a, dtype=object)
    d = dim if dim is not None else implicit_dim(a.ndim)
    e = ufunc(sympy.exp, 1)(a)
    s = np.sum(e, axis=d, keepdims=True)
    return a - ufunc(sympy.log, 1)(s) if log else e / s


def _softmax_torch(fn: Callable[..., torch.Tensor]) -> Callable[..., Any]:
    def apply(a: Any, dim: Any = None) -> torch.Tensor:
        a = as_tensor(a)
        return fn(a, dim=implicit_dim(a.dim()) if dim is None else dim)

    return apply


op("softmax", "a", "dim=None", torch=_softmax_torch(F.softmax), method=True, positional_params=("dim",),
   rules={"a": lambda c: f"out*(g - (g*out).sum({softmax_dim(c)}, keepdim=True))"},
   shown={"a": "out*(g - (g*out).sum(dim, keepdim=True))"}, obj=obj_softmax, linear=NONLINEAR,
   doc="exp(a)/sum(exp(a)) along dim",
   samples=(sample("softmax(a, 1)", lambda a: F.softmax(a, 1), a=In(2, 3)),
            sample("softmax(a, dim=0)", lambda a: F.softmax(a, dim=0), a=In(2, 3)),
            sample("softmax(a) * b", lambda a, b: F.softmax(a, 0) * b, a=In(4), b=In(4)),
            sample("a.softmax(-1) * b", lambda a, b: a.softmax(-1) * b, a=In(2, 2, 3), b=In(3)),
            sample("F.softmax(a, dim=-2)", lambda a: F.softmax(a, dim=-2), a=In(2, 3, 2)),
            sample("torch.softmax(a, 1)", lambda a: torch.softmax(a, 1), a=In(2, 3, 2)),
            sample("softmax(a)", lambda a: F.softmax(a, 0), a=In(2, 3, 2))))
op("log_softmax", "a", "dim=None", torch=_softmax_torch(F.log_softmax), method=True, positional_params=("dim",),
   rules={"a": lambda c: f"g - exp(out)*g.sum({softmax_dim(c)}, keepdim=True)"},
   shown={"a": "g - exp(out)*g.sum(dim, keepdim=True)"}, obj=lambda a, dim=None: obj_softmax(a, dim, log=True),
   linear=NONLINEAR, doc="log(softmax(a)) along dim, computed stably",
   samples=(sample("log_softmax(a, 1)", lambda a: F.log_softmax(a, 1), a=In(2, 3)),
            sample("a.log_softmax(dim=-1)", lambda a: a.log_softmax(dim=-1), a=In(2, 2, 3)),
            sample("F.log_softmax(a, 0) * b", lambda a, b: F.log_softmax(a, 0) * b, a=In(3, 2), b=In(2)),
            sample("log_softmax(a)", lambda a: F.log_softmax(a, 1), a=In(2, 3))))
op("softmin", "a", "dim=None", torch=_softmax_torch(F.softmin), positional_params=("dim",),
   rules={"a": lambda c: f"-out*(g - (g*out).sum({softmax_dim(c)}, keepdim=True))"},
   shown={"a": "-out*(g - (g*out).sum(dim, keepdim=True))"}, obj=lambda a, dim=None: obj_softmax(-obj_np().asarray(
       a, dtype=object), dim), linear=NONLINEAR, doc="softmax(-a) along dim",
   samples=(sample("softmin(a, 1)", lambda a: F.softmin(a, 1), a=In(2, 3)),
            sample("F.softmin(a, dim=-1) * b", lambda a, b: F.softmin(a, dim=-1) * b, a=In(2, 2, 3), b=In(3)),
            sample("softmin(a)", lambda a: F.softmin(a, 0), a=In(4))))
