"""More layers: ``dropout1d dropout2d dropout3d embedding embedding_bag pixel_shuffle pixel_unshuffle
fold im2col interpolate scaled_dot_product_attention`` and their backward ops.

Linear layers come in adjoint pairs, so each rule is the partner op of ``g`` (never per element):
``pixel_shuffle`` ↔ ``pixel_unshuffle``, ``im2col`` (``F.unfold``) ↔ ``fold``, ``embedding`` (a gather
of rows) ↔ ``embedding_backward`` (rows of g added at the indices); ``interpolate``'s backward is
torch's own backward of the (linear) interpolation, whose adjoint is ``interpolate`` again.
``scaled_dot_product_attention`` is written out as ``softmax(q @ kᵀ·scale + mask) @ v`` in its rules.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..i18n import Msg
from .nn import dropout_mask
from .pool import vjp_of
from .spec import NONLINEAR, In, RuleContext, as_tensor, op, sample


def _kw(c: RuleContext, defaults: dict[str, Any], **override: Any) -> str:
    params = dict(c.params, **override)
    return "".join(f", {k}={v!r}" for k, v in params.items() if k in defaults and v != defaults[k])


# ------------------------------------------------------------------------------ channel dropout

DROPOUT = {1: F.dropout1d, 2: F.dropout2d, 3: F.dropout3d}


def _channel_dropout(n: int) -> Callable[..., torch.Tensor]:
    """Whole channels zeroed: the mask has x's shape with 1s for the ``n`` spatial dims."""

    def apply(x: Any, p: float = 0.5, training: bool = True, seed: int = 0) -> torch.Tensor:
        x = as_tensor(x)
        if not training or p == 0:
            return DROPOUT[n](x, p, training=False)
        return x * dropout_mask(tuple(x.shape[:-n]) + (1,) * n, p, seed).to(x.dtype)

    return apply


for _n in (1, 2, 3):
    op(f"dropout{_n}d", "x", "p=0.5, training=True, seed=0", torch=_channel_dropout(_n), positional_params=("p",),
       always_printed=("seed",),
       rules={"x": lambda c, _n=_n: "g*dropout{n}d(ones_like(x), {p}, training={t}, seed={s})".format(
           n=_n, p=c.params.get("p", 0.5), t=c.params.get("training", True), s=c.params.get("seed", 0))
           if c.params.get("training", True) else "g"},
       shown={"x": "g*mask/(1 - p)  (the same per-channel mask, drawn from --seed)"}, linear=NONLINEAR,
       doc=f"zero whole channels (the last {_n} dims share one draw) with probability p, scale by 1/(1-p)",
       samples=(sample(f"dropout{_n}d(x, 0.5, training=False)",
                       lambda x, _n=_n: DROPOUT[_n](x, 0.5, training=False), x=In(2, 3, *(2,) * _n)),))


# ------------------------------------------------------------------------------ embedding


def _embedding_backward(g: Any, input: Any, num_weights: int = 0, padding_idx: Any = None) -> torch.Tensor:
    g = as_tensor(g)
    rows = g if g.dim() == 2 else g.reshape(-1, g.shape[-1])  # no view node when g is already rows
    out = torch.zeros((num_weights, g.shape[-1]), dtype=g.dtype).index_add(0, input.reshape(-1), rows)
    if padding_idx is not None:
        out = out * (torch.arange(num_weights) != padding_idx % num_weights).unsqueeze(1).to(g.dtype)
    return out


op("embedding", "input, weight", "padding_idx=None", torch=lambda i, w, padding_idx=None: F.embedding(i, w, padding_idx),
   rules={"weight": lambda c: f"embedding_backward(g, input, num_weights={c.shapes['weight'][0]}"
                              f"{_kw(c, {'padding_idx': None})})"},
   shown={"weight": "embedding_backward(g, input, num_weights): rows of g added at the indices"}, linear=NONLINEAR,
   doc="rows of weight picked by integer indices (a lookup table)",
   samples=(sample("embedding(tensor([[0, 2], [2, 1]]), W)", lambda W: F.embedding(torch.tensor([[0, 2], [2, 1]]), W),
                   W=In(3, 2)),
            sample("F.embedding(tensor([1, 0, 1]), W) * 2", lambda W: F.embedding(torch.tensor([1, 0, 1]), W) * 2,
                   W=In(3, 2))))
def _embedding_backward_rule(c: RuleContext) -> str:
    if c.params.get("padding_idx") is not None:
        raise NotImplementedError(Msg("symbolic second derivative through embedding's padding_idx"))
    return "embedding(input, g)"


op("embedding_backward", "g, input", "num_weights, padding_idx=None", torch=_embedding_backward,
   rules={"g": _embedding_backward_rule},
   shown={"g": "embedding(input, g)  (the adjoint: a gather)"}, linear=NONLINEAR,
   doc="the gradient of embedding for its weight: zeros with the rows of g added at the indices",
   samples=(sample("embedding_backward(g, tensor([0, 2, 2]), num_weights=3)",
                   lambda g: torch.zeros(3, 2, dtype=g.dtype).index_add(0, torch.tensor([0, 2, 2]), g), g=In(3, 2)),))


def _bag_rule(c: RuleContext) -> str:
    if c.ndim("input") != 2:
        raise NotImplementedError(Msg("symbolic embedding_bag with 1-D input and offsets"))
    length = c.shapes["input"][1]
    spread = f"g.unsqueeze(1)*ones({length}, 1)"
    if c.params.get("mode", "mean") == "mean":
        spread = f"{spread}/{length}"
    elif c.params.get("mode") != "sum":
        raise NotImplementedError(Msg("symbolic embedding_bag with mode='max'"))
    return f"embedding_backward({spread}, input, num_weights={c.shapes['weight'][0]})"


op("embedding_bag", "input, weight", "mode='mean'",
   torch=lambda i, w, mode="mean": F.embedding_bag(i, w, mode=mode), rules={"weight": _bag_rule},
   shown={"weight": "embedding_backward(g spread over each bag (/ bag size for mean), input, num_weights)"},
   linear=NONLINEAR, doc="sum or mean of the embedding rows of each bag (2-D input: one bag per row)",
   samples=(sample("embedding_bag(tensor([[0, 2], [1, 1]]), W)",
                   lambda W: F.embedding_bag(torch.tensor([[0, 2], [1, 1]]), W), W=In(3, 2)),
            sample("F.embedding_bag(tensor([[0, 2, 2]]), W, mode='sum')",
                   lambda W: F.embedding_bag(torch.tensor([[0, 2, 2]]), W, mode="sum"), W=In(3, 4))))


# ------------------------------------------------------------------------------ adjoint pairs


op("pixel_shuffle", "x", "upscale_factor", torch=lambda x, upscale_factor: F.pixel_shuffle(x, upscale_factor),
   positional_params=("upscale_factor",), rules={"x": lambda c: f"pixel_unshuffle(g, {c.params['upscale_factor']})"},
   shown={"x": "pixel_unshuffle(g, r)"}, linear=NONLINEAR,
   doc="(*, C·r², H, W) → (*, C, H·r, W·r): channels moved into space",
   samples=(sample("pixel_shuffle(x, 2)", lambda x: F.pixel_shuffle(x, 2), x=In(1, 4, 2, 3)),))
op("pixel_unshuffle", "x", "downscale_factor", torch=lambda x, downscale_factor: F.pixel_unshuffle(x, downscale_factor),
   positional_params=("downscale_factor",), rules={"x": lambda c: f"pixel_shuffle(g, {c.params['downscale_factor']})"},
   shown={"x": "pixel_shuffle(g, r)"}, linear=NONLINEAR, doc="the inverse of pixel_shuffle",
   samples=(sample("F.pixel_unshuffle(x, 2)", lambda x: F.pixel_unshuffle(x, 2), x=In(1, 1, 4, 2)),))

_IM2COL = {"dilation": 1, "padding": 0, "stride": 1}
op("im2col", "x", "kernel_size, dilation=1, padding=0, stride=1", positional_params=("kernel_size",),
   torch=lambda x, kernel_size, **p: F.unfold(x, kernel_size, **p),
   rules={"x": lambda c: f"fold(g, {tuple(c.shapes['x'][-2:])!r}, {c.params['kernel_size']!r}{_kw(c, _IM2COL)})"},
   shown={"x": "fold(g, x.shape[-2:], kernel_size, dilation, padding, stride)"}, linear=NONLINEAR,
   doc="F.unfold: sliding blocks as columns (im2col; `unfold` is Tensor.unfold's name)",
   samples=(sample("im2col(x, 2, stride=1, padding=1)", lambda x: F.unfold(x, 2, stride=1, padding=1), x=In(1, 2, 3, 3)),))
op("fold", "x", "output_size, kernel_size, dilation=1, padding=0, stride=1", positional_params=("output_size", "kernel_size"),
   torch=lambda x, output_size, kernel_size, **p: F.fold(x, output_size, kernel_size, **p),
   rules={"x": lambda c: f"im2col(g, {c.params['kernel_size']!r}{_kw(c, _IM2COL)})"},
   shown={"x": "F.unfold(g, kernel_size, dilation, padding, stride)"}, linear=NONLINEAR,
   doc="F.fold: columns summed back into an image (col2im, the adjoint of F.unfold)",
   samples=(sample("F.fold(x, (3, 3), 2)", lambda x: F.fold(x, (3, 3), 2), x=In(1, 4, 4)),))

_INTERP = {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None}


def _interpolate_torch(x: Any, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                       align_corners: Any = None) -> torch.Tensor:
    return F.interpolate(x, size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners)


op("interpolate", "x", "size=None, scale_factor=None, mode='nearest', align_corners=None", torch=_interpolate_torch,
   positional_params=("size",), rules={"x": lambda c: f"interpolate_backward(g, x{_kw(c, _INTERP)})"},
   shown={"x": "interpolate_backward(g, x, ...): torch's backward of the (linear) resampling"}, linear=NONLINEAR,
   doc="resample the spatial dims (nearest, linear, bilinear, …)",
   samples=(sample("interpolate(x, scale_factor=2)", lambda x: F.interpolate(x, scale_factor=2), x=In(1, 1, 2, 2)),
            sample("F.interpolate(x, size=5, mode='linear')", lambda x: F.interpolate(x, size=5, mode="linear"),
                   x=In(1, 2, 3)),
            sample("interpolate(x, size=(3, 4), mode='bilinear', align_corners=True)",
                   lambda x: F.interpolate(x, size=(3, 4), mode="bilinear", align_corners=True), x=In(1, 1, 2, 3))))
op("interpolate_backward", "g, x", "size=None, scale_factor=None, mode='nearest', align_corners=None",
   torch=vjp_of(_interpolate_torch), rules={"g": lambda c: f"interpolate(g{_kw(c, _INTERP)})"},
   shown={"g": "interpolate(g, ...)  (the adjoint)"}, linear=NONLINEAR,
   doc="the gradient of interpolate (x gives only the shape)",
   samples=(sample("interpolate_backward(g, x, scale_factor=2, mode='bilinear')",
                   lambda g, x: vjp_of(_interpolate_torch)(g, x, scale_factor=2, mode="bilinear"), const=("x",),
                   g=In(1, 1, 4, 4), x=In(1, 1, 2, 2)),))


# ------------------------------------------------------------------------------ attention


def _scores(c: RuleContext) -> str:
    """The attention weights A = softmax(q kᵀ·scale (+ causal mask)) as EXPR."""
    d = c.shapes["q"][-1]
    scale = c.params.get("scale")
    if scale is None:  # no features (d = 0): q kᵀ is 0 at any scale, as torch scales q and k before the product
        scale = d ** -0.5 if d else 1.0
    s = f"q @ k.transpose(-2, -1)*{scale!r}"
    if c.params.get("is_causal"):
        lq, lk = c.shapes["q"][-2], c.shapes["k"][-2]
        s = f"where(arange({lq}).unsqueeze(1) >= arange({lk}), {s}, -inf)"
    return f"softmax({s}, dim=-1)", scale


def _sdpa_rule(arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        if c.params.get("dropout_p", 0.0):
            raise NotImplementedError(Msg("symbolic attention with dropout"))
        a, scale = _scores(c)
        if arg == "v":
            return f"{a}.transpose(-2, -1) @ g"
        ga = "g @ v.transpose(-2, -1)"
        gs = f"{a}*({ga} - ({ga}*{a}).sum(-1, keepdim=True))"
        return f"({gs}) @ k*{scale!r}" if arg == "q" else f"({gs}).transpose(-2, -1) @ q*{scale!r}"

    return rule


op("scaled_dot_product_attention", "q, k, v", "dropout_p=0.0, is_causal=False, scale=None",
   torch=lambda q, k, v, **p: F.scaled_dot_product_attention(q, k, v, **p),
   rules={a: _sdpa_rule(a) for a in ("q", "k", "v")}, linear=NONLINEAR,
   shown={"v": "A.mT @ g, A = softmax(q @ k.mT*scale + mask)", "q": "(A*(gA - (gA*A).sum(-1)))@k*scale, gA = g @ v.mT",
          "k": "(A*(gA - (gA*A).sum(-1))).mT @ q*scale"},
   doc="softmax(q kᵀ/√d (+ causal mask)) v (dropout_p = 0)",
   samples=(sample("scaled_dot_product_attention(q, k, v)", F.scaled_dot_product_attention,
                   q=In(2, 3, 4), k=In(2, 5, 4), v=In(2, 5, 2)),
            sample("F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.5)",
                   lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.5),
                   q=In(1, 3, 2), k=In(1, 3, 2), v=In(1, 3, 2))))
