"""Elementwise ops (broadcasting): arithmetic, functions, comparisons, ``where``.

Each carries its SymPy scalar function (``sym``) beside its written-out rule; a test checks that
``sympy.diff`` of the one agrees with the other, and that ``linear`` names exactly the arguments
the function is linear in.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable

import torch

from ..ir import Call, Const, number_text
from .spec import REGISTRY, In, Kink, Linear, ValueSample, as_tensor, lazy_sym, op, sample, sympy_function, ufunc


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
# derivatives.yaml masks exponent == 0 (0**0 has gradient 0 in the base), and base == 0 with exponent >= 0 in
# the exponent's gradient; ``b*b > 0`` is b != 0 in the comparisons EXPR has.
def constant_value(node: Any) -> Any:
    """The number a subexpression of constants stands for (``3 - 1`` in a derivative's exponent), from
    the ops' own scalar functions; None when it depends on a tensor."""
    if isinstance(node, Const):
        return node.value
    if not isinstance(node, Call) or not node.args or not REGISTRY[node.op].elementwise:
        return None
    values = [constant_value(a) for a in node.args]
    if any(v is None for v in values):
        return None
    try:
        return REGISTRY[node.op].scalar(*values)
    except (TypeError, ValueError, ArithmeticError, AssertionError):
        return None


def _pow_rule(arg: str) -> Callable[[Any], str]:
    """A constant exponent (torch's pow.Tensor_Scalar) needs no mask unless it is 0; a tensor one does."""
    plain, masked = {"a": ("g*b*a**(b - 1)", "where(b*b > 0, g*b*a**(b - 1), 0)"),
                     "b": ("g*a**b*log(a)", "where(a*a > 0, g*a**b*log(a), where(b < 0, g*a**b*log(a), 0))")}[arg]

    def rule(c: Any) -> str:
        value = constant_value(c.nodes.get("b" if arg == "a" else "a"))
        if value is not None:
            return "zeros_like(g)" if value == 0 else plain
        return masked

    return rule


op("pow", "a, b", torch=operator.pow, rules={"a": _pow_rule("a"), "b": _pow_rule("b")},
   shown={"a": "g*b*a**(b - 1)  (0 where b == 0)", "b": "g*a**b*log(a)  (0 where a == 0 and b >= 0)"},
   elementwise=True, sym=operator.pow, infix="**", doc="a ** b elementwise; also a.pow(b)",
   kinks=(Kink("0**0 and a == 0 with b >= 0: gradient 0 in a where b == 0, 0 in b where a == 0",
               {"a": "[[0, 0, 1], [2, 0, 1]]", "b": "[0, 2, 0]"}),),
   samples=(sample("a ** b", lambda a, b: a ** b, a=In(2, 3, domain="pos"), b=In(3)),
            sample("a.pow(3)", lambda a: a.pow(3), a=In(4)),
            sample("2 ** a", lambda a: 2 ** a, a=In(3))))
op("neg", "a", torch=operator.neg, number_args="*", rules={"a": "-g"}, elementwise=True, sym=operator.neg, linear=Linear("a"), doc="-a",
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

op("where", "cond, a, b", torch=lambda c, a, b: torch.where(torch.tensor(c) if isinstance(c, bool) else c,
                                                          as_tensor(a), as_tensor(b)),
   rules={"a": "where(cond, g, 0)", "b": "where(cond, 0, g)"}, elementwise=True, sym="where", number_args="a, b",
   linear=Linear("a, b", joint=True), doc="a where cond holds, else b (cond is a comparison)",
   samples=(sample("where(a > b, a*a, b)", lambda a, b: torch.where(a > b, a * a, b), a=In(2, 3), b=In(3)),
            sample("where(a <= 0.5, sin(a), 2*a)", lambda a: torch.where(a <= 0.5, torch.sin(a), 2 * a),
                   a=In(4, domain="nz")),
            sample("where(b > 0, a, -3*a)", lambda a, b: torch.where(b > 0, a, -3 * a), const=("b",),
                   a=In(2, 3), b=In(3, domain="nz"))),
   value_samples=(ValueSample(("where(a >= 0, a, 0)", "a=[-1, 0, 2]", "--const", "a"), [0.0, 0.0, 2.0]),
                  ValueSample(("where(a < 1, 1, 2)", "a=[0, 5]", "--const", "a"), [1.0, 2.0])))


# ------------------------------------------------------------------- more functions (issue 13)


def _sp(name: str) -> Any:
    return sympy_function(name)


def _pw(*pieces: Any) -> Any:
    return sympy_function("sympy.Piecewise")(*pieces)


def _unary(name: str, fn: Callable[..., Any], rule: str, sym: Any, doc: str, domain: str = "any",
           **kw: Any) -> None:
    """One unary elementwise op with a written rule and one sample on ``domain`` (plus ``samples=``)."""
    extra = kw.pop("samples", ())
    op(name, "a", torch=unary(fn), rules={"a": rule}, elementwise=True, sym=sym, method=True, doc=doc,
       samples=(sample(f"{name}(a)", fn, a=In(2, 3, domain=domain)), *extra), **kw)


_unary("log2", torch.log2, "g/(a*log(2))", lambda a: _sp("log")(a) / _sp("log")(2), "base-2 logarithm", "pos")
_unary("log10", torch.log10, "g/(a*log(10))", lambda a: _sp("log")(a) / _sp("log")(10), "base-10 logarithm", "pos")
_unary("exp2", torch.exp2, "g*2**a*log(2)", lambda a: 2 ** a, "2**a")
_unary("rsqrt", torch.rsqrt, "-g/(2*a*sqrt(a))", lambda a: 1 / _sp("sqrt")(a), "1/sqrt(a)", "pos")
_unary("reciprocal", torch.reciprocal, "-g/a**2", lambda a: 1 / a, "1/a", "nz")
_unary("square", torch.square, "2*g*a", lambda a: a ** 2, "a**2 (PowBackward0, as torch)",
       samples=(sample("a.square() * b", lambda a, b: a.square() * b, a=In(3), b=In(2, 3)),))
_unary("erf", torch.erf, "1.1283791670955126*g*exp(-a**2)", "sympy.erf", "error function (2/sqrt(pi) exp(-a**2))")
_unary("erfc", torch.erfc, "-1.1283791670955126*g*exp(-a**2)", "sympy.erfc", "1 - erf(a)")
_unary("erfinv", torch.erfinv, "0.886226925452758*g*exp(erfinv(a)**2)", "sympy.erfinv",
       "inverse error function (sqrt(pi)/2 exp(erfinv(a)**2))", "prob")
_unary("asin", torch.asin, "g/sqrt(1 - a**2)", "sympy.asin", "arcsine", "prob")
_unary("acos", torch.acos, "-g/sqrt(1 - a**2)", "sympy.acos", "arccosine", "prob")
_unary("atan", torch.atan, "g/(a**2 + 1)", "sympy.atan", "arctangent")
_unary("acosh", torch.acosh, "g/sqrt(a**2 - 1)", "sympy.acosh", "inverse hyperbolic cosine (a >= 1)", "gt1")
_unary("atanh", torch.atanh, "g/(1 - a**2)", "sympy.atanh", "inverse hyperbolic tangent", "prob")
_unary("sinc", torch.sinc, "g*where(a*a > 0, (cos(3.141592653589793*a) - sinc(a))/a, 0)", "sinc",
       "sin(pi a)/(pi a), 1 at 0 (gradient 0 at 0, as torch)",
       kinks=(Kink("a = 0: value 1, gradient 0", {"a": "[[0, 0.5, 1], [-1, 0, 2]]"}),))
_unary("silu", torch.nn.functional.silu, "g*sigmoid(a)*(1 + a*(1 - sigmoid(a)))", lambda a: a * _sp("sigmoid")(a),
       "a*sigmoid(a) (swish)")
_unary("mish", torch.nn.functional.mish, "g*(tanh(log(1 + exp(a))) + a*sigmoid(a)*(1 - tanh(log(1 + exp(a)))**2))",
       lambda a: a * _sp("tanh")(_sp("log")(1 + _sp("exp")(a))), "a*tanh(softplus(a))")
_unary("softsign", torch.nn.functional.softsign, "g/(1 + abs(a))**2", lambda a: a / (1 + _sp("abs")(a)),
       "a/(1 + |a|) (a composite in torch: DivBackward0)",
       kinks=(Kink("a = 0: gradient 1 (smooth there)", {"a": "[[0, 1, -1], [0, 2, 0]]"}),))
_unary("logsigmoid", torch.nn.functional.logsigmoid, "g*(1 - sigmoid(a))", lambda a: _sp("log")(_sp("sigmoid")(a)),
       "log(sigmoid(a)), computed stably")
_unary("tanhshrink", torch.nn.functional.tanhshrink, "g*tanh(a)**2", lambda a: a - _sp("tanh")(a),
       "a - tanh(a) (SubBackward0, as torch)")
# torch's backward kernel multiplies by 1/6 rounded to float32 (0.1666666716337204), even in float64
_SIXTH = 0.1666666716337204
_unary("hardsigmoid", torch.nn.functional.hardsigmoid, f"where(a <= -3, 0, where(a >= 3, 0, {_SIXTH}*g))",
       lambda a: _pw((0, a <= -3), (1, a >= 3), (_SIXTH * a + 0.5, True)),
       "relu6(a + 3)/6 (gradient 0 at -3 and 3; torch's backward uses float32(1/6))", "any",
       kinks=(Kink("a = -3 or 3: gradient 0", {"a": "[[-3, 3, 0], [-4, 1, 4]]"}),))
_unary("hardswish", torch.nn.functional.hardswish, "where(a <= -3, 0, where(a >= 3, g, g*(a/3 + 1/2)))",
       lambda a: sympy_function("sympy.Piecewise")((0, a <= -3), (a, a >= 3), (a * (a + 3) / 6, True)),
       "a*relu6(a + 3)/6 (gradient 0 at -3, 1 at 3, as torch)",
       kinks=(Kink("a = -3: gradient 0; a = 3: gradient 1", {"a": "[[-3, 3, 0], [-4, 1, 4]]"}),))


def _frac_sym(a: Any) -> Any:
    return a - _sp("trunc")(a)


for _name, _fn in (("floor", torch.floor), ("ceil", torch.ceil), ("trunc", torch.trunc), ("round", torch.round)):
    op(_name, "a", torch=unary(_fn), elementwise=True, sym=_name, method=True, shown={"a": "0"},
       doc=f"{_name} (gradient 0, as torch{'; halves to even' if _name == 'round' else ''})",
       samples=(sample(f"{_name}(a) * a", lambda a, f=_fn: f(a) * a, a=In(2, 3, domain="nz")),),
       value_samples=(ValueSample((f"{_name}(a)", "a=[-2.5, -0.5, 0.5, 1.5]", "--const", "a"),
                                  lambda f=_fn: f(torch.tensor([-2.5, -0.5, 0.5, 1.5], dtype=torch.float64)).tolist()),))
op("frac", "a", torch=unary(torch.frac), rules={"a": "g"}, elementwise=True, sym=_frac_sym, method=True,
   doc="a - trunc(a) (gradient 1, as torch)", samples=(sample("frac(a)", torch.frac, a=In(2, 3, domain="nz")),))
op("sgn", "a", torch=unary(torch.sgn), elementwise=True, sym="sign", method=True, shown={"a": "0"},
   doc="sign of a real tensor (gradient 0)",
   samples=(sample("sgn(a) * a", lambda a: torch.sgn(a) * a, a=In(2, 3, domain="nz")),),
   value_samples=(ValueSample(("sgn(a)", "a=[-2, 0, 3]", "--const", "a"), [-1.0, 0.0, 1.0]),))

# ------------------------------------------------------------------ activations with params


def _num(v: Any) -> str:
    return number_text(v)


def _activation(name: str, params: str, fn: Callable[..., Any], rule: Callable[..., str], shown: str,
                sym: Callable[..., Any], doc: str, kinks: tuple[Kink, ...] = (), extra: tuple[Any, ...] = ()) -> None:
    """A unary activation with static params (``negative_slope``): rule and SymPy function take them."""
    defaults = {p.split("=")[0].strip(): float(p.split("=")[1]) for p in params.split(",") if p.strip()}

    def full(c: Any) -> dict[str, Any]:
        return {**defaults, **c.params}

    op(name, "a", params, torch=lambda a, **p: fn(as_tensor(a), **p), rules={"a": lambda c: rule(**full(c))},
       shown={"a": shown}, elementwise=True, sym=lambda a, **p: sym(a, **{**defaults, **p}), doc=doc, kinks=kinks,
       samples=(sample(f"F.{name}(a)", fn, a=In(2, 3, domain="nz")), *extra))


F = torch.nn.functional
_activation("leaky_relu", "negative_slope=0.01", F.leaky_relu,
            lambda negative_slope: f"where(a > 0, g, {_num(negative_slope)}*g)", "where(a > 0, g, negative_slope*g)",
            lambda a, negative_slope: _pw((a, a > 0), (negative_slope * a, True)),
            "a where a > 0, else negative_slope*a (slope negative_slope at 0, as torch)",
            (Kink("a = 0: slope negative_slope", {"a": "[[0, 1, -1], [0, 2, 0]]"}),),
            (sample("F.leaky_relu(a, 0.2)", lambda a: F.leaky_relu(a, 0.2), a=In(3, domain="nz")),))
_activation("elu", "alpha=1.0", F.elu, lambda alpha: f"where(a > 0, g, {_num(alpha)}*g*exp(a))",
            "where(a > 0, g, alpha*g*exp(a))", lambda a, alpha: _pw((a, a > 0), (alpha * (_sp("exp")(a) - 1), True)),
            "a where a > 0, else alpha*(exp(a) - 1) (slope alpha at 0, as torch)",
            (Kink("a = 0: slope alpha", {"a": "[0, 1, -1]"}, sample=1),),
            (sample("F.elu(a, alpha=2.0)", lambda a: F.elu(a, alpha=2.0), a=In(3, domain="nz")),))
_SELU_A, _SELU_S = 1.6732632423543772, 1.0507009873554805
op("selu", "a", torch=unary(F.selu), rules={"a": f"where(a > 0, {_SELU_S}*g, {_SELU_S * _SELU_A}*g*exp(a))"},
   elementwise=True, sym=lambda a: _SELU_S * _pw((a, a > 0), (_SELU_A * (_sp("exp")(a) - 1), True)),
   doc="scale*elu(a, alpha) with SELU's constants (EluBackward0, as torch)",
   kinks=(Kink("a = 0: slope scale*alpha", {"a": "[[0, 1, -1], [0, 2, 0]]"}),),
   samples=(sample("F.selu(a)", F.selu, a=In(2, 3, domain="nz")),))
_activation("celu", "alpha=1.0", F.celu, lambda alpha: f"where(a > 0, g, g*exp(a/{_num(alpha)}))",
            "where(a > 0, g, g*exp(a/alpha))",
            lambda a, alpha: _pw((a, a > 0), (alpha * (_sp("exp")(a / alpha) - 1), True)),
            "a where a > 0, else alpha*(exp(a/alpha) - 1)", (),
            (sample("F.celu(a, alpha=2.0)", lambda a: F.celu(a, alpha=2.0), a=In(3, domain="nz")),))
_activation("softplus", "beta=1.0, threshold=20.0", F.softplus,
            lambda beta, threshold: f"where(a*{_num(beta)} > {_num(threshold)}, g, g*sigmoid({_num(beta)}*a))",
            "where(beta*a > threshold, g, g*sigmoid(beta*a))",
            lambda a, beta, threshold: _pw((a, beta * a > threshold), (_sp("log")(1 + _sp("exp")(beta * a)) / beta, True)),
            "log(1 + exp(beta*a))/beta, linear where beta*a > threshold", (),
            (sample("F.softplus(a, beta=2, threshold=1)", lambda a: F.softplus(a, beta=2, threshold=1), a=In(2, 3)),))
_activation("hardtanh", "min_val=-1.0, max_val=1.0", F.hardtanh,
            lambda min_val, max_val: f"where(a <= {_num(min_val)}, 0, where(a >= {_num(max_val)}, 0, g))",
            "where(a <= min_val, 0, where(a >= max_val, 0, g))",
            lambda a, min_val, max_val: _pw((min_val, a <= min_val), (max_val, a >= max_val), (a, True)),
            "a clipped to [min_val, max_val] (gradient 0 at the bounds, as torch)",
            (Kink("a at a bound: gradient 0", {"a": "[[-1, 1, 0], [-2, 0.5, 2]]"}),),
            (sample("F.hardtanh(a, -0.5, 0.5)", lambda a: F.hardtanh(a, -0.5, 0.5), a=In(2, 3)),))
op("relu6", "a", torch=unary(F.relu6), rules={"a": "where(a <= 0, 0, where(a >= 6, 0, g))"}, elementwise=True,
   sym=lambda a: _pw((0, a <= 0), (6, a >= 6), (a, True)), doc="hardtanh(a, 0, 6) (gradient 0 at 0 and 6, as torch)",
   kinks=(Kink("a = 0 or 6: gradient 0", {"a": "[[0, 6, 3], [-1, 7, 0]]"}),),
   samples=(sample("F.relu6(4*a)", lambda a: F.relu6(4 * a), a=In(2, 3, domain="nz")),))


def _gelu_rule(c: Any) -> str:
    if c.params.get("approximate", "none") == "tanh":
        inner = "0.7978845608028654*(a + 0.044715*a**3)"
        return (f"g*((1 + tanh({inner}))/2 + a*(1 - tanh({inner})**2)*0.7978845608028654*(1 + 0.134145*a**2)/2)")
    return "g*((1 + erf(0.7071067811865476*a))/2 + 0.3989422804014327*a*exp(-a**2/2))"


def _gelu_sym(a: Any, approximate: str = "none") -> Any:
    if approximate == "tanh":
        return a / 2 * (1 + _sp("tanh")(0.7978845608028654 * (a + 0.044715 * a ** 3)))
    return a / 2 * (1 + _sp("sympy.erf")(a / _sp("sqrt")(2)))


op("gelu", "a", "approximate='none'", torch=lambda a, approximate="none": F.gelu(as_tensor(a), approximate=approximate),
   rules={"a": _gelu_rule}, shown={"a": "g*(Phi(a) + a*phi(a))  (approximate='tanh': its derivative)"},
   elementwise=True, sym=_gelu_sym, string_values=("none", "tanh"), doc="a*Phi(a); approximate='tanh' as torch",
   samples=(sample("F.gelu(a)", F.gelu, a=In(2, 3)),
            sample("F.gelu(a, approximate='tanh')", lambda a: F.gelu(a, approximate="tanh"), a=In(2, 3))))

# ---------------------------------------------------------------------------- two arguments

op("atan2", "a, b", torch=lambda a, b: torch.atan2(as_tensor(a), as_tensor(b)), method=True, elementwise=True,
   rules={"a": "g*b/(a**2 + b**2)", "b": "-g*a/(a**2 + b**2)"}, sym="sympy.atan2", doc="angle of (b, a)",
   samples=(sample("atan2(a, b)", torch.atan2, a=In(2, 3), b=In(3, domain="nz")),))
op("copysign", "a, b", torch=lambda a, b: torch.copysign(as_tensor(a), b), method=True, number_args="b", elementwise=True,
   rules={"a": "g*sign(a)*(2*heaviside(b, 1) - 1)"},
   sym=lambda a, b: _sp("abs")(a) * (2 * _sp("heaviside")(b, 1) - 1),
   doc="|a| with b's sign (gradient 0 in b, and in a where a == 0, as torch)",
   kinks=(Kink("a = 0: gradient 0; b = 0 counts as positive", {"a": "[[0, 0, -2], [1, 2, 0]]", "b": "[0, 2, 0]"}),),
   samples=(sample("copysign(a, b)", torch.copysign, a=In(2, 3, domain="nz"), b=In(3, domain="nz")),))
op("logaddexp", "a, b", torch=lambda a, b: torch.logaddexp(as_tensor(a), as_tensor(b)), method=True, elementwise=True,
   rules={"a": "g/(1 + exp(b - a))", "b": "g/(1 + exp(a - b))"},
   sym=lambda a, b: _sp("log")(_sp("exp")(a) + _sp("exp")(b)), doc="log(exp(a) + exp(b)), computed stably",
   samples=(sample("logaddexp(a, b)", torch.logaddexp, a=In(2, 3), b=In(3)),))
op("logaddexp2", "a, b", torch=lambda a, b: torch.logaddexp2(as_tensor(a), as_tensor(b)), method=True,
   elementwise=True, rules={"a": "g/(1 + 2**(b - a))", "b": "g/(1 + 2**(a - b))"},
   sym=lambda a, b: _sp("log")(2 ** a + 2 ** b) / _sp("log")(2), doc="log2(2**a + 2**b)",
   samples=(sample("logaddexp2(a, b)", torch.logaddexp2, a=In(2, 3), b=In(2, 3)),))
op("hypot", "a, b", torch=lambda a, b: torch.hypot(as_tensor(a), as_tensor(b)), method=True, elementwise=True,
   rules={"a": "g*a/sqrt(a**2 + b**2)", "b": "g*b/sqrt(a**2 + b**2)"},
   sym=lambda a, b: _sp("sqrt")(a ** 2 + b ** 2), doc="sqrt(a**2 + b**2)",
   samples=(sample("hypot(a, b)", torch.hypot, a=In(2, 3, domain="nz"), b=In(3, domain="nz")),))
op("xlogy", "a, b", torch=lambda a, b: torch.xlogy(as_tensor(a), as_tensor(b)), method=True, number_args="*", elementwise=True,
   rules={"a": "where(a*a > 0, g*log(b), where(b > 0, g*log(b), 0))", "b": "g*a/b"},
   sym=lambda a, b: a * _sp("log")(b), linear=Linear("a"), doc="a*log(b), 0 where a == 0 (gradient 0 in a there when b <= 0, as torch)",
   kinks=(Kink("a = 0, b <= 0: gradient 0 in a", {"a": "[[0, 0, 2], [1, 0, 1]]", "b": "[0.5, 1, 2]"}),),
   samples=(sample("xlogy(a, b)", torch.xlogy, a=In(2, 3), b=In(3, domain="pos")),))
op("fmod", "a, b", torch=lambda a, b: torch.fmod(as_tensor(a), b), method=True, number_args="b", elementwise=True,
   rules={"a": "g", "b": "-g*trunc(a/b)"}, sym=lambda a, b: a - b * _sp("trunc")(a / b),
   doc="a - b*trunc(a/b) (C's fmod; FmodBackward0 for a number b)",
   samples=(sample("fmod(a, 0.7)", lambda a: torch.fmod(a, 0.7), a=In(2, 3, domain="nz")),
            sample("fmod(a, b)", torch.fmod, a=In(2, 3), b=In(3, domain="pos"))))
op("remainder", "a, b", torch=lambda a, b: torch.remainder(as_tensor(a), b), method=True, number_args="*", elementwise=True,
   rules={"a": "g", "b": "-g*floor(a/b)"}, sym=lambda a, b: a - b * _sp("floor")(a / b),
   doc="a - b*floor(a/b) (Python's %)",
   samples=(sample("remainder(a, 0.7)", lambda a: torch.remainder(a, 0.7), a=In(2, 3, domain="nz")),
            sample("remainder(a, b)", torch.remainder, a=In(2, 3), b=In(3, domain="pos"))))
op("lerp", "a, b, weight", torch=lambda a, b, weight: torch.lerp(as_tensor(a), as_tensor(b), weight), method=True,
   number_args="weight",
   elementwise=True, rules={"a": "g*(1 - weight)", "b": "g*weight", "weight": "g*(b - a)"},
   sym=lambda a, b, w: a + w * (b - a), linear=Linear("a, b", joint=True), doc="a + weight*(b - a)",
   samples=(sample("lerp(a, b, 0.3)", lambda a, b: torch.lerp(a, b, 0.3), a=In(2, 3), b=In(3)),
            sample("torch.lerp(a, b, w)", torch.lerp, a=In(2, 3), b=In(2, 3), w=In(3, domain="prob")),
            sample("a.lerp(2*a, 0.25)", lambda a: a.lerp(2 * a, 0.25), a=In(2, 3))))

for _name, _fn, _cmp in (("maximum", torch.maximum, ""), ("minimum", torch.minimum, "-")):
    op(_name, "a, b", torch=lambda a, b, f=_fn: f(as_tensor(a), as_tensor(b)), method=True, elementwise=True,
       rules={"a": f"g*heaviside({_cmp}(a - b), 1/2)", "b": f"g*heaviside({_cmp}(b - a), 1/2)"},
       sym="sympy.Max" if _name == "maximum" else "sympy.Min",
       doc=f"elementwise {_name[:3]}(a, b) (a tie gives each half of g, as torch)",
       kinks=(Kink("a == b: each gets half of g", {"a": "[[1, 2, 3], [0, 5, -1]]", "b": "[1, 0, 3]"}),),
       samples=(sample(f"{_name}(a, b)", _fn, a=In(2, 3), b=In(3)),))
for _name, _fn, _ge in (("fmax", torch.fmax, ">="), ("fmin", torch.fmin, "<=")):
    op(_name, "a, b", torch=lambda a, b, f=_fn: f(as_tensor(a), as_tensor(b)), method=True, elementwise=True,
       rules={"a": f"where(a {_ge} b, g, 0)", "b": f"where(a {_ge} b, 0, g)"},
       sym=lambda a, b, ge=_ge: _pw((a, a >= b if ge == ">=" else a <= b), (b, True)),
       doc=f"{_name[1:]}imum ignoring NaN; a tie gives g to a (as torch; a NaN's gradient is not modelled)",
       kinks=(Kink("a == b: g to a", {"a": "[[1, 2, 3], [0, 5, -1]]", "b": "[1, 0, 3]"}),),
       samples=(sample(f"{_name}(a, b)", _fn, a=In(2, 3), b=In(3)),))


def _clamp_torch(a: Any, min: Any = None, max: Any = None) -> torch.Tensor:  # noqa: A002 - torch's names
    """torch.clamp with numbers (ClampBackward1) or tensors (ClampBackward0); ±inf stands for a missing bound."""
    bounds = [None if isinstance(v, (int, float)) and math.isinf(v) else v for v in (min, max)]
    if any(isinstance(v, torch.Tensor) for v in bounds):
        bounds = [as_tensor(v) if isinstance(v, (int, float)) else v for v in bounds]
    return torch.clamp(as_tensor(a), *bounds)


def _clamp_rule(c: Any, arg: str) -> str:
    """Torch's clamp gradients; a bound left out (the ±inf the parser fills in) drops out of the text."""
    def given(name: str) -> bool:
        node = c.nodes.get(name)
        return not (isinstance(node, Const) and isinstance(node.value, float) and math.isinf(node.value))

    lo, hi = given("min"), given("max")
    if arg == "a":
        inner = "where(a > max, 0, g)" if hi else "g"
        return f"where(a < min, 0, {inner})" if lo else inner
    if arg == "min":
        return "where(a < min, where(min > max, 0, g), 0)" if hi else "where(a < min, g, 0)"
    return "where(a > max, g, where(min > max, g, 0))" if lo else "where(a > max, g, 0)"


op("clamp", "a, min, max", torch=_clamp_torch, method=True, elementwise=True, optional_args=("min", "max"),
   number_args="min, max",
   fill_missing={"min": -math.inf, "max": math.inf},
   rules={"a": lambda c: _clamp_rule(c, "a"), "min": lambda c: _clamp_rule(c, "min"),
          "max": lambda c: _clamp_rule(c, "max")},
   shown={"a": "where(a < min, 0, where(a > max, 0, g))", "min": "where(a < min, where(min > max, 0, g), 0)",
          "max": "where(a > max, g, where(min > max, g, 0))"},
   sym=lambda a, lo, hi: _pw((hi, a > hi), (hi, lo > hi), (lo, a < lo), (a, True)),
   doc="a clipped to [min, max] (numbers or tensors; gradient passes where min <= a <= max, as torch); also clip",
   kinks=(Kink("a at a bound: the gradient passes to a", {"a": "[[0, 1, 0.5], [-1, 2, 1]]"}),
          Kink("tensor bounds, a at a bound and min > max", {"a": "[[0, 1, 2], [-1, 0.5, 3]]", "lo": "[0, 0.5, 2]",
                                                             "hi": "[1, 1, 0]"}, sample=2)),
   samples=(sample("clamp(a, 0, 1)", lambda a: torch.clamp(a, 0, 1), a=In(2, 3)),
            sample("a.clamp(min=0) + torch.clip(a, max=0.5)", lambda a: a.clamp(min=0) + torch.clip(a, max=0.5),
                   a=In(2, 3)),
            sample("torch.clamp(a, lo, hi)", torch.clamp, a=In(2, 3), lo=In(3), hi=In(3)),
            sample("a.clamp(max=b)", lambda a, b: a.clamp(max=b), a=In(2, 3), b=In(3))))
