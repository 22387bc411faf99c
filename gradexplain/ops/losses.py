"""Losses (``torch.nn.functional`` names): ``mse_loss l1_loss smooth_l1_loss huber_loss kl_div poisson_nll_loss
gaussian_nll_loss binary_cross_entropy binary_cross_entropy_with_logits soft_margin_loss multilabel_soft_margin_loss
margin_ranking_loss hinge_embedding_loss cosine_embedding_loss triplet_margin_loss nll_loss cross_entropy`` and the
class-index helper ``one_hot``.  Every rule is a closed form; torch's own function runs (its grad_fn), and
integer class targets are tensor arguments without a rule."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..i18n import Msg
from .activations import obj_softmax
from .distance import norm_slope
from .spec import NONLINEAR, In, Kink, Linear, RuleContext, ValueSample, as_tensor, broadcast_predict, broadcast_shape, lazy_sym, \
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


def _bce_obj(p: Any, t: Any, weight: Any = None, reduction: str = "mean") -> Any:
    elementwise = _bce_elem if weight is None else (lambda a, b: _bce_elem(a, b) * obj_np().asarray(weight, dtype=object))
    return _loss_obj(elementwise)(p, t, reduction)


def _bce_rule(arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        d = "(p - t)/(p*(1 - p))" if arg == "p" else "(log(1 - p) - log(p))"
        return f"g*{d}{'*weight' if 'weight' in c.shapes else ''}{_loss_scale(c, ('p', 't'))}"

    return rule


op("binary_cross_entropy", "p, t, weight", "reduction='mean'", predict=broadcast_predict, optional_args=("weight",),
   torch=lambda p, t, weight=None, reduction="mean": F.binary_cross_entropy(p, t, weight=weight, reduction=reduction),
   rules={"p": _bce_rule("p"), "t": _bce_rule("t")},
   shown={"p": "g*(p - t)/(p*(1 - p))*weight/numel(p)", "t": "g*(log(1 - p) - log(p))*weight/numel(p)"},
   obj=_bce_obj, linear=NONLINEAR, doc="-weight*(t*log(p) + (1 - t)*log(1 - p)), p in (0, 1)",
   samples=(sample("binary_cross_entropy(p, t)", F.binary_cross_entropy, p=In(2, 3, domain="prob"),
                   t=In(2, 3, domain="prob")),
            sample("binary_cross_entropy(sigmoid(z), t, reduction='sum')",
                   lambda z, t: F.binary_cross_entropy(torch.sigmoid(z), t, reduction="sum"),
                   const=("t",), z=In(4), t=In(4, domain="prob")),
            sample("F.binary_cross_entropy(p, t, weight=w)", lambda p, t, w: F.binary_cross_entropy(p, t, weight=w),
                   const=("w",), p=In(2, 3, domain="prob"), t=In(2, 3, domain="prob"), w=In(3, domain="pos")),
            sample("F.binary_cross_entropy(p, t, w, reduction='none')",
                   lambda p, t, w: F.binary_cross_entropy(p, t, w, reduction="none"),
                   const=("w",), p=In(2, 3, domain="prob"), t=In(2, 3, domain="prob"), w=In(2, 3, domain="pos"))))


# ----------------------------------------------------------------- class losses: nll_loss, cross_entropy
#
# Both rules are written with the *weighted target* T (layout of the logits, classes along dim 1):
# for class indices T = one_hot(target) * weight[target] * keep (keep: 0 where target == ignore_index),
# for class probabilities T = target * weight.  Then, with G the incoming gradient (g, unsqueezed
# along the class dim for reduction='none') and n torch's mean divisor,
#   nll_loss:       d/d input = -G*T/n
#   cross_entropy:  d/d z     =  G*(softmax(z, 1)*T.sum(1, keepdim=True) - T)/n
# (class probabilities need not sum to 1, hence T.sum; for one-hot rows it is 1 and is left out).
# torch's mean divides by the selected weights' sum (T.sum()) for class indices with a weight or an
# ignore mask, by the number of targets otherwise, and by N*d... for probabilities.


def _class_dim(c: RuleContext, arg: str) -> int:
    return 1 if c.ndim(arg) >= 2 else 0


def _class_first(text: str, nd: int) -> str:
    """``text`` laid out (N, d..., C), as one_hot gives it, moved to torch's (N, C, d...)."""
    return text + "".join(f".transpose({j}, {j + 1})" for j in range(nd - 2, 0, -1))


def _may_hold(node: Any, value: int) -> bool:
    """Whether an integer target may contain ``value``: known exactly for a literal ``tensor([...])``
    (so the common formula carries no all-ones ignore mask), assumed otherwise."""
    data = getattr(node, "params", {}).get("data") if getattr(node, "op", None) == "tensor" else None
    if data is None:
        return True

    def flat(d: Any) -> list[Any]:
        return [y for x in d for y in flat(x)] if isinstance(d, (list, tuple)) else [d]

    return value in flat(data)


def _not_equal(name: str, value: Any) -> str:
    """EXPR for ``name != value`` as 1/0 (the comparison ops only serve where's condition)."""
    return f"sign(abs({name} - {value}))" if value >= 0 else f"sign(abs({name} + {-value}))"


@dataclass
class _ClassTerms:
    weighted: str  # T, logits layout
    one_hot_rows: bool  # T's rows along the class dim sum to 1 (plain class indices)
    scale: str  # "/n" or "" (mean divisor)
    grad: str  # G


def _class_terms(c: RuleContext, z: str, smoothing: bool) -> _ClassTerms:
    nd, dim = c.ndim(z), _class_dim(c, z)
    n_classes = c.shapes[z][dim]
    red = c.params.get("reduction", "mean")
    has_w = "weight" in c.shapes
    w = "weight" if nd <= 2 or not has_w else f"weight.reshape({n_classes}{', 1' * (nd - 2)})"
    eps = c.params.get("label_smoothing", 0.0) if smoothing else 0.0
    grad = "g.unsqueeze(1)" if red == "none" and nd >= 2 else "g"
    if c.dtypes["target"].is_floating_point:  # class probabilities
        t = "target" if not eps else f"(target*{1 - eps!r} + {eps / n_classes!r})"
        weighted = f"{t}*{w}" if has_w else t
        n = math.prod(s for d, s in enumerate(c.shapes[z]) if d != dim)  # every position but the class dim
        return _ClassTerms(weighted, False, f"/{n}" if red == "mean" and n != 1 else "", grad)
    ii = c.params.get("ignore_index", -100)
    masked = _may_hold(c.nodes.get("target"), ii)
    keep = _not_equal("target", ii)
    target = f"(target*{keep})" if masked else "target"
    keep_b = "" if not masked else f"*{keep}" if nd <= 1 else f"*{keep}.unsqueeze({dim})"
    rows = _class_first(f"one_hot({target}, {n_classes})", nd) + (f"*{w}" if has_w else "") + keep_b
    weighted = rows
    if eps:
        spread = f"{w}*{eps / n_classes!r}" if has_w else f"{eps / n_classes!r}"
        weighted = f"({rows}*{1 - eps!r} + {spread}{keep_b})"
    if red != "mean":
        scale = ""
    elif has_w or masked:
        scale = f"/({rows}).sum()"
    else:
        n = math.prod(c.shapes["target"])
        scale = f"/{n}" if n != 1 else ""
    return _ClassTerms(weighted, not (has_w or masked or eps), scale, grad)


def _ce_rule(arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        t = _class_terms(c, "z", smoothing=True)
        dim = _class_dim(c, "z")
        if arg == "z":
            if t.one_hot_rows:
                return f"{t.grad}*(softmax(z, {dim}) - {t.weighted}){t.scale}"
            if t.weighted == "target":
                return f"{t.grad}*(softmax(z, {dim})*target.sum({dim}, keepdim=True) - target){t.scale}"
            return f"{t.grad}*(softmax(z, {dim})*({t.weighted}).sum({dim}, keepdim=True) - {t.weighted}){t.scale}"
        if not c.dtypes["target"].is_floating_point:
            return None  # class indices: no gradient
        eps = c.params.get("label_smoothing", 0.0)
        w = "" if "weight" not in c.shapes else "*weight" if c.ndim("z") <= 2 else \
            f"*weight.reshape({c.shapes['z'][dim]}{', 1' * (c.ndim('z') - 2)})"
        factor = f"*{1 - eps!r}" if eps else ""
        if arg == "target":
            return f"-{t.grad}*log_softmax(z, {dim}){w}{factor}{t.scale}"
        # weight (probability targets only): summed over every dim but the class dim
        per = f"-{t.grad}*log_softmax(z, {dim})*(target{factor} + {eps / c.shapes['z'][dim]!r})" if eps else \
            f"-{t.grad}*log_softmax(z, {dim})*target"
        dims = tuple(d for d in range(c.ndim("z")) if d != dim)
        return f"({per}{t.scale})" + (f".sum({dims if len(dims) > 1 else dims[0]})" if dims else "")

    return rule


def _nll_rule(c: RuleContext) -> str:
    t = _class_terms(c, "input", smoothing=False)
    return f"-{t.grad}*{t.weighted}{t.scale}"


def _obj_ce(z: Any, target: Any, weight: Any = None, reduction: str = "mean", **params: Any) -> Any:
    """Per element, for the default parameters (the others: no per-element form)."""
    np = obj_np()
    if weight is not None or params.get("label_smoothing") or params.get("ignore_index", -100) != -100:
        raise NotImplementedError(Msg("cross_entropy per element: default parameters only"))
    z = np.asarray(z, dtype=object)
    target = np.asarray(target, dtype=object)
    if z.ndim > 2:
        raise NotImplementedError(Msg("cross_entropy per element: (N, C) or (C,) logits only"))
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


def _class_torch(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def apply(z: Any, target: Any, weight: Any = None, **params: Any) -> torch.Tensor:
        return fn(as_tensor(z), target, weight=weight, **params)

    return apply


_CE_PARAMS = "ignore_index=-100, reduction='mean', label_smoothing=0.0"
op("cross_entropy", "z, target, weight", _CE_PARAMS, torch=_class_torch(F.cross_entropy), optional_args=("weight",),
   rules={"z": _ce_rule("z"), "target": _ce_rule("target"), "weight": _ce_rule("weight")},
   shown={"z": "g*(softmax(z, 1)*T.sum(1, keepdim=True) - T)/n, T = one_hot(target)*weight[target] "
               "(0 at ignore_index, label smoothing mixed in) or target*weight (probabilities)",
          "target": "-g*log_softmax(z, 1)*weight/n (probability targets)",
          "weight": "-g*log_softmax(z, 1)*target/n summed over the batch (probability targets)"},
   obj=_obj_ce, linear=NONLINEAR,
   doc="softmax cross-entropy of logits z (N, C, d...) against class indices or probabilities",
   samples=(sample("cross_entropy(z, tensor([0, 2, 1]))", lambda z: F.cross_entropy(z, torch.tensor([0, 2, 1])),
                   z=In(3, 4)),
            sample("cross_entropy(z, tensor([3, 0]), reduction='sum')",
                   lambda z: F.cross_entropy(z, torch.tensor([3, 0]), reduction="sum"), z=In(2, 4)),
            sample("cross_entropy(z, tensor([1, 0]), reduction='none')",
                   lambda z: F.cross_entropy(z, torch.tensor([1, 0]), reduction="none"), z=In(2, 3)),
            sample("cross_entropy(z, tensor(2))", lambda z: F.cross_entropy(z, torch.tensor(2)), z=In(4)),
            sample("cross_entropy(z, softmax(t, 1))", lambda z, t: F.cross_entropy(z, F.softmax(t, 1)),
                   z=In(2, 3), t=In(2, 3)),
            sample("F.cross_entropy(z, t)", lambda z, t: F.cross_entropy(z, t), z=In(2, 3), t=In(2, 3)),
            sample("F.cross_entropy(z, t)", lambda z, t: F.cross_entropy(z, t), z=In(3), t=In(3)),
            sample("F.cross_entropy(z, tensor([[0, 2], [1, 1]]))",
                   lambda z: F.cross_entropy(z, torch.tensor([[0, 2], [1, 1]])), z=In(2, 3, 2)),
            sample("F.cross_entropy(z, tensor([[[0, 2], [1, 1]]]), reduction='none')",
                   lambda z: F.cross_entropy(z, torch.tensor([[[0, 2], [1, 1]]]), reduction="none"), z=In(1, 3, 2, 2)),
            sample("F.cross_entropy(z, tensor([0, -100, 2]))",
                   lambda z: F.cross_entropy(z, torch.tensor([0, -100, 2])), z=In(3, 3)),
            sample("F.cross_entropy(z, tensor([[0, 1], [1, 1]]), ignore_index=1)",
                   lambda z: F.cross_entropy(z, torch.tensor([[0, 1], [1, 1]]), ignore_index=1), z=In(2, 3, 2)),
            sample("F.cross_entropy(z, tensor([0, 2, 2]), weight=w)",
                   lambda z, w: F.cross_entropy(z, torch.tensor([0, 2, 2]), weight=w), const=("w",),
                   z=In(3, 3), w=In(3, domain="pos")),
            sample("F.cross_entropy(z, tensor([0, 2, -100]), w, reduction='sum')",
                   lambda z, w: F.cross_entropy(z, torch.tensor([0, 2, -100]), w, reduction="sum"), const=("w",),
                   z=In(3, 3), w=In(3, domain="pos")),
            sample("F.cross_entropy(z, tensor([[0, 2], [1, 0]]), weight=w, ignore_index=0)",
                   lambda z, w: F.cross_entropy(z, torch.tensor([[0, 2], [1, 0]]), weight=w, ignore_index=0),
                   const=("w",), z=In(2, 3, 2), w=In(3, domain="pos")),
            sample("F.cross_entropy(z, tensor([0, 2, 1]), label_smoothing=0.2)",
                   lambda z: F.cross_entropy(z, torch.tensor([0, 2, 1]), label_smoothing=0.2), z=In(3, 3)),
            sample("F.cross_entropy(z, tensor([0, 2, -100]), weight=w, label_smoothing=0.1)",
                   lambda z, w: F.cross_entropy(z, torch.tensor([0, 2, -100]), weight=w, label_smoothing=0.1),
                   const=("w",), z=In(3, 3), w=In(3, domain="pos")),
            sample("F.cross_entropy(z, tensor([[0, 2], [1, 0]]), label_smoothing=0.3, reduction='none')",
                   lambda z: F.cross_entropy(z, torch.tensor([[0, 2], [1, 0]]), label_smoothing=0.3,
                                             reduction="none"), z=In(2, 3, 2)),
            sample("F.cross_entropy(z, t, weight=w, label_smoothing=0.25)",
                   lambda z, t, w: F.cross_entropy(z, t, weight=w, label_smoothing=0.25),
                   z=In(2, 3), t=In(2, 3, domain="prob"), w=In(3, domain="pos")),
            sample("F.cross_entropy(z, t, w, reduction='none')",
                   lambda z, t, w: F.cross_entropy(z, t, w, reduction="none"),
                   z=In(2, 3, 2), t=In(2, 3, 2, domain="prob"), w=In(3, domain="pos"))))

op("nll_loss", "input, target, weight", "ignore_index=-100, reduction='mean'", torch=_class_torch(F.nll_loss),
   optional_args=("weight",), rules={"input": _nll_rule},
   shown={"input": "-g*T/n, T = one_hot(target)*weight[target] (0 at ignore_index), n = T.sum() (mean)"},
   linear=Linear("input", batch=None), doc="negative log-likelihood of log-probabilities (N, C, d...) at class indices",
   samples=(sample("nll_loss(log_softmax(z, 1), tensor([0, 2, 1]))",
                   lambda z: F.nll_loss(F.log_softmax(z, 1), torch.tensor([0, 2, 1])), z=In(3, 4)),
            sample("F.nll_loss(x, tensor([1, 0]), reduction='none')",
                   lambda x: F.nll_loss(x, torch.tensor([1, 0]), reduction="none"), x=In(2, 3)),
            sample("F.nll_loss(x, tensor(1), reduction='sum')",
                   lambda x: F.nll_loss(x, torch.tensor(1), reduction="sum"), x=In(3)),
            sample("F.nll_loss(x, tensor([[0, 2], [1, -100]]), weight=w)",
                   lambda x, w: F.nll_loss(x, torch.tensor([[0, 2], [1, -100]]), weight=w), const=("w",),
                   x=In(2, 3, 2), w=In(3, domain="pos")),
            sample("F.nll_loss(x, tensor([0, 2, 2]), w, ignore_index=2, reduction='none')",
                   lambda x, w: F.nll_loss(x, torch.tensor([0, 2, 2]), w, ignore_index=2, reduction="none"),
                   const=("w",), x=In(3, 3), w=In(3, domain="pos")),
            sample("F.nll_loss(x, tensor([[[0, 2], [1, 1]]]), ignore_index=1)",
                   lambda x: F.nll_loss(x, torch.tensor([[[0, 2], [1, 1]]]), ignore_index=1), x=In(1, 3, 2, 2))))


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


# ------------------------------------------------------------------ pointwise losses with a reduction
#
# Each is an elementwise loss l(input, target, ...) followed by torch's reduction, so its rule is
# g*dl/darg, divided by the number of loss elements for reduction='mean' (g is then a scalar; for
# reduction='none' it has the loss's shape).  The engine sums each contribution back to its
# argument's shape where broadcasting expanded it.


def _numel(c: RuleContext, *args: str) -> int:
    return math.prod(broadcast_shape(*(c.shapes[a] for a in args if a in c.shapes)))


def _mean_scale(c: RuleContext, *args: str) -> str:
    """``/n`` for reduction='mean' (n: elements of the unreduced loss), ``/N`` for 'batchmean'."""
    red = c.params.get("reduction", "mean")
    n = _numel(c, *args) if red == "mean" else (broadcast_shape(*(c.shapes[a] for a in args)) or (1,))[0] \
        if red == "batchmean" else 1
    return f"/{n}" if n != 1 else ""


def _pointwise(d: Callable[[RuleContext], str] | str, *args: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        text = d(c) if callable(d) else d
        return f"g*({text}){_mean_scale(c, *args)}"

    return rule


def _plain(fn: Callable[..., torch.Tensor], args: tuple[str, ...], optional: tuple[str, ...],
           numbers: tuple[str, ...] = ()) -> Callable[..., torch.Tensor]:
    """torch's own loss function (so the grad_fn is torch's); optional tensors go by keyword, as
    torch's signatures put other parameters between them (``size_average`` before ``pos_weight``).
    A number for an argument torch also takes as one (``numbers``) goes as it is, so torch decides
    (gaussian_nll_loss takes a float var, not an int)."""
    def apply(*values: Any, **params: Any) -> torch.Tensor:
        given = dict(zip(args, values))
        required = [given[a] if a in numbers else as_tensor(given[a]) for a in args if a not in optional]
        return fn(*required, **{a: given[a] for a in optional if a in given}, **params)

    return apply


def _loss(name: str, tensor_args: str, params: str, fn: Callable[..., torch.Tensor], d: dict[str, Any], doc: str,
          samples: tuple[Any, ...], kinks: tuple[Kink, ...] = (), **kw: Any) -> None:
    """Register a pointwise loss: ``d`` maps each differentiable argument to dl/darg (text or RuleFn)."""
    args = tuple(a.strip() for a in tensor_args.split(","))
    required = tuple(a for a in args if a not in kw.get("optional_args", ()))
    rules = kw.pop("rules", None) or {a: _pointwise(r, *required) for a, r in d.items()}
    shown = kw.pop("shown", None) or {a: f"g*({r if isinstance(r, str) else '…'})/n  (n = numel, reduction='mean')"
                                      for a, r in d.items()}
    op(name, tensor_args, params, torch=_plain(fn, args, kw.get("optional_args", ()), kw.get("number_args", ())),
       rules=rules, shown=shown, predict=kw.pop("predict", None)
       or (lambda shapes, p: broadcast_shape(*shapes) if p.get("reduction", "mean") == "none" else ()),
       linear=NONLINEAR, doc=doc, samples=samples, kinks=kinks, **kw)


_D = "(input - target)"
_loss("l1_loss", "input, target", "reduction='mean'", F.l1_loss,
      {"input": f"sign{_D}", "target": f"-sign{_D}"}, "mean absolute error |input - target| (gradient 0 at a tie)",
      (sample("l1_loss(a, t)", F.l1_loss, a=In(2, 3), t=In(2, 3)),
       sample("F.l1_loss(a, t, reduction='sum')", lambda a, t: F.l1_loss(a, t, reduction="sum"), a=In(3), t=In(3)),
       sample("F.l1_loss(a, t, reduction='none')", lambda a, t: F.l1_loss(a, t, reduction="none"), a=In(2, 3), t=In(2, 3))),
      kinks=(Kink("input == target: sign(0) = 0, no gradient (derivatives.yaml: abs → sgn)",
                  {"a": "[[1.0, 0.5, -2.0], [0.0, 1.5, 3.0]]", "t": "[[1.0, 0.0, -2.0], [0.0, 1.0, 3.0]]"}),))


def _smooth(width: str, default: float, scaled: bool) -> Callable[[RuleContext], str]:
    def d(c: RuleContext) -> str:
        w = c.params.get(width, default)
        if w == 0:
            return f"sign{_D}"
        inner = f"{_D}/{w!r}" if scaled else _D
        outer = f"sign{_D}" if scaled else f"{w!r}*sign{_D}"
        return f"where(abs{_D} < {w!r}, {inner}, {outer})"

    return d


def _neg(d: Callable[[RuleContext], str]) -> Callable[[RuleContext], str]:
    return lambda c: f"-{d(c)}"


_loss("smooth_l1_loss", "input, target", "reduction='mean', beta=1.0", F.smooth_l1_loss,
      {"input": _smooth("beta", 1.0, True), "target": _neg(_smooth("beta", 1.0, True))},
      "0.5*d**2/beta for |d| < beta, else |d| - 0.5*beta (d = input - target)",
      (sample("smooth_l1_loss(a, t)", F.smooth_l1_loss, a=In(2, 3), t=In(2, 3)),
       sample("F.smooth_l1_loss(a, t, beta=0.5, reduction='none')",
              lambda a, t: F.smooth_l1_loss(a, t, beta=0.5, reduction="none"), a=In(4), t=In(4)),
       sample("F.smooth_l1_loss(a, t, reduction='sum', beta=0.0)",
              lambda a, t: F.smooth_l1_loss(a, t, reduction="sum", beta=0.0), a=In(4), t=In(4))),
      kinks=(Kink("|d| == beta: both pieces have slope sign(d) there; d == 0 (beta = 0): 0",
                  {"a": "[[1.0, 0.5, -2.0], [0.0, 1.5, 3.0]]", "t": "[[0.0, 0.0, -1.0], [0.0, 1.0, 3.0]]"}),
             Kink("|d| == beta = 0.5", {"a": "[1.0, 0.5, -2.0, 0.25]", "t": "[0.5, 0.0, -1.5, 0.25]"}, sample=1),
             Kink("beta = 0 at d == 0: sign(0) = 0", {"a": "[1.0, 0.5, -2.0, 0.25]", "t": "[1.0, 0.0, -2.0, 0.5]"},
                  sample=2)),
      shown={"input": "g*where(|d| < beta, d/beta, sign(d))/n, d = input - target",
             "target": "-g*where(|d| < beta, d/beta, sign(d))/n"})
_loss("huber_loss", "input, target", "reduction='mean', delta=1.0", F.huber_loss,
      {"input": _smooth("delta", 1.0, False), "target": _neg(_smooth("delta", 1.0, False))},
      "0.5*d**2 for |d| < delta, else delta*(|d| - 0.5*delta) (d = input - target)",
      (sample("huber_loss(a, t)", F.huber_loss, a=In(2, 3), t=In(2, 3)),
       sample("F.huber_loss(a, t, delta=0.5, reduction='none')",
              lambda a, t: F.huber_loss(a, t, delta=0.5, reduction="none"), a=In(4), t=In(4))),
      kinks=(Kink("|d| == delta: both pieces have slope delta*sign(d) there",
                  {"a": "[[1.0, 0.5, -2.0], [0.0, 1.5, 3.0]]", "t": "[[0.0, 0.0, -1.0], [0.0, 1.0, 3.0]]"}),
             Kink("|d| == delta = 0.5", {"a": "[1.0, 0.5, -2.0, 0.25]", "t": "[0.5, 0.0, -1.5, 0.25]"}, sample=1)),
      shown={"input": "g*where(|d| < delta, d, delta*sign(d))/n, d = input - target",
             "target": "-g*where(|d| < delta, d, delta*sign(d))/n"})


def _kl(arg: str) -> Callable[[RuleContext], str]:
    def d(c: RuleContext) -> str:
        log_target = c.params.get("log_target", False)
        if arg == "input":
            return "-exp(target)" if log_target else "-target"
        return "exp(target)*(target - input + 1)" if log_target else "log(target) + 1 - input"

    return d


_loss("kl_div", "input, target", "reduction='mean', log_target=False", F.kl_div,
      {"input": _kl("input"), "target": _kl("target")},
      "target*(log(target) - input), input log-probabilities (log_target: exp(target)*(target - input)); "
      "reduction 'batchmean' divides by N",
      (sample("kl_div(log_softmax(z, 1), t, reduction='batchmean')",
              lambda z, t: F.kl_div(F.log_softmax(z, 1), t, reduction="batchmean"), z=In(2, 3), t=In(2, 3, domain="prob")),
       sample("F.kl_div(a, t, reduction='sum')", lambda a, t: F.kl_div(a, t, reduction="sum"), a=In(4), t=In(4, domain="prob")),
       sample("F.kl_div(a, t, reduction='none', log_target=True)",
              lambda a, t: F.kl_div(a, t, reduction="none", log_target=True), a=In(2, 3), t=In(2, 3)),
       sample("F.kl_div(a, t, log_target=True)", lambda a, t: F.kl_div(a, t, log_target=True), a=In(2, 2), t=In(2, 2))),
      reductions=("mean", "batchmean", "sum", "none"),
      shown={"input": "-g*target/n  (log_target: -g*exp(target)/n)",
             "target": "g*(log(target) + 1 - input)/n  (log_target: g*exp(target)*(target - input + 1)/n)"})


def _poisson(arg: str) -> Callable[[RuleContext], str]:
    def d(c: RuleContext) -> str:
        log_input, eps = c.params.get("log_input", True), c.params.get("eps", 1e-8)
        if arg == "input":
            return "exp(input) - target" if log_input else f"1 - target/(input + {eps!r})"
        own = "-input" if log_input else f"-log(input + {eps!r})"
        return own + (" + where(target > 1, log(target) + 1/(2*target), 0)" if c.params.get("full", False) else "")

    return d


_loss("poisson_nll_loss", "input, target", "log_input=True, full=False, eps=1e-08, reduction='mean'",
      F.poisson_nll_loss, {"input": _poisson("input"), "target": _poisson("target")},
      "exp(input) - target*input (log_input=False: input - target*log(input + eps)); full adds Stirling's term",
      (sample("poisson_nll_loss(a, t)", F.poisson_nll_loss, a=In(2, 3), t=In(2, 3, domain="pos")),
       sample("F.poisson_nll_loss(a, t, log_input=False, full=True, reduction='sum')",
              lambda a, t: F.poisson_nll_loss(a, t, log_input=False, full=True, reduction="sum"),
              a=In(4, domain="pos"), t=In(4, domain="pos")),
       sample("F.poisson_nll_loss(a, t, False, reduction='none')",
              lambda a, t: F.poisson_nll_loss(a, t, False, reduction="none"), a=In(3, domain="pos"), t=In(3, domain="pos"))),
      positional_params=("log_input", "full"),
      shown={"input": "g*(exp(input) - target)/n  (log_input=False: g*(1 - target/(input + eps))/n)",
             "target": "-g*input/n  (log_input=False: -g*log(input + eps)/n; full: + log(t) + 1/(2t) where t > 1)"})


def _gaussian(arg: str) -> Callable[[RuleContext], str]:
    """torch clamps var to eps without a gradient (a no_grad clamp of a clone), and a var of shape
    input.shape[:-1] is unsqueezed at -1 (one variance per row)."""

    def rule(c: RuleContext) -> str:
        row = c.shapes["var"] != c.shapes["input"] and c.shapes["var"] == c.shapes["input"][:-1]
        var, eps = f"var{'.unsqueeze(-1)' if row else ''}", c.params.get("eps", 1e-6)
        v = f"where({var} >= {eps!r}, {var}, {eps!r})"  # clamp(min=eps), without its gradient
        scale = _mean_scale(c, "input", "target")
        if arg == "var":
            return f"(g*(1/{v} - {_D}**2/{v}**2)/2{scale})" + (".sum(-1)" if row else "")
        return f"{'' if arg == 'input' else '-'}g*{_D}/{v}{scale}"

    return rule


_loss("gaussian_nll_loss", "input, target, var", "full=False, eps=1e-06, reduction='mean'", F.gaussian_nll_loss, {},
      "0.5*(log(max(var, eps)) + (input - target)**2/max(var, eps)) (+ 0.5*log(2*pi) if full)",
      (sample("gaussian_nll_loss(a, t, v)", F.gaussian_nll_loss, a=In(2, 3), t=In(2, 3), v=In(2, 3, domain="pos")),
       sample("F.gaussian_nll_loss(a, t, v, full=True, reduction='sum')",
              lambda a, t, v: F.gaussian_nll_loss(a, t, v, full=True, reduction="sum"),
              a=In(2, 3), t=In(2, 3), v=In(2, 1, domain="pos")),
       sample("F.gaussian_nll_loss(a, t, v, reduction='none')",
              lambda a, t, v: F.gaussian_nll_loss(a, t, v, reduction="none"), a=In(2, 3), t=In(2, 3), v=In(2, domain="pos")),
       sample("F.gaussian_nll_loss(a, t, v)", lambda a, t, v: F.gaussian_nll_loss(a, t, v),
              a=In(3, 2), t=In(3, 2), v=In(3, domain="pos"))),
      rules={a: _gaussian(a) for a in ("input", "target", "var")},
      shown={"input": "g*(input - target)/v/n, v = max(var, eps)", "target": "-g*(input - target)/v/n",
             "var": "g*(1/v - (input - target)**2/v**2)/2/n  (the clamp passes the gradient through)"},
      predict=lambda shapes, p: broadcast_shape(*shapes) if p.get("reduction", "mean") == "none" else (),
      number_args=("target", "var"))


def _margin_ranking(arg: str) -> Callable[[RuleContext], str]:
    def d(c: RuleContext) -> str:
        active = f"{c.params.get('margin', 0.0)!r} - target*(input1 - input2) >= 0"  # clamp_min: >= passes g
        return f"where({active}, {dict(input1='-target', input2='target', target='input2 - input1')[arg]}, 0)"

    return d


_loss("margin_ranking_loss", "input1, input2, target", "margin=0.0, reduction='mean'", F.margin_ranking_loss,
      {a: _margin_ranking(a) for a in ("input1", "input2", "target")},
      "max(0, margin - target*(input1 - input2))",
      (sample("margin_ranking_loss(a, b, y)", F.margin_ranking_loss, a=In(4), b=In(4), y=In(4, domain="nz")),
       sample("F.margin_ranking_loss(a, b, sign(y), margin=0.5, reduction='none')",
              lambda a, b, y: F.margin_ranking_loss(a, b, torch.sign(y), margin=0.5, reduction="none"),
              const=("y",), a=In(4), b=In(4), y=In(4, domain="nz"))),
      kinks=(Kink("margin - target*(input1 - input2) == 0: torch's clamp_min passes the gradient (>=)",
                  {"a": "[1.0, 0.5, -2.0, 0.0]", "b": "[1.0, 0.0, -1.0, 0.5]", "y": "[1.0, -1.0, 1.0, 2.0]"}),
             Kink("at the margin 0.5", {"a": "[1.0, 0.5, -2.0, 0.0]", "b": "[0.5, 0.0, -1.5, 0.5]",
                                        "y": "[1.0, -1.0, -1.0, 1.0]"}, sample=1)),
      shown={"input1": "g*where(margin - target*(input1 - input2) >= 0, -target, 0)/n",
             "input2": "g*where(margin - target*(input1 - input2) >= 0, target, 0)/n",
             "target": "g*where(margin - target*(input1 - input2) >= 0, input2 - input1, 0)/n"})
_loss("hinge_embedding_loss", "input, target", "margin=1.0, reduction='mean'", F.hinge_embedding_loss,
      {"input": lambda c: f"{_not_equal('target', 1)}*where({c.params.get('margin', 1.0)!r} - input >= 0, -1, 0) + "
                          f"{_not_equal('target', -1)}"},
      "input where target == 1, max(0, margin - input) where target == -1 (target: no gradient)",
      (sample("hinge_embedding_loss(a, sign(y))", lambda a, y: F.hinge_embedding_loss(a, torch.sign(y)),
              const=("y",), a=In(2, 3), y=In(2, 3, domain="nz")),
       sample("F.hinge_embedding_loss(a, sign(y), margin=0.5, reduction='none')",
              lambda a, y: F.hinge_embedding_loss(a, torch.sign(y), margin=0.5, reduction="none"),
              const=("y",), a=In(4), y=In(4, domain="nz"))),
      kinks=(Kink("margin - input == 0 at target -1: clamp_min passes the gradient (>=)",
                  {"a": "[1.0, 0.5, -2.0, 0.5]", "y": "[-1.0, 1.0, -1.0, -1.0]"}, sample=1),),
      shown={"input": "g*(where(target != 1 and margin - input >= 0, -1, 0) + (target != -1))/n"})
_loss("soft_margin_loss", "input, target", "reduction='mean'", F.soft_margin_loss,
      {"input": "-target*sigmoid(-target*input)"}, "log(1 + exp(-target*input)) (target: no gradient in torch)",
      (sample("soft_margin_loss(a, t)", F.soft_margin_loss, const=("t",), a=In(2, 3), t=In(2, 3)),
       sample("F.soft_margin_loss(a, t, reduction='none')", lambda a, t: F.soft_margin_loss(a, t, reduction="none"),
              const=("t",), a=In(4), t=In(4))))


def _bce_logits(arg: str) -> Callable[[RuleContext], str]:
    def d(c: RuleContext) -> str:
        w = "*weight" if "weight" in c.shapes else ""
        pw = "pos_weight" in c.shapes
        if arg == "input":
            return f"((pos_weight*target + 1 - target)*sigmoid(input) - pos_weight*target){w}" if pw \
                else f"(sigmoid(input) - target){w}"
        return f"(log(sigmoid(-input)) - pos_weight*log(sigmoid(input))){w}" if pw else f"-input{w}"

    return d


_loss("binary_cross_entropy_with_logits", "input, target, weight, pos_weight", "reduction='mean'",
      F.binary_cross_entropy_with_logits, {"input": _bce_logits("input"), "target": _bce_logits("target")},
      "-weight*(pos_weight*target*log(sigmoid(input)) + (1 - target)*log(sigmoid(-input)))",
      (sample("binary_cross_entropy_with_logits(z, t)", F.binary_cross_entropy_with_logits,
              z=In(2, 3), t=In(2, 3, domain="prob")),
       sample("F.binary_cross_entropy_with_logits(z, t, w, reduction='sum')",
              lambda z, t, w: F.binary_cross_entropy_with_logits(z, t, w, reduction="sum"), const=("w",),
              z=In(2, 3), t=In(2, 3, domain="prob"), w=In(3, domain="pos")),
       sample("F.binary_cross_entropy_with_logits(z, t, weight=w, pos_weight=p, reduction='none')",
              lambda z, t, w, p: F.binary_cross_entropy_with_logits(z, t, weight=w, pos_weight=p, reduction="none"),
              const=("w", "p"), z=In(2, 3), t=In(2, 3, domain="prob"), w=In(2, 1, domain="pos"), p=In(3, domain="pos")),
       sample("F.binary_cross_entropy_with_logits(z, t, torch.ones(3), pos_weight=p)",
              lambda z, t, p: F.binary_cross_entropy_with_logits(z, t, torch.ones(3), pos_weight=p),
              const=("p",), z=In(2, 3), t=In(2, 3, domain="prob"), p=In(3, domain="pos"))),
      optional_args=("weight", "pos_weight"),
      shown={"input": "g*((pos_weight*target + 1 - target)*sigmoid(input) - pos_weight*target)*weight/n",
             "target": "g*(log(sigmoid(-input)) - pos_weight*log(sigmoid(input)))*weight/n"})


def _multilabel(arg: str) -> Callable[[RuleContext], str]:
    """Per class l = -(target*log(sigmoid(input)) + (1 - target)*log(sigmoid(-input)))*weight, then the
    mean over the class (last) dim, then the reduction over the batch."""

    def rule(c: RuleContext) -> str:
        shape = c.shapes["input"]
        n_classes = shape[-1] if shape else 1
        red = c.params.get("reduction", "mean")
        n = math.prod(shape[:-1]) if red == "mean" else 1  # the rows (0 classes: a mean over nothing)
        grad = "g.unsqueeze(-1)" if red == "none" and len(shape) >= 2 else "g"
        w = "*weight" if "weight" in c.shapes else ""
        d = {"input": f"(sigmoid(input) - target){w}", "target": f"-input{w}",
             "weight": "-(target*log(sigmoid(input)) + (1 - target)*log(sigmoid(-input)))"}[arg]
        return f"{grad}*{d}/{n_classes * n}"

    return rule


_loss("multilabel_soft_margin_loss", "input, target, weight", "reduction='mean'", F.multilabel_soft_margin_loss, {},
      "mean over classes of -weight*(target*log(sigmoid(input)) + (1 - target)*log(sigmoid(-input)))",
      (sample("multilabel_soft_margin_loss(z, t)", F.multilabel_soft_margin_loss, z=In(2, 3), t=In(2, 3, domain="prob")),
       sample("F.multilabel_soft_margin_loss(z, t, weight=w, reduction='none')",
              lambda z, t, w: F.multilabel_soft_margin_loss(z, t, weight=w, reduction="none"),
              z=In(2, 3), t=In(2, 3, domain="prob"), w=In(3, domain="pos")),
       sample("F.multilabel_soft_margin_loss(z, t, w, reduction='sum')",
              lambda z, t, w: F.multilabel_soft_margin_loss(z, t, w, reduction="sum"),
              z=In(3, 2), t=In(3, 2, domain="prob"), w=In(2, domain="pos"))),
      optional_args=("weight",), rules={a: _multilabel(a) for a in ("input", "target", "weight")},
      shown={"input": "g*(sigmoid(input) - target)*weight/(C*N)", "target": "-g*input*weight/(C*N)",
             "weight": "-g*(target*log(sigmoid(input)) + (1 - target)*log(sigmoid(-input)))/(C*N)"},
      predict=lambda shapes, p: tuple(shapes[0][:-1]) if p.get("reduction", "mean") == "none" else ())


def _cosine_embedding(arg: str) -> Callable[[RuleContext], str]:
    """torch: cos = sum(x1*x2)/sqrt((sum(x1*x1) + 1e-12)*(sum(x2*x2) + 1e-12)) along the last dim of 2-D
    input (dim 0 of 1-D), loss 1 - cos where target == 1, max(0, cos - margin) where target == -1
    (clamp_min passes the gradient at 0).  d cos/dx1 = x2/sqrt(m1*m2) - cos*x1/m1."""

    def rule(c: RuleContext) -> str:
        nd = c.ndim("input1")
        dim = 1 if nd == 2 else 0
        mine, other = arg, "input2" if arg == "input1" else "input1"
        m = {x: f"((({x})*({x})).sum({dim}, keepdim=True) + 1e-12)" for x in (mine, other)}
        prod = f"(input1*input2).sum({dim}, keepdim=True)"
        cos = f"({prod}/sqrt({m['input1']}*{m['input2']}))"
        target = "target.unsqueeze(1)" if nd == 2 else "target"
        positive = f"(1 - {_not_equal(target, 1)})"
        negative = f"(1 - {_not_equal(target, -1)})*where({cos} - {c.params.get('margin', 0.0)!r} >= 0, 1, 0)"
        grad = "g.unsqueeze(1)" if nd == 2 and c.params.get("reduction", "mean") == "none" else "g"
        n = c.shapes["input1"][0] if nd == 2 and c.params.get("reduction", "mean") == "mean" else 1
        scale = f"/{n}" if n != 1 else ""
        slope = f"({other}/sqrt({m['input1']}*{m['input2']}) - {cos}*{mine}/{m[mine]})"
        return f"{grad}*({negative} - {positive})*{slope}{scale}"

    return rule


_loss("cosine_embedding_loss", "input1, input2, target", "margin=0.0, reduction='mean'", F.cosine_embedding_loss, {},
      "1 - cos(input1, input2) where target == 1, max(0, cos - margin) where target == -1 (target: no gradient)",
      (sample("cosine_embedding_loss(a, b, sign(y))", lambda a, b, y: F.cosine_embedding_loss(a, b, torch.sign(y)),
              const=("y",), a=In(3, 2), b=In(3, 2), y=In(3, domain="nz")),
       sample("F.cosine_embedding_loss(a, b, sign(y), margin=-0.5, reduction='none')",
              lambda a, b, y: F.cosine_embedding_loss(a, b, torch.sign(y), margin=-0.5, reduction="none"),
              const=("y",), a=In(3, 4), b=In(3, 4), y=In(3, domain="nz")),
       sample("F.cosine_embedding_loss(a, b, tensor(-1.0), reduction='sum')",
              lambda a, b: F.cosine_embedding_loss(a, b, torch.tensor(-1.0), reduction="sum"), a=In(3), b=In(3))),
      rules={a: _cosine_embedding(a) for a in ("input1", "input2")},
      shown={"input1": "g*([target == -1 and cos >= margin] - [target == 1])*(input2/sqrt(m1*m2) - cos*input1/m1)/N, "
                       "m = sum(x*x) + 1e-12",
             "input2": "g*([target == -1 and cos >= margin] - [target == 1])*(input1/sqrt(m1*m2) - cos*input2/m2)/N"},
      predict=lambda shapes, p: tuple(shapes[0][:1]) if p.get("reduction", "mean") == "none" and len(shapes[0]) == 2
      else ())


def _triplet(arg: str) -> Callable[[RuleContext], str]:
    """max(0, margin + d(anchor, positive) - d_neg), d = pairwise_distance (p, eps), d_neg = d(anchor,
    negative) or, with swap, its minimum with d(positive, negative) (a tie shares g, as torch's minimum):
    g flows where the hinge is active (clamp_min: >=), through each distance's slope."""

    def rule(c: RuleContext) -> str:
        p, eps, margin = c.params.get("p", 2.0), c.params.get("eps", 1e-6), c.params.get("margin", 1.0)
        pairs = {"ap": ("anchor", "positive"), "an": ("anchor", "negative"), "pn": ("positive", "negative")}
        d = {k: f"pairwise_distance({x}, {y}, {p!r}, {eps!r}, keepdim=True)" for k, (x, y) in pairs.items()}
        slope = {k: norm_slope(f"({x} - {y} + {eps!r})", d[k], p) for k, (x, y) in pairs.items()}
        nd = c.ndim("anchor")
        red = c.params.get("reduction", "mean")
        grad = "g.unsqueeze(-1)" if red == "none" and nd == 2 else "g"
        n = c.shapes["anchor"][0] if red == "mean" and nd == 2 else 1
        scale = f"/{n}" if n != 1 else ""
        if not c.params.get("swap", False):
            active = f"where({margin!r} + {d['ap']} - {d['an']} >= 0, {grad}, 0)"
            term = {"anchor": f"({slope['ap']} - {slope['an']})", "positive": f"-{slope['ap']}",
                    "negative": slope["an"]}[arg]
            return f"{active}*{term}{scale}"
        share = f"where({d['an']} < {d['pn']}, 1, where({d['an']} > {d['pn']}, 0, 0.5))"  # of d_an in the minimum
        d_neg = f"where({d['an']} <= {d['pn']}, {d['an']}, {d['pn']})"
        active = f"where({margin!r} + {d['ap']} - {d_neg} >= 0, {grad}, 0)"
        term = {"anchor": f"({slope['ap']} - {share}*{slope['an']})",
                "positive": f"(-{slope['ap']} - (1 - {share})*{slope['pn']})",
                "negative": f"({share}*{slope['an']} + (1 - {share})*{slope['pn']})"}[arg]
        return f"{active}*{term}{scale}"

    return rule


_loss("triplet_margin_loss", "anchor, positive, negative", "margin=1.0, p=2.0, eps=1e-06, swap=False, reduction='mean'",
      F.triplet_margin_loss, {}, "max(0, margin + ||anchor - positive + eps||_p - ||anchor - negative + eps||_p)",
      (sample("triplet_margin_loss(a, p, n)", F.triplet_margin_loss, a=In(3, 2), p=In(3, 2), n=In(3, 2)),
       sample("F.triplet_margin_loss(a, p, n, margin=2.0, reduction='none')",
              lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=2.0, reduction="none"), a=In(3, 4), p=In(3, 4), n=In(3, 4)),
       sample("F.triplet_margin_loss(a, p, n, p=1.0, reduction='sum')",
              lambda a, p, n: F.triplet_margin_loss(a, p, n, p=1.0, reduction="sum"), a=In(2, 3), p=In(2, 3), n=In(2, 3)),
       sample("F.triplet_margin_loss(a, p, n, swap=True, margin=3.0)",
              lambda a, p, n: F.triplet_margin_loss(a, p, n, swap=True, margin=3.0), a=In(4, 2), p=In(4, 2), n=In(4, 2))),
      kinks=(Kink("swap at a tie d(anchor, negative) == d(positive, negative): g shared half and half (minimum)",
                  {"a": "[[1.0, 0.0], [2.0, 1.0], [0.0, 2.0], [1.0, 1.0]]", "p": "[[0.0, 1.0], [1.0, 2.0], [1.0, 0.0], [1.0, 2.0]]",
                   "n": "[[0.0, 0.0], [1.0, 1.0], [3.0, 1.0], [0.0, 0.0]]"}, sample=3),),
      rules={a: _triplet(a) for a in ("anchor", "positive", "negative")},
      shown={"anchor": "where(margin + d_ap - d_an >= 0, g, 0)*((a - p + eps)/d_ap - (a - n + eps)/d_an)/N  (p = 2)",
             "positive": "-where(margin + d_ap - d_an >= 0, g, 0)*(a - p + eps)/d_ap/N",
             "negative": "where(margin + d_ap - d_an >= 0, g, 0)*(a - n + eps)/d_an/N"},
      predict=lambda shapes, p: tuple(shapes[0][:1]) if p.get("reduction", "mean") == "none" and len(shapes[0]) == 2
      else ())
