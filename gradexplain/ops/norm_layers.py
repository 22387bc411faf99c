"""Normalisation layers: ``batch_norm group_norm instance_norm rms_norm`` (``layer_norm`` is in :mod:`.nn`).

All of them normalise x over some dims D, ``xhat = (x - mean_D(x))/sqrt(var_D(x) + eps)`` (biased
variance), then scale and shift per channel.  The closed form of the input gradient is the one of
``layer_norm`` over those dims: ``(gw - mean_D(gw) - xhat*mean_D(gw*xhat))/sqrt(var_D(x) + eps)`` with
``gw = g*weight``; weight: ``(g*xhat)`` summed over every dim but the channel; bias: ``g`` summed so.
Batch norm in eval mode uses the running statistics instead, so it is affine in x: ``gw/sqrt(running_var + eps)``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from .spec import NONLINEAR, In, RuleContext, op, sample


def _d(dims: tuple[int, ...]) -> str:
    return repr(dims[0]) if len(dims) == 1 else repr(dims)


def normalised_grad(x: str, gw: str, dims: tuple[int, ...], eps: float) -> tuple[str, str, str]:
    """(input gradient, xhat, std) texts for normalising ``x`` over ``dims`` with gradient ``gw``."""
    d = _d(dims)
    centred = f"({x} - {x}.mean({d}, keepdim=True))"
    std = f"sqrt(({centred}**2).mean({d}, keepdim=True) + {eps!r})"
    xhat = f"({centred}/{std})"
    return f"({gw} - {gw}.mean({d}, keepdim=True) - {xhat}*({gw}*{xhat}).mean({d}, keepdim=True))/{std}", xhat, std


def _channel_view(c: RuleContext, name: str) -> str:
    """A per-channel vector shaped to broadcast against x (N, C, *): ``w.reshape(C, 1, …)``."""
    nd = c.ndim("x")
    return f"{name}.reshape({(c.shapes[name][0],) + (1,) * (nd - 2)!r})"


def _not_channel(c: RuleContext) -> tuple[int, ...]:
    return tuple(d for d in range(c.ndim("x")) if d != 1)


# ------------------------------------------------------------------------------ batch_norm


def _batch_norm_torch(x: Any, running_mean: Any = None, running_var: Any = None, weight: Any = None, bias: Any = None,
                      training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> torch.Tensor:
    # torch updates the running statistics in place; a copy keeps the user's values fixed across the
    # re-runs (finite differences) while the output and grad_fn are the same
    rm = None if running_mean is None else running_mean.detach().clone()
    rv = None if running_var is None else running_var.detach().clone()
    return F.batch_norm(x, rm, rv, weight, bias, training=training, momentum=momentum, eps=eps)


def _batch_norm_rule(arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        eps = c.params.get("eps", 1e-5)
        dims = _not_channel(c)
        training = c.params.get("training", False) or "running_mean" not in c.shapes
        gw = f"(g*{_channel_view(c, 'weight')})" if "weight" in c.shapes else "g"
        if training:
            gx, xhat, _ = normalised_grad("x", gw, dims, eps)
        else:
            std = f"sqrt({_channel_view(c, 'running_var')} + {eps!r})"
            gx, xhat = f"{gw}/{std}", f"((x - {_channel_view(c, 'running_mean')})/{std})"
        if arg == "x":
            return gx
        if arg == "weight":
            return f"(g*{xhat}).sum({_d(dims)})"
        return f"g.sum({_d(dims)})"

    return rule


op("batch_norm", "x, running_mean, running_var, weight, bias", "training=False, momentum=0.1, eps=1e-05",
   optional_args=("running_mean", "running_var", "weight", "bias"), torch=_batch_norm_torch,
   rules={a: _batch_norm_rule(a) for a in ("x", "weight", "bias")}, linear=NONLINEAR,
   shown={"x": "training: (gw - mean(gw) - xhat*mean(gw*xhat))/sqrt(var + eps) over (N, *); eval: gw/sqrt(running_var + eps)",
          "weight": "(g*xhat).sum over (N, *)", "bias": "g.sum over (N, *)"},
   doc="normalise each channel over the batch (training) or with running statistics (eval), scale, shift",
   samples=(sample("batch_norm(x, rm, rv, w, b, training=True)",
                   lambda x, rm, rv, w, b: F.batch_norm(x, rm.clone(), rv.clone(), w, b, training=True),
                   const=("rm", "rv"), x=In(3, 2, 2), rm=In(2), rv=In(2, domain="pos"), w=In(2), b=In(2)),
            sample("F.batch_norm(x, rm, rv, w, b)", lambda x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b),
                   const=("rm", "rv"), x=In(2, 2, 2, 2), rm=In(2), rv=In(2, domain="pos"), w=In(2), b=In(2)),
            sample("batch_norm(x, training=True, eps=0.01)", lambda x: F.batch_norm(x, None, None, training=True, eps=0.01),
                   x=In(4, 3))))


# ------------------------------------------------------------------------------ group / instance norm


def _group_norm_rule(arg: str) -> Callable[[RuleContext], str]:
    """x reshaped to (N, G, rest) is normalised over its last dim."""

    def rule(c: RuleContext) -> str:
        eps = c.params.get("eps", 1e-5)
        shape = c.shapes["x"]
        grouped = (shape[0], c.params["num_groups"], -1)
        gw = f"(g*{_channel_view(c, 'weight')})" if "weight" in c.shapes else "g"
        gx, xhat, _ = normalised_grad(f"x.reshape({grouped!r})", f"{gw}.reshape({grouped!r})", (2,), eps)
        if arg == "x":
            return f"({gx}).reshape({tuple(shape)!r})"
        if arg == "weight":
            return f"(g*{xhat}.reshape({tuple(shape)!r})).sum({_d(_not_channel(c))})"
        return f"g.sum({_d(_not_channel(c))})"

    return rule


op("group_norm", "x, weight, bias", "num_groups, eps=1e-05", optional_args=("weight", "bias"),
   torch=lambda x, weight=None, bias=None, num_groups=1, eps=1e-5: F.group_norm(x, num_groups, weight, bias, eps),
   positional_params=("num_groups",), rules={a: _group_norm_rule(a) for a in ("x", "weight", "bias")}, linear=NONLINEAR,
   shown={"x": "the layer_norm gradient of x.reshape(N, num_groups, -1) over its last dim",
          "weight": "(g*xhat).sum over (N, *)", "bias": "g.sum over (N, *)"},
   doc="normalise over groups of channels (and the spatial dims), then scale and shift per channel",
   samples=(sample("group_norm(x, 2, w, b)", lambda x, w, b: F.group_norm(x, 2, w, b), x=In(2, 4, 3), w=In(4), b=In(4)),
            sample("F.group_norm(x, 1, eps=0.001)", lambda x: F.group_norm(x, 1, eps=0.001), x=In(1, 2, 2, 2))))


def _instance_norm_rule(arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        eps = c.params.get("eps", 1e-5)
        dims = tuple(range(2, c.ndim("x")))
        gw = f"(g*{_channel_view(c, 'weight')})" if "weight" in c.shapes else "g"
        gx, xhat, _ = normalised_grad("x", gw, dims, eps)
        if arg == "x":
            return gx
        if arg == "weight":
            return f"(g*{xhat}).sum({_d(_not_channel(c))})"
        return f"g.sum({_d(_not_channel(c))})"

    return rule


op("instance_norm", "x, weight, bias", "eps=1e-05", optional_args=("weight", "bias"),
   torch=lambda x, weight=None, bias=None, eps=1e-5: F.instance_norm(x, weight=weight, bias=bias, eps=eps),
   rules={a: _instance_norm_rule(a) for a in ("x", "weight", "bias")}, linear=NONLINEAR,
   shown={"x": "(gw - mean(gw) - xhat*mean(gw*xhat))/sqrt(var + eps) over the spatial dims",
          "weight": "(g*xhat).sum over (N, *)", "bias": "g.sum over (N, *)"},
   doc="normalise each channel of each sample over its spatial dims (input statistics), scale, shift",
   samples=(sample("instance_norm(x, weight=w, bias=b)", lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
                   x=In(2, 2, 4), w=In(2), b=In(2)),
            sample("F.instance_norm(x)", F.instance_norm, x=In(1, 2, 2, 3))))


# ------------------------------------------------------------------------------ rms_norm


def _rms_rule(arg: str) -> Callable[[RuleContext], str]:
    """y = x*r*w with r = 1/sqrt(mean(x²) + eps): ∂x = r*(gw - x*r²*mean(gw*x)), ∂w = g*x*r."""

    def rule(c: RuleContext) -> str:
        shape = c.params["normalized_shape"]
        k = len(shape) if isinstance(shape, (list, tuple)) else 1
        nd = c.ndim("x")
        d = _d(tuple(range(nd - k, nd)))
        eps = c.params.get("eps")
        eps = torch.finfo(c.dtypes["x"]).eps if eps is None else eps
        r = f"(1/sqrt((x**2).mean({d}, keepdim=True) + {eps!r}))"
        if arg == "weight":
            return f"g*x*{r}"
        gw = "(g*weight)" if "weight" in c.shapes else "g"
        return f"{r}*({gw} - x*{r}**2*({gw}*x).mean({d}, keepdim=True))"

    return rule


def _rms_torch(x: Any, weight: Any = None, normalized_shape: Any = None, eps: Any = None) -> torch.Tensor:
    shape = list(normalized_shape) if isinstance(normalized_shape, (list, tuple)) else [normalized_shape]
    return F.rms_norm(x, shape, weight, eps)


op("rms_norm", "x, weight", "normalized_shape, eps=None", optional_args=("weight",), torch=_rms_torch,
   positional_params=("normalized_shape",), rules={a: _rms_rule(a) for a in ("x", "weight")}, linear=NONLINEAR,
   shown={"x": "r*(gw - x*r**2*mean(gw*x)), r = 1/sqrt(mean(x**2) + eps), gw = g*weight",
          "weight": "g*x*r  (summed over batch dims)"},
   doc="x/sqrt(mean(x²) + eps) over the last dims, times weight (eps: the dtype's machine epsilon by default)",
   samples=(sample("rms_norm(x, (3,), w)", lambda x, w: F.rms_norm(x, (3,), w), x=In(2, 3), w=In(3)),
            sample("F.rms_norm(x, (2, 2), eps=0.01)", lambda x: F.rms_norm(x, (2, 2), eps=0.01), x=In(3, 2, 2))))
