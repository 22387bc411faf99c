"""Pooling: ``max_pool1d max_pool2d max_pool3d adaptive_max_pool1d adaptive_max_pool2d avg_pool1d avg_pool2d
avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d``, with their backward ops.

Both kinds are linear in what they pool once the window choice is fixed, so each gradient is one
whole-tensor op of ``g`` (never per element), and the backward op's own gradient is the forward
again, which keeps the family closed under differentiation:

- max pools route g to the argmax of each window: ``P_backward(g, x)`` scatters g to the indices
  torch's ``return_indices=True`` gives for x; its adjoint ``P_gather(h, x)`` picks h at those indices.
- average pools are linear maps A: ``P_backward(g, x)`` is Aᵀg (x gives only the shape), computed by
  torch's own backward of the pool; its adjoint is the pool itself.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from .spec import NONLINEAR, In, Kink, RuleContext, as_tensor, op, sample


def _call_text(name: str, args: str, c: RuleContext, params: tuple[tuple[str, Any], ...]) -> str:
    """``name(args, k=v, ...)`` with the node's params that differ from the defaults."""
    shown = [f"{k}={c.params[k]!r}" for k, default in params if k in c.params and c.params[k] != default]
    return f"{name}({', '.join([args, *shown])})"


def _indices(fn: Callable[..., Any], x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    return fn(x.detach(), return_indices=True, **params)[1]


def _scatter(fn: Callable[..., Any], n: int) -> Callable[..., torch.Tensor]:
    def apply(g: Any, x: Any, **params: Any) -> torch.Tensor:
        x, g = as_tensor(x), as_tensor(g)
        idx = _indices(fn, x, params)
        flat = torch.zeros_like(x).flatten(-n).scatter_add(-1, idx.flatten(-n), g.flatten(-n))
        return flat.reshape(x.shape)

    return apply


def _gather(fn: Callable[..., Any], n: int) -> Callable[..., torch.Tensor]:
    def apply(h: Any, x: Any, **params: Any) -> torch.Tensor:
        x, h = as_tensor(x), as_tensor(h)
        idx = _indices(fn, x, params)
        return h.flatten(-n).gather(-1, idx.flatten(-n)).reshape(idx.shape)

    return apply


def vjp_of(fn: Callable[..., Any]) -> Callable[..., torch.Tensor]:
    """Aᵀg for a linear pool A, by torch's backward of A (kept differentiable in g)."""

    def apply(g: Any, x: Any, **params: Any) -> torch.Tensor:
        g = as_tensor(g)
        z = torch.zeros_like(as_tensor(x)).requires_grad_()
        with torch.enable_grad():  # create_graph only where g needs a gradient itself
            (grad,) = torch.autograd.grad(fn(z, **params), z, g, create_graph=g.requires_grad)
        return grad

    return apply


def _max_pool(fn: Callable[..., Any], n: int, params: str, defaults: tuple[tuple[str, Any], ...], samples: tuple[Any, ...],
              gather_sample: Any, doc: str, positional: tuple[str, ...], ties: dict[str, str] | None = None) -> None:
    name = fn.__name__
    kinks = (Kink("a tie in a window: the whole gradient to the element torch's return_indices picks", ties),) \
        if ties else ()
    op(name, "x", params, torch=lambda x, _f=fn, **p: _f(as_tensor(x), **p), positional_params=positional,
       rules={"x": lambda c: _call_text(f"{name}_backward", "g, x", c, defaults)},
       shown={"x": f"{name}_backward(g, x, ...): g routed to each window's argmax"}, linear=NONLINEAR,
       doc=doc, samples=samples, kinks=kinks)
    op(f"{name}_backward", "g, x", params, torch=_scatter(fn, n), positional_params=positional,
       rules={"g": lambda c: _call_text(f"{name}_gather", "g, x", c, defaults)},
       shown={"g": f"{name}_gather(g, x, ...): g at x's argmax indices"}, linear=NONLINEAR,
       doc=f"the gradient of {name}: g scattered to the argmax of each window of x",
       samples=(sample(f"{name}_backward(g, x, {gather_sample[0]})", gather_sample[1], const=("x",),
                       g=In(*gather_sample[2]), x=In(*gather_sample[3])),))
    op(f"{name}_gather", "h, x", params, torch=_gather(fn, n), positional_params=positional,
       rules={"h": lambda c: _call_text(f"{name}_backward", "g, x", c, defaults)},
       shown={"h": f"{name}_backward(g, x, ...)"}, linear=NONLINEAR,
       doc=f"h picked at the argmax indices of {name}(x) (the adjoint of {name}_backward)",
       samples=(sample(f"{name}_gather(h, x, {gather_sample[0]})",
                       lambda h, x, _f=fn, _p=gather_sample[4]: h.flatten(-n).gather(
                           -1, _f(x.detach(), return_indices=True, **_p)[1].flatten(-n)).reshape(_f(x, **_p).shape),
                       const=("x",), h=In(*gather_sample[3]), x=In(*gather_sample[3])),))


def _max_ref(fn: Callable[..., Any], n: int, **p: Any) -> Callable[..., torch.Tensor]:
    def ref(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        idx = fn(x.detach(), return_indices=True, **p)[1]
        return torch.zeros_like(x).flatten(-n).scatter_add(-1, idx.flatten(-n), g.flatten(-n)).reshape(x.shape)

    return ref


_MAX = (("stride", None), ("padding", 0), ("dilation", 1), ("ceil_mode", False))
_MAX_PARAMS = "kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False"
_max_pool(F.max_pool1d, 1, _MAX_PARAMS, (("kernel_size", None),) + _MAX,
          (sample("F.max_pool1d(x, 2)", lambda x: F.max_pool1d(x, 2), x=In(1, 2, 6)),
           sample("max_pool1d(x, 3, stride=2, padding=1)", lambda x: F.max_pool1d(x, 3, stride=2, padding=1), x=In(2, 7))),
          ("2", _max_ref(F.max_pool1d, 1, kernel_size=2), (1, 2, 3), (1, 2, 6), {"kernel_size": 2}),
          "max over sliding 1-D windows", ("kernel_size",))
_max_pool(F.max_pool2d, 2, _MAX_PARAMS, (("kernel_size", None),) + _MAX,
          (sample("F.max_pool2d(x, 2)", lambda x: F.max_pool2d(x, 2), x=In(1, 2, 4, 4)),
           sample("max_pool2d(x, 3, stride=2, padding=1)", lambda x: F.max_pool2d(x, 3, stride=2, padding=1),
                  x=In(1, 1, 5, 5)),
           sample("max_pool2d(x, (2, 3), stride=1, dilation=(1, 2), ceil_mode=True)",
                  lambda x: F.max_pool2d(x, (2, 3), stride=1, dilation=(1, 2), ceil_mode=True), x=In(2, 4, 6))),
          ("2", _max_ref(F.max_pool2d, 2, kernel_size=2), (1, 2, 2, 2), (1, 2, 4, 4), {"kernel_size": 2}),
          "max over sliding 2-D windows", ("kernel_size",),
          ties={"x": "[[[[1, 1, 0, 2], [1, 0, 2, 2], [3, 3, 3, 3], [3, 3, 3, 3]], "
                     "[[0, 0, 0, 0], [0, 0, 0, 0], [5, 1, 1, 5], [1, 5, 5, 1]]]]"})
_max_pool(F.max_pool3d, 3, _MAX_PARAMS, (("kernel_size", None),) + _MAX,
          (sample("max_pool3d(x, 2)", lambda x: F.max_pool3d(x, 2), x=In(1, 1, 2, 4, 4)),),
          ("2", _max_ref(F.max_pool3d, 3, kernel_size=2), (1, 1, 2, 2, 2), (1, 1, 4, 4, 4), {"kernel_size": 2}),
          "max over sliding 3-D windows", ("kernel_size",))
_max_pool(F.adaptive_max_pool1d, 1, "output_size", (("output_size", None),),
          (sample("F.adaptive_max_pool1d(x, 3)", lambda x: F.adaptive_max_pool1d(x, 3), x=In(1, 2, 7)),),
          ("3", _max_ref(F.adaptive_max_pool1d, 1, output_size=3), (1, 2, 3), (1, 2, 7), {"output_size": 3}),
          "max over output_size adaptive 1-D windows", ("output_size",))
_max_pool(F.adaptive_max_pool2d, 2, "output_size", (("output_size", None),),
          (sample("F.adaptive_max_pool2d(x, (2, 3))", lambda x: F.adaptive_max_pool2d(x, (2, 3)), x=In(1, 2, 5, 7)),
           sample("adaptive_max_pool2d(x, 2)", lambda x: F.adaptive_max_pool2d(x, 2), x=In(3, 4, 4))),
          ("2", _max_ref(F.adaptive_max_pool2d, 2, output_size=2), (1, 2, 2, 2), (1, 2, 5, 5), {"output_size": 2}),
          "max over adaptive 2-D windows giving output_size", ("output_size",))


def _avg_pool(fn: Callable[..., Any], params: str, defaults: tuple[tuple[str, Any], ...], samples: tuple[Any, ...],
              back_sample: tuple[str, dict[str, Any], tuple[int, ...], tuple[int, ...]], doc: str,
              positional: tuple[str, ...]) -> None:
    name = fn.__name__
    op(name, "x", params, torch=lambda x, _f=fn, **p: _f(as_tensor(x), **p), positional_params=positional,
       rules={"x": lambda c: _call_text(f"{name}_backward", "g, x", c, defaults)},
       shown={"x": f"{name}_backward(g, x, ...): each window's g spread evenly over it"}, linear=NONLINEAR,
       doc=doc, samples=samples)
    text, p, g_shape, x_shape = back_sample

    def ref(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        z = torch.zeros_like(x).requires_grad_()
        return torch.autograd.grad(fn(z, **p), z, g, create_graph=True)[0]

    op(f"{name}_backward", "g, x", params, torch=vjp_of(fn), positional_params=positional,
       rules={"g": lambda c: _call_text(name, "g", c, defaults)}, shown={"g": f"{name}(g, ...)  (the adjoint)"},
       linear=NONLINEAR, doc=f"the gradient of {name} (its adjoint: x gives only the shape)",
       samples=(sample(f"{name}_backward(g, x, {text})", ref, const=("x",), g=In(*g_shape), x=In(*x_shape)),))


_AVG = (("stride", None), ("padding", 0), ("ceil_mode", False), ("count_include_pad", True))
_avg_pool(F.avg_pool1d, "kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True",
          (("kernel_size", None),) + _AVG,
          (sample("F.avg_pool1d(x, 2)", lambda x: F.avg_pool1d(x, 2), x=In(1, 2, 6)),
           sample("avg_pool1d(x, 3, stride=2, padding=1, count_include_pad=False)",
                  lambda x: F.avg_pool1d(x, 3, stride=2, padding=1, count_include_pad=False), x=In(2, 7))),
          ("2", {"kernel_size": 2}, (1, 2, 3), (1, 2, 6)), "mean over sliding 1-D windows", ("kernel_size",))
_avg_pool(F.avg_pool2d, "kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, "
          "divisor_override=None", (("kernel_size", None),) + _AVG + (("divisor_override", None),),
          (sample("F.avg_pool2d(x, 2)", lambda x: F.avg_pool2d(x, 2), x=In(1, 2, 4, 4)),
           sample("avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)",
                  lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True), x=In(1, 1, 6, 6)),
           sample("avg_pool2d(x, (2, 1), divisor_override=3)", lambda x: F.avg_pool2d(x, (2, 1), divisor_override=3),
                  x=In(2, 4, 3))),
          ("2", {"kernel_size": 2}, (1, 2, 2, 2), (1, 2, 4, 4)), "mean over sliding 2-D windows", ("kernel_size",))
_avg_pool(F.avg_pool3d, "kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, "
          "divisor_override=None", (("kernel_size", None),) + _AVG + (("divisor_override", None),),
          (sample("avg_pool3d(x, 2)", lambda x: F.avg_pool3d(x, 2), x=In(1, 1, 4, 4, 4)),),
          ("2", {"kernel_size": 2}, (1, 1, 2, 2, 2), (1, 1, 4, 4, 4)), "mean over sliding 3-D windows", ("kernel_size",))
_avg_pool(F.adaptive_avg_pool1d, "output_size", (("output_size", None),),
          (sample("F.adaptive_avg_pool1d(x, 3)", lambda x: F.adaptive_avg_pool1d(x, 3), x=In(1, 2, 7)),),
          ("3", {"output_size": 3}, (1, 2, 3), (1, 2, 7)), "mean over adaptive 1-D windows", ("output_size",))
_avg_pool(F.adaptive_avg_pool2d, "output_size", (("output_size", None),),
          (sample("F.adaptive_avg_pool2d(x, (2, 3))", lambda x: F.adaptive_avg_pool2d(x, (2, 3)), x=In(1, 2, 5, 7)),
           sample("adaptive_avg_pool2d(x, 1)", lambda x: F.adaptive_avg_pool2d(x, 1), x=In(3, 4, 4))),
          ("2", {"output_size": 2}, (1, 2, 2, 2), (1, 2, 5, 5)), "mean over adaptive 2-D windows giving output_size",
          ("output_size",))
