"""Elementwise ops (broadcasting): arithmetic, functions, comparisons, ``where``.

Each carries its SymPy scalar function (``sym``) beside its written-out rule; a test checks that
``sympy.diff`` of the one agrees with the other, and that ``linear`` names exactly the arguments
the function is linear in.
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import torch

from .spec import In, Kink, Linear, ValueSample, as_tensor, lazy_sym, op, sample, sympy_function, ufunc


def unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[Any], torch.Tensor]:
    """``fn`` on a tensor or a Python number (``log(2)`` in a formula)."""
    return lambda a: fn(as_tensor(a))


# ------------------------------------------------------------------------------ arithmetic

op("add", "a, b", torch=operator.add, rules={"a": "g", "b": "g"}, elementwise=True, sym=operator.add, infix="+",
   linear=Linear("a, b", joint=True), doc="a + b (broadcasting)",
   samples=(sample("add(a, b)", lambda a, b: a + b, a=In(2, 3), b=In(2, 1)),
            sample("a + b", lambda a, b: a + b, a=In(3), b=In(2, 3)),
            sample("a + 2*a.T", lambda a: a + 2 * a.T, a=In(2, 2))))
op("sub", "a, b", torch=operator.sub, rules={"a": "g", "b": "-g"}, elementwise=True, sym=operator.sub, infix="-",
   linear=Linear("a, b", joint=True), doc="a - b (broadcasting)",
   samples=(sample("a - b", lambda a, b: a - b, a=In(2, 3), b=In(3)),
            sample("a - 0.5*a.sum(0)", lambda a: a - 0.5 * a.sum(0), a=In(2, 3))))
op("mul", "a, b", torch=operator.mul, rules={"a": "g*b", "b": "g*a"}, elementwise=True, sym=operator.mul, infix="*",
   linear=Linear("a, b"), doc="a * b elementwise (broadcasting)",
   samples=(sample("mul(a, b)", lambda a, b: a * b, a=In(3), b=In(2, 3)),))
op("div", "a, b", torch=operator.truediv, rules={"a": "g/b", "b": "-g*a/b**2"}, elementwise=True,
   sym=operator.truediv, infix="/", linear=Linear("a"), doc="a / b elementwise (broadcasting)",
   samples=(sample("a / b", lambda a, b: a / b, a=In(2, 3), b=In(3, domain="nz")),))
op("pow", "a, b", torch=operator.pow, rules={"a": "g*b*a**(b - 1)", "b": "g*a**b*log(a)"}, elementwise=True,
   sym=operator.pow, infix="**", doc="a ** b elementwise; also a.pow(b)",
   samples=(sample("a ** b", lambda a, b: a ** b, a=In(2, 3, domain="pos"), b=In(3)),
            sample("a.pow(3)", lambda a: a.pow(3), a=In(4)),
            sample("2 ** a", lambda a: 2 ** a, a=In(3))))
op("neg", "a", torch=operator.neg, rules={"a": "-g"}, elementwise=True, sym=operator.neg, linear=Linear("a"), doc="-a",
   samples=(sample("-a", lambda a: -a, a=In(2, 3)), sample("neg(a) * b", lambda a, b: -a * b, a=In(3), b=In(3))))

# ------------------------------------------------------------------------------- functions

op("exp", "a", torch=unary(torch.exp), rules={"a": "g*exp(a)"}, elementwise=True, sym="exp", doc="e**a",
   samples=(sample("exp(a)", torch.exp, a=In(2, 3)),))
op("expm1", "a", torch=unary(torch.expm1), rules={"a": "g*exp(a)"}, elementwise=True,
   sym=lambda a: sympy_function("exp")(a) - 1, doc="exp(a) - 1, accurate for small a (SymPy sees exp(a) - 1)",
   samples=(sample("expm1(a)", torch.expm1, a=In(2, 3)),))
op("log", "a", torch=unary(torch.log), rules={"a": "g/a"}, elementwise=True, sym="log", doc="natural logarithm",
   samples=(sample("log(a)", torch.log, a=In(2, 3, domain="pos")),))
op("log1p", "a", torch=unary(torch.log1p), rules={"a": "g/(a + 1)"}, elementwise=True,
   sym=lambda a: sympy_function("log")(1 + a), doc="log(1 + a), accurate for small a (SymPy sees log(a + 1))",
   samples=(sample("log1p(a)", torch.log1p, a=In(2, 3, domain="pos")),
            sample("log1p(a) * b", lambda a, b: torch.log1p(a) * b, a=In(3, domain="prob"), b=In(2, 3))))
op("sqrt", "a", torch=unary(torch.sqrt), rules={"a": "g/(2*sqrt(a))"}, elementwise=True, sym="sqrt",
   doc="square root", samples=(sample("sqrt(a)", torch.sqrt, a=In(2, 3, domain="pos")),))
op("abs", "a", torch=unary(torch.abs), rules={"a": "g*sign(a)"}, elementwise=True, sym="abs",
   doc="|a| (PyTorch: gradient 0 at 0)", kinks=(Kink("a = 0: gradient 0 (sign(0) = 0)", {"a": "[0, 1, -1]"}),),
   samples=(sample("abs(a)", torch.abs, a=In(2, 3, domain="nz")),))
op("sin", "a", torch=unary(torch.sin), rules={"a": "g*cos(a)"}, elementwise=True, sym="sin", doc="sine",
   samples=(sample("sin(a)", torch.sin, a=In(2, 3)),))
op("cos", "a", torch=unary(torch.cos), rules={"a": "-g*sin(a)"}, elementwise=True, sym="cos", doc="cosine",
   samples=(sample("cos(a)", torch.cos, a=In(2, 3)),))
op("tan", "a", torch=unary(torch.tan), rules={"a": "g*(tan(a)**2 + 1)"}, elementwise=True, sym="tan", doc="tangent",
   samples=(sample("tan(a)", torch.tan, a=In(2, 3, domain="small")),))
op("tanh", "a", torch=unary(torch.tanh), rules={"a": "g*(1 - tanh(a)**2)"}, elementwise=True, sym="tanh",
   doc="hyperbolic tangent", samples=(sample("tanh(a)", torch.tanh, a=In(2, 3)),))
op("sinh", "a", torch=unary(torch.sinh), rules={"a": "g*cosh(a)"}, elementwise=True, sym="sympy.sinh",
   doc="hyperbolic sine", samples=(sample("sinh(a)", torch.sinh, a=In(2, 3)),
                                   sample("sinh(a) * b", lambda a, b: torch.sinh(a) * b, a=In(3), b=In(2, 3))))
op("cosh", "a", torch=unary(torch.cosh), rules={"a": "g*sinh(a)"}, elementwise=True, sym="sympy.cosh",
   doc="hyperbolic cosine", samples=(sample("cosh(a)", torch.cosh, a=In(2, 3)),))
op("asinh", "a", torch=unary(torch.asinh), rules={"a": "g/sqrt(a**2 + 1)"}, elementwise=True, sym="sympy.asinh",
   doc="inverse hyperbolic sine", samples=(sample("asinh(a)", torch.asinh, a=In(2, 3)),))
op("sigmoid", "a", torch=unary(torch.sigmoid), rules={"a": "g*(1 - sigmoid(a))*sigmoid(a)"}, elementwise=True,
   sym="sigmoid", doc="1/(1 + exp(-a))", samples=(sample("sigmoid(a)", torch.sigmoid, a=In(2, 3)),))
op("relu", "a", torch=unary(torch.relu), rules={"a": "g*heaviside(a, 0)"}, elementwise=True, sym="relu",
   doc="max(a, 0) (PyTorch: gradient 0 at 0)", kinks=(Kink("a = 0: gradient 0", {"a": "[0, 1, -1]"}),),
   samples=(sample("relu(a)", torch.relu, a=In(2, 3, domain="nz")),))
op("sign", "a", torch=unary(torch.sign), elementwise=True, sym="sign", sym_also=("sympy.sign",),
   shown={"a": "0"}, doc="-1, 0 or 1 (gradient 0)",
   samples=(sample("sign(a) * a", lambda a: torch.sign(a) * a, a=In(2, 3, domain="nz")),),
   value_samples=(ValueSample(("sign(a)", "a=[-2.5, 0, 3]", "--const", "a"), [-1.0, 0.0, 1.0]),))


def _heaviside_torch(a: Any, values: Any) -> torch.Tensor:
    """torch.heaviside has no backward, yet gradient formulas (``relu(x).sum()`` → ``heaviside(x, 0)``) must
    read back through eval: the same step built from ``where``, slope 0 in ``a`` and 1 in ``values`` at a == 0."""
    a, values = as_tensor(a), as_tensor(values)
    return torch.where(a == 0, values, torch.sign(a).clamp(min=0))  # sign keeps a's graph (slope 0), as sign(x) does


op("heaviside", "a, values", torch=_heaviside_torch, elementwise=True, sym="heaviside",
   rules={"values": "where(a >= 0, where(a <= 0, g, 0), 0)"},
   doc="step function: 0 below 0, `values` at 0, 1 above (gradient 0 in a)",
   samples=(sample("heaviside(a, 0.5) * b", lambda a, b: torch.heaviside(a, torch.tensor(0.5)) * b,
                   const=("a",), a=In(2, 3, domain="nz"), b=In(2, 3)),),
   value_samples=(ValueSample(("heaviside(a, 0.5)", "a=[-1, 0, 2]", "--const", "a"), [0.0, 0.5, 1.0]),))

# ----------------------------------------------------------------------- comparisons, where


def _compare(name: str, fn: Callable[[Any, Any], Any], text: str) -> None:
    op(name, "a, b", torch=fn, sym=name, obj=ufunc(lazy_sym(name), 2), user=False, infix=text,
       doc=f"a {text} b (only as the condition of where)")


_compare("gt", operator.gt, ">")
_compare("ge", operator.ge, ">=")
_compare("lt", operator.lt, "<")
_compare("le", operator.le, "<=")

op("where", "cond, a, b", torch=lambda c, a, b: torch.where(c, as_tensor(a), as_tensor(b)),
   rules={"a": "where(cond, g, 0)", "b": "where(cond, 0, g)"}, elementwise=True, sym="where",
   linear=Linear("a, b", joint=True), doc="a where cond holds, else b (cond is a comparison)",
   samples=(sample("where(a > b, a*a, b)", lambda a, b: torch.where(a > b, a * a, b), a=In(2, 3), b=In(3)),
            sample("where(a <= 0.5, sin(a), 2*a)", lambda a: torch.where(a <= 0.5, torch.sin(a), 2 * a),
                   a=In(4, domain="nz")),
            sample("where(b > 0, a, -3*a)", lambda a, b: torch.where(b > 0, a, -3 * a), const=("b",),
                   a=In(2, 3), b=In(3, domain="nz"))),
   value_samples=(ValueSample(("where(a >= 0, a, 0)", "a=[-1, 0, 2]", "--const", "a"), [0.0, 0.0, 2.0]),
                  ValueSample(("where(a < 1, 1, 2)", "a=[0, 5]", "--const", "a"), [1.0, 2.0])))
