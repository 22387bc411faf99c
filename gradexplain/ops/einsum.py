"""``einsum`` (any equation without ``...`` or repeated indices within one operand), ``tensordot`` and
``bilinear``, with einsum rules.

The VJP of operand i of ``einsum("s_0,…,s_n->o", t_0, …, t_n)`` is ``einsum("o,s_j (j≠i)->s_i", g, t_j …)``:
the output's gradient contracted with every other operand.  An index of s_i found nowhere else is
summed only in t_i, so its gradient is constant along it: then ``ones_like(t_i)`` joins as an operand.
"""
from __future__ import annotations

import string
from typing import Any, Callable

import torch

from ..i18n import Msg
from .spec import NONLINEAR, In, RuleContext, as_tensor, op, sample


def parse_equation(equation: str, count: int) -> tuple[list[str], str]:
    """The operands' subscripts and the output's (implicit output: indices seen once, sorted)."""
    eq = equation.replace(" ", "")
    if "." in eq:
        raise NotImplementedError(Msg("symbolic einsum with '...'"))
    lhs, arrow, out = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != count:
        raise ValueError(Msg("einsum(): {count} operands for {n} subscripts", count=count, n=len(ins)))
    if not arrow:
        letters = "".join(ins)
        out = "".join(sorted(ch for ch in set(letters) if letters.count(ch) == 1))
    return ins, out


def einsum_rule(equation: str, i: int, names: list[str]) -> str:
    ins, out = parse_equation(equation, len(names))
    mine = ins[i]
    if len(set(mine)) != len(mine):
        raise NotImplementedError(Msg("symbolic einsum with a repeated index in one operand (a diagonal)"))
    subs, args = [out], ["g"]
    for j, (s, name) in enumerate(zip(ins, names)):
        if j != i:
            subs.append(s)
            args.append(name)
    if set(mine) - set("".join(subs)):
        subs.append(mine)
        args.append(f"ones_like({names[i]})")
    return f"einsum({','.join(subs) + '->' + mine!r}, {', '.join(args)})"


def _einsum_rule(i: int) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        return einsum_rule(c.params.get("equation", ""), i, [f"t{j}" for j in range(len(c.shapes))])

    return rule


def _einsum_torch(*ts: Any, equation: str = "") -> torch.Tensor:
    return torch.einsum(equation, *(as_tensor(t) for t in ts))


op("einsum", "", "equation=''", torch=_einsum_torch, variadic=True, variadic_rule=_einsum_rule, linear=NONLINEAR,
   shown={"t_i": "einsum('o,s_j…->s_i', g, t_j…)  (g contracted with the other operands)"},
   doc="Einstein summation: einsum('ij,jk->ik', a, b)",
   samples=(sample("einsum('ij,jk->ik', a, b)", lambda a, b: torch.einsum("ij,jk->ik", a, b), a=In(2, 3), b=In(3, 2)),
            sample("torch.einsum('bij,bj', a, v)", lambda a, v: torch.einsum("bij,bj", a, v), a=In(2, 2, 3), v=In(2, 3)),
            sample("einsum('i,j,k->ij', a, b, c)", lambda a, b, c: torch.einsum("i,j,k->ij", a, b, c),
                   a=In(2), b=In(3), c=In(2)),
            sample("einsum('ij->', a)", lambda a: torch.einsum("ij->", a), a=In(2, 3)),
            sample("einsum('ik,jk->ij', a, a)", lambda a: torch.einsum("ik,jk->ij", a, a), a=In(2, 3))))


def _tensordot_equation(c: RuleContext) -> str:
    dims = c.params.get("dims", 2)
    if not isinstance(dims, int):
        raise NotImplementedError(Msg("symbolic tensordot with explicit dim lists"))
    na, nb = c.ndim("a"), c.ndim("b")
    letters = string.ascii_lowercase
    sa = letters[:na]
    sb = sa[na - dims:] + letters[na:na + nb - dims]
    return f"{sa},{sb}->{sa[:na - dims] + sb[dims:]}"


op("tensordot", "a, b", "dims=2", torch=lambda a, b, dims=2: torch.tensordot(a, b, dims=dims),
   rules={"a": lambda c: einsum_rule(_tensordot_equation(c), 0, ["a", "b"]),
          "b": lambda c: einsum_rule(_tensordot_equation(c), 1, ["a", "b"])},
   shown={"a": "einsum of g with b over b's free dims", "b": "einsum of g with a over a's free dims"},
   linear=NONLINEAR, positional_params=("dims",), doc="contract a's last dims with b's first dims",
   samples=(sample("tensordot(a, b)", torch.tensordot, a=In(2, 3, 2), b=In(3, 2, 2)),
            sample("torch.tensordot(a, b, dims=1)", lambda a, b: torch.tensordot(a, b, dims=1), a=In(2, 3), b=In(3, 2))))


def _bilinear_rule(arg: str) -> Callable[[RuleContext], str]:
    """y[..., o] = x1[..., i] W[o, i, j] x2[..., j] + b[o]."""

    def rule(c: RuleContext) -> str:
        batch = "pqrstuvw"[:c.ndim("x1") - 1]
        eqs = {"x1": (f"{batch}o,oij,{batch}j->{batch}i", "g, W, x2"),
               "x2": (f"{batch}o,oij,{batch}i->{batch}j", "g, W, x1"),
               "W": (f"{batch}o,{batch}i,{batch}j->oij", "g, x1, x2")}
        if arg == "b":
            return "g"
        eq, args = eqs[arg]
        return f"einsum({eq!r}, {args})"

    return rule


op("bilinear", "x1, x2, W, b", optional_args=("b",), torch=lambda x1, x2, W, b=None: torch.nn.functional.bilinear(x1, x2, W, b),
   rules={a: _bilinear_rule(a) for a in ("x1", "x2", "W", "b")}, linear=NONLINEAR,
   shown={"x1": "einsum('no,oij,nj->ni', g, W, x2)", "x2": "einsum('no,oij,ni->nj', g, W, x1)",
          "W": "einsum('no,ni,nj->oij', g, x1, x2)", "b": "g  (summed over the batch)"},
   doc="x1ᵀ W x2 + b per output feature (a bilinear layer)",
   samples=(sample("F.bilinear(x1, x2, W, b)", torch.nn.functional.bilinear, x1=In(2, 3), x2=In(2, 2), W=In(4, 3, 2),
                   b=In(4)),))
