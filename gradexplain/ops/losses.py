"""Losses: ``mse_loss binary_cross_entropy cross_entropy`` and the class-index helper ``one_hot``."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .nn import obj_softmax
from .spec import NONLINEAR, In, RuleContext, ValueSample, as_tensor, broadcast_predict, broadcast_shape, lazy_sym, \
    obj_np, op, sample, ufunc


def _loss_scale(c: RuleContext, arg_names: tuple[str, str]) -> str:
    """``/n`` for reduction='mean' (n = elements after broadcasting), else nothing."""
    if c.params.get("reduction", "mean") != "mean":
        return ""
    return f"/{math.prod(broadcast_shape(c.shapes[arg_names[0]], c.shapes[arg_names[1]]))}"


def _loss_obj(elementwise: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def apply(a: Any, t: Any, reduction: str = "mean") -> Any:
        np = obj_np()
        e = np.asarray(elementwise(np.asarray(a, dtype=object), np.asarray(t, dtype=object)), dtype=object)
        if reduction == "none":
            return e
        s = np.asarray(np.sum(e), dtype=object)
        return s / e.size if reduction == "mean" else s

    return apply


def _mse_torch(a: Any, t: Any, reduction: str = "mean") -> torch.Tensor:
    return F.mse_loss(*torch.broadcast_tensors(as_tensor(a), as_tensor(t)), reduction=reduction)


op("mse_loss", "a, t", "reduction='mean'", torch=_mse_torch, predict=broadcast_predict,
   rules={"a": lambda c: f"2*g*(a - t){_loss_scale(c, ('a', 't'))}", "t": lambda c: f"-2*g*(a - t){_loss_scale(c, ('a', 't'))}"},
   shown={"a": "2*g*(a - t)/numel(a)", "t": "-2*g*(a - t)/numel(a)"}, obj=_loss_obj(lambda a, t: (a - t) ** 2),
   linear=NONLINEAR, doc="mean squared error (reduction='mean'|'sum'|'none')",
   samples=(sample("mse_loss(a, t)", F.mse_loss, a=In(2, 3), t=In(2, 3)),
            sample("mse_loss(a, t, reduction='sum')", lambda a, t: F.mse_loss(a, t, reduction="sum"), a=In(3), t=In(3)),
            sample("mse_loss(a, t, reduction='none')", lambda a, t: F.mse_loss(a, t, reduction="none"),
                   a=In(3), t=In(3))))


def _bce_elem(p: Any, t: Any) -> Any:
    log = ufunc(lazy_sym("log"), 1)
    return -(log(p) * t + log(1 - p) * (1 - t))


op("binary_cross_entropy", "p, t", "reduction='mean'", predict=broadcast_predict,
   torch=lambda p, t, reduction="mean": F.binary_cross_entropy(p, t, reduction=reduction),
   rules={"p": lambda c: f"g*(p - t)/(p*(1 - p)){_loss_scale(c, ('p', 't'))}",
          "t": lambda c: f"g*(log(1 - p) - log(p)){_loss_scale(c, ('p', 't'))}"},
   shown={"p": "g*(p - t)/(p*(1 - p))/numel(p)", "t": "g*(log(1 - p) - log(p))/numel(p)"},
   obj=_loss_obj(_bce_elem), linear=NONLINEAR, doc="-(t*log(p) + (1 - t)*log(1 - p)), p in (0, 1)",
   samples=(sample("binary_cross_entropy(p, t)", F.binary_cross_entropy, p=In(2, 3, domain="prob"),
                   t=In(2, 3, domain="prob")),
            sample("binary_cross_entropy(sigmoid(z), t, reduction='sum')",
                   lambda z, t: F.binary_cross_entropy(torch.sigmoid(z), t, reduction="sum"),
                   const=("t",), z=In(4), t=In(4, domain="prob"))))


def _ce_rule(arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        dim = 1 if c.ndim("z") >= 2 else 0
        red = c.params.get("reduction", "mean")
        n = c.shapes["z"][0] if dim == 1 else 1
        scale = f"/{n}" if red == "mean" and n != 1 else ""
        g = "g.unsqueeze(1)" if red == "none" and dim == 1 else "g"
        if arg == "z":
            if c.dtypes["target"].is_floating_point:
                return f"{g}*(softmax(z, {dim}) - target){scale}"
            return f"{g}*(softmax(z, {dim}) - one_hot(target, {c.shapes['z'][dim]})){scale}"
        return f"-{g}*log_softmax(z, {dim}){scale}"

    return rule


def _obj_ce(z: Any, target: Any, reduction: str = "mean") -> Any:
    np = obj_np()
    z = np.asarray(z, dtype=object)
    target = np.asarray(target, dtype=object)
    dim = 1 if z.ndim >= 2 else 0
    logp = obj_softmax(z, dim, log=True)
    if target.shape == z.shape:
        per = -np.sum(logp * target, axis=dim)
    elif dim == 1:
        per = np.array([-logp[i, int(target[i])] for i in range(z.shape[0])], dtype=object)
    else:
        per = np.asarray(-logp[int(target)], dtype=object)
    per = np.asarray(per, dtype=object)
    if reduction == "none":
        return per
    s = np.asarray(np.sum(per), dtype=object)
    return s / (per.size or 1) if reduction == "mean" else s


op("cross_entropy", "z, target", "reduction='mean'",
   torch=lambda z, target, reduction="mean": F.cross_entropy(z, target, reduction=reduction),
   rules={"z": _ce_rule("z"), "target": _ce_rule("target")},
   shown={"z": "g*(softmax(z, 1) - one_hot(target, C))/N", "target": "-g*log_softmax(z, 1)/N (probability targets)"},
   obj=_obj_ce, linear=NONLINEAR, doc="softmax cross-entropy of logits z against class indices (or probabilities)",
   samples=(sample("cross_entropy(z, tensor([0, 2, 1]))", lambda z: F.cross_entropy(z, torch.tensor([0, 2, 1])),
                   z=In(3, 4)),
            sample("cross_entropy(z, tensor([3, 0]), reduction='sum')",
                   lambda z: F.cross_entropy(z, torch.tensor([3, 0]), reduction="sum"), z=In(2, 4)),
            sample("cross_entropy(z, tensor([1, 0]), reduction='none')",
                   lambda z: F.cross_entropy(z, torch.tensor([1, 0]), reduction="none"), z=In(2, 3)),
            sample("cross_entropy(z, tensor(2))", lambda z: F.cross_entropy(z, torch.tensor(2)), z=In(4)),
            sample("cross_entropy(z, softmax(t, 1))", lambda z, t: F.cross_entropy(z, F.softmax(t, 1)),
                   z=In(2, 3), t=In(2, 3))))


def _one_hot_obj(t: Any, num_classes: int = -1) -> Any:
    np = obj_np()
    t = np.asarray(t)
    n = num_classes if num_classes >= 0 else int(t.max()) + 1
    return np.asarray((np.arange(n) == t[..., None]).astype(int), dtype=object)


op("one_hot", "t", "num_classes=-1", torch=lambda t, num_classes=-1: F.one_hot(t, num_classes),
   positional_params=("num_classes",), obj=_one_hot_obj,
   predict=lambda shapes, p: tuple(shapes[0]) + (max(p.get("num_classes", -1), 1),),
   doc="class indices → 0/1 rows (integer, no gradient)",
   samples=(sample("(one_hot(tensor([0, 2, 1]), 3) * z).sum()",
                   lambda z: (F.one_hot(torch.tensor([0, 2, 1]), 3) * z).sum(), z=In(3, 3)),),
   value_samples=(ValueSample(("one_hot(tensor([0, 2, 1]), 3)",), [[1, 0, 0], [0, 0, 1], [0, 1, 0]]),
                  ValueSample(("one_hot(tensor([1, 0]))",), [[0, 1], [1, 0]])))
