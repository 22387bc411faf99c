"""Neural-network layers: ``layer_norm dropout`` (softmax and friends: :mod:`.activations`)."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .spec import NONLINEAR, In, Linear, RuleContext, as_tensor, obj_np, op, sample, ufunc


def _layer_norm_rule(arg: str) -> Callable[[RuleContext], str]:
    """Closed-form rules with xhat = (x - mean)/sqrt(var + eps) over the normalised (last) dims:
    x: (gw - mean(gw) - xhat*mean(gw*xhat))/sqrt(var + eps) with gw = g*weight; weight: g*xhat;
    bias: g (both summed over the batch dims by the engine's un-broadcast)."""

    def rule(c: RuleContext) -> str:
        shape = c.params["normalized_shape"]
        k = len(shape) if isinstance(shape, (list, tuple)) else 1
        nd = c.ndim("x")
        dims = tuple(range(nd - k, nd))
        d = dims[0] if len(dims) == 1 else dims
        centred = f"(x - x.mean({d}, keepdim=True))"
        std = f"sqrt(({centred}**2).mean({d}, keepdim=True) + {c.params.get('eps', 1e-5)!r})"
        xhat = f"({centred}/{std})"
        if arg == "bias":
            return "g"
        if arg == "weight":
            return f"g*{xhat}"
        gw = "(g*weight)" if "weight" in c.shapes else "g"
        return f"({gw} - {gw}.mean({d}, keepdim=True) - {xhat}*({gw}*{xhat}).mean({d}, keepdim=True))/{std}"

    return rule


def _obj_layer_norm(x: Any, weight: Any = None, bias: Any = None, normalized_shape: Any = None, eps: float = 1e-5) -> Any:
    import sympy  # heavy

    np = obj_np()
    x = np.asarray(x, dtype=object)
    k = len(normalized_shape) if isinstance(normalized_shape, (list, tuple)) else 1
    axes = tuple(range(x.ndim - k, x.ndim))
    n = math.prod(x.shape[a] for a in axes)
    mu = np.sum(x, axis=axes, keepdims=True) / n
    var = np.sum((x - mu) ** 2, axis=axes, keepdims=True) / n
    out = (x - mu) / ufunc(sympy.sqrt, 1)(var + sympy.nsimplify(eps))
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return np.asarray(out, dtype=object)


op("layer_norm", "x, weight, bias", "normalized_shape, eps=1e-05", optional_args=("weight", "bias"),
   torch=lambda x, weight=None, bias=None, normalized_shape=None, eps=1e-5: F.layer_norm(
       x, list(normalized_shape) if isinstance(normalized_shape, (list, tuple)) else [normalized_shape], weight, bias, eps),
   positional_params=("normalized_shape",), obj=_obj_layer_norm, linear=NONLINEAR,
   rules={a: _layer_norm_rule(a) for a in ("x", "weight", "bias")},
   shown={"x": "(gw - mean(gw) - xhat*mean(gw*xhat))/sqrt(var + eps), gw = g*weight, xhat = (x - mean)/sqrt(var + eps)",
          "weight": "g*xhat  (summed over batch dims)", "bias": "g  (summed over batch dims)"},
   doc="normalise over the last dims, then scale and shift",
   samples=(sample("layer_norm(x, (3,), weight=w, bias=b)", lambda x, w, b: F.layer_norm(x, (3,), w, b),
                   x=In(2, 3), w=In(3), b=In(3)),
            sample("layer_norm(x, (3,), w, b)", lambda x, w, b: F.layer_norm(x, (3,), w, b), x=In(2, 3), w=In(3), b=In(3)),
            sample("layer_norm(x, 4).sum()", lambda x: F.layer_norm(x, (4,)).sum(), x=In(4))))


def dropout_mask(shape: tuple[int, ...], p: float, seed: int) -> torch.Tensor:
    """The keep-mask dropout draws: 0 or 1/(1-p), reproducible from --seed (torch.manual_seed)
    and the dropout's own ``seed`` (its position in the program)."""
    gen = torch.Generator().manual_seed((torch.initial_seed() * 1_000_003 + seed) % 2**63)
    keep = torch.rand(shape, generator=gen, dtype=torch.float64) >= p
    scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
    return keep.to(torch.get_default_dtype()) * scale


def _dropout_torch(x: Any, p: float = 0.5, training: bool = True, seed: int = 0) -> torch.Tensor:
    x = as_tensor(x)
    if not training or p == 0:
        return F.dropout(x, p, training=False)
    return x * dropout_mask(tuple(x.shape), p, seed).to(x.dtype)


def _mask_obj(shape: tuple[int, ...], p: float, seed: int) -> Any:
    import sympy  # heavy

    np = obj_np()
    keep = (dropout_mask(shape, p, seed) != 0).numpy()
    scale = sympy.Integer(0) if p >= 1 else 1 / (1 - sympy.nsimplify(p))
    return np.where(keep, scale, sympy.Integer(0)).astype(object)


def _dropout_obj(x: Any, p: float = 0.5, training: bool = True, seed: int = 0) -> Any:
    if not training:
        return x
    return obj_np().asarray(x, dtype=object) * _mask_obj(obj_np().asarray(x).shape, p, seed)


# A dropout's seed is always printed: parsing numbers seed-less dropouts by position, so a formula
# that repeats one dropout would otherwise read back with other masks.
op("dropout", "x", "p=0.5, training=True, seed=0", torch=_dropout_torch, positional_params=("p",), always_printed=("seed",),
   rules={"x": lambda c: "g*dropout(ones_like(x), {p}, training={t}, seed={s})".format(
       p=c.params.get("p", 0.5), t=c.params.get("training", True), s=c.params.get("seed", 0))
       if c.params.get("training", True) else "g"},
   shown={"x": "g*mask/(1 - p)  (the same mask, drawn from --seed)"}, obj=_dropout_obj,
   linear=Linear("x", batch=None),  # the mask is drawn for x's shape: a batch of directions would draw another
   doc="zero each element with probability p and scale the rest by 1/(1-p) (mask from --seed)",
   samples=(sample("dropout(x, 0.5, training=False)", lambda x: F.dropout(x, 0.5, training=False), x=In(2, 3)),))
