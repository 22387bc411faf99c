"""Convolutions: ``conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d`` and the
weight gradient ``conv1d_weight conv2d_weight conv3d_weight`` (``torch.nn.grad.convNd_weight``).

The gradient of a convolution is a convolution, so the rules are written with these ops alone and
stay shape-generic (their size never depends on the image size):

- ``conv(x, W)``: ∂x = ``conv_transpose(g, W)`` with the same stride/padding/dilation/groups and the
  ``output_padding`` that gives back x's size (computed from the shapes); ∂W = ``conv_weight(x, g)``;
  ∂b = g summed over every dim but the channel dim.
- ``conv_transpose(x, W)`` is the adjoint of ``conv`` in x: ∂x = ``conv(g, W)``, ∂W = ``conv_weight(g, x)``.
- ``conv_weight(x, dy)`` is bilinear too: ∂dy = ``conv(x, g)``, ∂x = ``conv_transpose(dy, g)``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from .spec import NONLINEAR, In, RuleContext, op, sample

# torch's functions by spatial dims (a table: no function is ever looked up by a name built from text)
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
CONV_WEIGHT = {1: torch.nn.grad.conv1d_weight, 2: torch.nn.grad.conv2d_weight, 3: torch.nn.grad.conv3d_weight}
_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "output_padding": 0}


def _per_dim(value: Any, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _param(value: tuple[int, ...]) -> Any:
    return value[0] if len(set(value)) == 1 else value


def _kw(**params: Any) -> str:
    """``, stride=2, padding=1``: only the params that differ from torch's defaults."""
    parts = []
    for name, value in params.items():
        if value != _DEFAULTS.get(name) and value != (_DEFAULTS.get(name),) * (len(value) if isinstance(value, tuple) else 0):
            parts.append(f"{name}={value!r}")
    return "".join(", " + p for p in parts)


def _geometry(c: RuleContext, n: int, weight: str, stride_name: str = "stride") -> dict[str, tuple[int, ...]]:
    p = c.params
    return {"stride": _per_dim(p.get(stride_name, 1), n), "padding": _per_dim(p.get("padding", 0), n),
            "dilation": _per_dim(p.get("dilation", 1), n), "kernel": tuple(c.shapes[weight][-n:])}


def output_padding(small: tuple[int, ...], big: tuple[int, ...], geo: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """The ``output_padding`` for which ``conv_transpose`` maps the spatial size ``small`` back to ``big``
    (a strided convolution drops the last rows that do not fill a stride)."""
    return tuple(b - ((s - 1) * st - 2 * pd + dl * (k - 1) + 1)
                 for s, b, st, pd, dl, k in zip(small, big, geo["stride"], geo["padding"], geo["dilation"], geo["kernel"]))


def _common(c: RuleContext, geo: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    return {"stride": _param(geo["stride"]), "padding": _param(geo["padding"]), "dilation": _param(geo["dilation"]),
            "groups": c.params.get("groups", 1)}


def _bias_rule(n: int) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        nd = len(c.out_shape)
        dims = tuple(d for d in range(nd) if d != nd - n - 1)
        return f"g.sum({dims[0] if len(dims) == 1 else dims})"

    return rule


def _conv_rules(n: int) -> dict[str, Callable[[RuleContext], str]]:
    def x_rule(c: RuleContext) -> str:
        geo = _geometry(c, n, "W")
        pad = output_padding(c.out_shape[-n:], c.shapes["x"][-n:], geo)
        kw = _common(c, geo)
        return (f"conv_transpose{n}d(g, W{_kw(stride=kw['stride'], padding=kw['padding'])}"
                f"{_kw(output_padding=_param(pad), groups=kw['groups'], dilation=kw['dilation'])})")

    def w_rule(c: RuleContext) -> str:
        kw = _common(c, _geometry(c, n, "W"))
        return f"conv{n}d_weight(x, g, weight_size={tuple(c.shapes['W'])!r}{_kw(**kw)})"

    return {"x": x_rule, "W": w_rule, "b": _bias_rule(n)}


def _conv_transpose_rules(n: int) -> dict[str, Callable[[RuleContext], str]]:
    def x_rule(c: RuleContext) -> str:
        return f"conv{n}d(g, W{_kw(**_common(c, _geometry(c, n, 'W')))})"

    def w_rule(c: RuleContext) -> str:
        kw = _common(c, _geometry(c, n, "W"))
        return f"conv{n}d_weight(g, x, weight_size={tuple(c.shapes['W'])!r}{_kw(**kw)})"

    return {"x": x_rule, "W": w_rule, "b": _bias_rule(n)}


def _weight_rules(n: int) -> dict[str, Callable[[RuleContext], str]]:
    def x_rule(c: RuleContext) -> str:  # g has the weight's shape
        geo = _geometry(c, n, "dy")
        geo["kernel"] = tuple(c.params["weight_size"][-n:])
        pad = output_padding(c.shapes["dy"][-n:], c.shapes["x"][-n:], geo)
        kw = _common(c, geo)
        return (f"conv_transpose{n}d(dy, g{_kw(stride=kw['stride'], padding=kw['padding'])}"
                f"{_kw(output_padding=_param(pad), groups=kw['groups'], dilation=kw['dilation'])})")

    def dy_rule(c: RuleContext) -> str:
        geo = _geometry(c, n, "dy")
        return f"conv{n}d(x, g{_kw(**_common(c, geo))})"

    return {"x": x_rule, "dy": dy_rule}


def _weight_torch(n: int) -> Callable[..., torch.Tensor]:
    fn = CONV_WEIGHT[n]

    def apply(x: Any, dy: Any, weight_size: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
              groups: int = 1) -> torch.Tensor:
        if x.dim() == n + 1:  # unbatched, as F.convNd allows
            x, dy = x.unsqueeze(0), dy.unsqueeze(0)
        return fn(x, list(weight_size), dy, stride, padding, dilation, groups)

    return apply


def _conv_shape(n: int, transpose: bool) -> Callable[[list[Any], dict[str, Any]], tuple[int, ...]]:
    def predict(shapes: list[Any], p: dict[str, Any]) -> tuple[int, ...]:
        x, w = shapes[0], shapes[1]
        st, pd, dl = (_per_dim(p.get(k, _DEFAULTS[k]), n) for k in ("stride", "padding", "dilation"))
        k = w[-n:]
        if transpose:
            op_ = _per_dim(p.get("output_padding", 0), n)
            spatial = tuple((s - 1) * a - 2 * b + c * (kk - 1) + o + 1 for s, a, b, c, kk, o in zip(x[-n:], st, pd, dl, k, op_))
            channels = w[1] * p.get("groups", 1)
        else:
            spatial = tuple((s + 2 * b - c * (kk - 1) - 1) // a + 1 for s, a, b, c, kk in zip(x[-n:], st, pd, dl, k))
            channels = w[0]
        return tuple(x[:-n - 1]) + (channels,) + spatial

    return predict


for _n in (1, 2, 3):
    _conv, _convt = CONV[_n], CONV_TRANSPOSE[_n]
    op(f"conv{_n}d", "x, W, b", "stride=1, padding=0, dilation=1, groups=1", optional_args=("b",),
       torch=lambda x, W, b=None, _f=_conv, **p: _f(x, W, b, **p), rules=_conv_rules(_n), predict=_conv_shape(_n, False),
       shown={"x": f"conv_transpose{_n}d(g, W, stride, padding, output_padding, groups, dilation)  "
                   "(output_padding from the shapes)",
              "W": f"conv{_n}d_weight(x, g, W.shape, stride, padding, dilation, groups)",
              "b": "g summed over all dims but the channels"},
       linear=NONLINEAR,  # bilinear in (x, W), affine with b: no batched second-order map yet
       doc=f"{_n}-D convolution (cross-correlation) with stride, padding, dilation, groups",
       samples={1: (sample("conv1d(x, W, b)", F.conv1d, x=In(1, 2, 5), W=In(3, 2, 2), b=In(3)),
                    sample("F.conv1d(x, W, stride=2, padding=1, dilation=2)",
                           lambda x, W: F.conv1d(x, W, stride=2, padding=1, dilation=2), x=In(2, 2, 6), W=In(2, 2, 2))),
                2: (sample("F.conv2d(x, W, b)", F.conv2d, x=In(1, 2, 4, 4), W=In(3, 2, 2, 2), b=In(3)),
                    sample("conv2d(x, W, stride=2, padding=1)", lambda x, W: F.conv2d(x, W, stride=2, padding=1),
                           x=In(1, 1, 5, 5), W=In(2, 1, 3, 3)),
                    sample("conv2d(x, W, groups=2, dilation=2)", lambda x, W: F.conv2d(x, W, groups=2, dilation=2),
                           x=In(1, 2, 5, 5), W=In(4, 1, 2, 2)),
                    sample("conv2d(x, W, stride=(2, 1), padding=(0, 1))",
                           lambda x, W: F.conv2d(x, W, stride=(2, 1), padding=(0, 1)), x=In(2, 4, 4), W=In(1, 2, 2, 3))),
                3: (sample("conv3d(x, W, b, padding=1)", lambda x, W, b: F.conv3d(x, W, b, padding=1),
                           x=In(1, 1, 3, 3, 3), W=In(2, 1, 2, 2, 2), b=In(2)),)}[_n])
    op(f"conv_transpose{_n}d", "x, W, b", "stride=1, padding=0, output_padding=0, groups=1, dilation=1",
       optional_args=("b",), torch=lambda x, W, b=None, _f=_convt, **p: _f(x, W, b, **p), rules=_conv_transpose_rules(_n),
       predict=_conv_shape(_n, True),
       shown={"x": f"conv{_n}d(g, W, stride, padding, dilation, groups)",
              "W": f"conv{_n}d_weight(g, x, W.shape, stride, padding, dilation, groups)",
              "b": "g summed over all dims but the channels"},
       linear=NONLINEAR, doc=f"{_n}-D transposed convolution (the adjoint of conv{_n}d in its input)",
       samples={1: (sample("conv_transpose1d(x, W, b, stride=2)", lambda x, W, b: F.conv_transpose1d(x, W, b, stride=2),
                           x=In(1, 2, 4), W=In(2, 3, 3), b=In(3)),),
                2: (sample("F.conv_transpose2d(x, W, stride=2, padding=1, output_padding=1)",
                           lambda x, W: F.conv_transpose2d(x, W, stride=2, padding=1, output_padding=1),
                           x=In(1, 2, 3, 3), W=In(2, 1, 3, 3)),
                    sample("conv_transpose2d(x, W, b, groups=2, dilation=2)",
                           lambda x, W, b: F.conv_transpose2d(x, W, b, groups=2, dilation=2),
                           x=In(1, 2, 3, 3), W=In(2, 2, 2, 2), b=In(4))),
                3: (sample("conv_transpose3d(x, W)", F.conv_transpose3d, x=In(1, 1, 2, 2, 2), W=In(1, 2, 2, 2, 2)),)}[_n])
    op(f"conv{_n}d_weight", "x, dy", "weight_size, stride=1, padding=0, dilation=1, groups=1", torch=_weight_torch(_n),
       rules=_weight_rules(_n), shown={"x": f"conv_transpose{_n}d(dy, g, ...)", "dy": f"conv{_n}d(x, g, ...)"},
       linear=NONLINEAR,
       doc=f"torch.nn.grad.conv{_n}d_weight(x, weight_size, dy): the gradient of conv{_n}d for its weight",
       samples=(sample(f"conv{_n}d_weight(x, dy, weight_size={(2, 1) + (2,) * _n}, stride=2)",
                       lambda x, dy, _n=_n: CONV_WEIGHT[_n](x, [2, 1] + [2] * _n, dy, stride=2),
                       x=In(1, 1, *(5,) * _n), dy=In(1, 2, *(2,) * _n)),))
