"""Norm-based ops: ``normalize cosine_similarity pairwise_distance cdist``, with closed-form rules.

With ``N = ||x||_p`` along a dim, ``dN/dx = sign(x)*|x|**(p-1)/N**(p-1)`` (``x/N`` for p = 2); each
rule below is that chain rule written whole-tensor.  ``cdist``'s p = 2 rule is two matrix products.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .spec import NONLINEAR, In, Kink, RuleContext, as_tensor, broadcast_shape, op, sample


def norm_slope(x: str, n: str, p: float) -> str:
    """EXPR for d||x||_p/dx given the norm's text ``n`` (broadcasting against ``x``)."""
    if p == 2:
        return f"{x}/{n}"
    if p == 1:
        return f"sign({x})"
    return f"sign({x})*abs({x})**{p - 1!r}/{n}**{p - 1!r}"


def _normalize_rule(c: RuleContext) -> str:
    """out = a/max(N, eps): g/max(N, eps) minus, where N >= eps (clamp_min passes), the norm's share."""
    p, dim, eps = c.params.get("p", 2.0), c.params.get("dim", 1), c.params.get("eps", 1e-12)
    n = f"norm(a, p={p!r}, dim={dim}, keepdim=True)"
    clamped = f"where({n} >= {eps!r}, {n}, {eps!r})"  # clamp_min(eps)
    return (f"g/{clamped} - where({n} >= {eps!r}, {norm_slope('a', n, p)}*(g*a).sum({dim}, keepdim=True)/"
            f"{clamped}**2, 0)")


op("normalize", "a", "p=2.0, dim=1, eps=1e-12", torch=lambda a, p=2.0, dim=1, eps=1e-12: F.normalize(
    as_tensor(a), p=p, dim=dim, eps=eps), positional_params=("p", "dim"), rules={"a": _normalize_rule},
   shown={"a": "g/N - a/N*(g*a).sum(dim, keepdim=True)/N**2, N = max(||a||_p, eps)  (p = 2)"}, linear=NONLINEAR,
   doc="a/max(||a||_p along dim, eps)",
   samples=(sample("normalize(a)", lambda a: F.normalize(a), a=In(2, 3)),
            sample("F.normalize(a, dim=0) * b", lambda a, b: F.normalize(a, dim=0) * b, a=In(3, 2), b=In(3, 2)),
            sample("F.normalize(a, p=1, dim=-1)", lambda a: F.normalize(a, p=1, dim=-1), a=In(2, 3, domain="nz")),
            sample("F.normalize(a, 3.0, 0)", lambda a: F.normalize(a, 3.0, 0), a=In(4, domain="nz"))),
   kinks=(Kink("a zero row: the norm is clamped to eps (clamp_min: no gradient below eps), so g/eps",
               {"a": "[[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]"}),))


def _cosine_rule(arg: str) -> Any:
    """torch: cos = sum(x1*x2)/(c1*c2), c = max(|x|, eps) with the gradient passing the clamp, so
    d cos/dx1 = (x2/c2 - cos*x1/|x1|)/c1, where x1/|x1| is 0 for a zero vector (the norm's slope there)."""

    def rule(c: RuleContext) -> str:
        dim, eps = c.params.get("dim", 1), c.params.get("eps", 1e-8)
        # torch broadcasts x1 and x2 first: the norms are along dim of the common shape (a 0-d x2 too)
        common = broadcast_shape(c.shapes["x1"], c.shapes["x2"])
        mine, other = (x if c.shapes[x] == common else f"{x}.expand({common!r})" for x in (arg, "x2" if arg == "x1" else "x1"))
        nm, no = (f"norm({x}, dim={dim}, keepdim=True)" for x in (mine, other))
        cm, co = (f"where({n} >= {eps!r}, {n}, {eps!r})" for n in (nm, no))
        return f"g.unsqueeze({dim})*({other}/{co} - out.unsqueeze({dim})*where({nm} > 0, {mine}/{nm}, 0))/{cm}"

    return rule


op("cosine_similarity", "x1, x2", "dim=1, eps=1e-08", torch=lambda x1, x2, dim=1, eps=1e-8: F.cosine_similarity(
    as_tensor(x1), as_tensor(x2), dim=dim, eps=eps), positional_params=("dim",),
   rules={"x1": _cosine_rule("x1"), "x2": _cosine_rule("x2")}, linear=NONLINEAR,
   shown={"x1": "g*(x2/c2 - out*x1/|x1|)/c1, c = max(|x|, eps)  (g, out unsqueezed along dim)",
          "x2": "g*(x1/c1 - out*x2/|x2|)/c2"},
   predict=lambda shapes, p: tuple(s for i, s in enumerate(broadcast_shape(*shapes))
                                   if i != p.get("dim", 1) % max(len(broadcast_shape(*shapes)), 1)),
   doc="cosine of the angle between x1 and x2 along dim (broadcasting)",
   samples=(sample("cosine_similarity(a, b)", F.cosine_similarity, a=In(2, 3), b=In(2, 3)),
            sample("F.cosine_similarity(a, b, dim=-1)", lambda a, b: F.cosine_similarity(a, b, dim=-1),
                   a=In(2, 3), b=In(3)),
            sample("F.cosine_similarity(a, b, 0)", lambda a, b: F.cosine_similarity(a, b, 0), a=In(4), b=In(4))),
   kinks=(Kink("a zero vector: its norm is clamped to eps (the gradient passes the clamp), its slope is 0",
               {"a": "[[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]", "b": "[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]"}),
          Kink("a norm below eps", {"a": "[[0.000000001, 0.0, 0.0], [1.0, 2.0, 3.0]]",
                                    "b": "[[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]"})))


def _pairwise_rule(arg: str) -> Any:
    """||x1 - x2 + eps||_p along the last dim: d/dx1 = g*slope(x1 - x2 + eps), d/dx2 = -that."""

    def rule(c: RuleContext) -> str:
        p, eps = c.params.get("p", 2.0), c.params.get("eps", 1e-6)
        unsq = "" if c.params.get("keepdim", False) else ".unsqueeze(-1)"
        slope = norm_slope(f"(x1 - x2 + {eps!r})", f"out{unsq}", p)
        return f"{'' if arg == 'x1' else '-'}g{unsq}*{slope}"

    return rule


op("pairwise_distance", "x1, x2", "p=2.0, eps=1e-06, keepdim=False", positional_params=("p", "eps", "keepdim"),
   torch=lambda x1, x2, p=2.0, eps=1e-6, keepdim=False: F.pairwise_distance(as_tensor(x1), as_tensor(x2), p, eps,
                                                                              keepdim),
   rules={"x1": _pairwise_rule("x1"), "x2": _pairwise_rule("x2")}, linear=NONLINEAR,
   shown={"x1": "g*(x1 - x2 + eps)/out  (p = 2; g, out unsqueezed along the last dim)", "x2": "-g*(x1 - x2 + eps)/out"},
   doc="||x1 - x2 + eps||_p along the last dim",
   samples=(sample("pairwise_distance(a, b)", F.pairwise_distance, a=In(2, 3), b=In(2, 3)),
            sample("F.pairwise_distance(a, b, p=1.0, keepdim=True)",
                   lambda a, b: F.pairwise_distance(a, b, p=1.0, keepdim=True), a=In(2, 3), b=In(3)),
            sample("F.pairwise_distance(a, b, 3.0)", lambda a, b: F.pairwise_distance(a, b, 3.0), a=In(3, 2), b=In(3, 2)),
            sample("F.pairwise_distance(a, b)", F.pairwise_distance, a=In(4), b=In(4))))


def _cdist_rule(arg: str) -> Any:
    """d_ij = ||x1_i - x2_j||_p.  p = 2: with G = g/out (0 where out = 0, as torch),
    d/dx1 = x1*G.sum(-1) - G @ x2 and d/dx2 = x2*G.sum(-2) - G.T @ x1; other p: the slope of each
    difference, broadcast over (..., P, R, M) and summed."""

    def rule(c: RuleContext) -> str:
        p = c.params.get("p", 2.0)
        if p == 2:
            G = "where(out > 0, g/out, 0)"
            if arg == "x1":
                return f"x1*{G}.sum(-1, keepdim=True) - {G} @ x2"
            return f"x2*{G}.sum(-2).unsqueeze(-1) - {G}.transpose(-2, -1) @ x1"
        diff = "(x1.unsqueeze(-2) - x2.unsqueeze(-3))"
        slope = f"sign({diff})" if p == 1 else \
            f"sign({diff})*abs({diff})**{p - 1!r}*where(out > 0, g/out**{p - 1!r}, 0).unsqueeze(-1)"
        weighted = f"g.unsqueeze(-1)*{slope}" if p == 1 else slope
        return f"({weighted}).sum(-2)" if arg == "x1" else f"-({weighted}).sum(-3)"

    return rule


op("cdist", "x1, x2", "p=2.0", torch=lambda x1, x2, p=2.0: torch.cdist(as_tensor(x1), as_tensor(x2), p=p),
   positional_params=("p",), rules={"x1": _cdist_rule("x1"), "x2": _cdist_rule("x2")}, linear=NONLINEAR,
   shown={"x1": "x1*G.sum(-1, keepdim=True) - G @ x2, G = g/out (p = 2)",
          "x2": "x2*G.sum(-2).unsqueeze(-1) - G.T @ x1"},
   predict=lambda shapes, p: tuple(broadcast_shape(shapes[0][:-2], shapes[1][:-2])) + (shapes[0][-2], shapes[1][-2]),
   doc="p-norm distances between the rows of x1 (..., P, M) and x2 (..., R, M)",
   kinks=(Kink("a zero distance (equal rows): torch's cdist backward gives 0 there",
               {"a": "[[1.0, 2.0], [0.5, -1.0], [0.0, 0.0]]", "b": "[[1.0, 2.0], [0.0, 0.0], [2.0, 1.0], [0.5, -1.0]]"}),
          Kink("p = 1 at a tie of coordinates: sign(0) = 0",
               {"a": "[[1.0, 2.0, 0.5], [0.5, -1.0, 0.0]]", "b": "[[1.0, 0.0, 0.5], [0.5, -1.0, 2.0]]"}, sample=1)),
   samples=(sample("cdist(a, b)", torch.cdist, a=In(3, 2), b=In(4, 2)),
            sample("torch.cdist(a, b, p=1.0)", lambda a, b: torch.cdist(a, b, p=1.0), a=In(2, 3), b=In(2, 3)),
            sample("torch.cdist(a, b, 3.0)", lambda a, b: torch.cdist(a, b, 3.0), a=In(2, 2), b=In(3, 2)),
            sample("torch.cdist(a, b)", torch.cdist, a=In(2, 3, 2), b=In(2, 2, 2))))
