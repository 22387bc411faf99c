"""SymPy scalar functions for the elementwise ops, with PyTorch's conventions.

``sigmoid`` and ``relu`` are not SymPy built-ins; they are defined here with their
derivatives so ``sympy.diff`` produces ``sigmoid(a)*(1 - sigmoid(a))`` and
``heaviside(a, 0)`` (PyTorch's relu'(0) = 0, where SymPy's default Heaviside(0) is 1/2).
"""
from __future__ import annotations

import builtins
from fractions import Fraction

import sympy
from sympy import Abs, Function, Heaviside, Piecewise, cos, exp, log, sin, sqrt, tan, tanh

__all__ = ["sigmoid", "relu", "heaviside", "where", "exp", "log", "sqrt", "abs", "sin", "cos", "tan", "tanh",
           "sign", "gt", "ge", "lt", "le", "floor", "ceil", "trunc", "round", "sinc"]


class sigmoid(Function):  # noqa: N801 - named as in EXPR
    """1/(1 + exp(-x)); kept as a name so formulas read ``sigmoid(x)*(1 - sigmoid(x))``."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        s = sigmoid(self.args[0])
        return s * (1 - s)

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:
        if x.is_zero:
            return sympy.Rational(1, 2)
        return None

    def _eval_rewrite_as_exp(self, x: sympy.Expr, **kwargs: object) -> sympy.Expr:
        return 1 / (1 + exp(-x))

    def _eval_evalf(self, prec: int) -> sympy.Expr:
        return (1 / (1 + exp(-self.args[0])))._eval_evalf(prec)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


class relu(Function):  # noqa: N801
    """max(x, 0) with PyTorch's derivative convention relu'(0) = 0."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return Heaviside(self.args[0], 0)

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:
        if x.is_number and x.is_real:
            return sympy.Max(x, 0)
        return None

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


class sign(Function):  # noqa: N801
    """sign with derivative 0 everywhere, as PyTorch defines it (SymPy's is 2*DiracDelta)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.Integer(0)

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:
        if x.is_number and x.is_real:
            return sympy.sign(x)
        return None


def heaviside(x: sympy.Expr, values: sympy.Expr) -> sympy.Expr:
    return Heaviside(x, values)


def abs(x: sympy.Expr) -> sympy.Expr:  # noqa: A001 - EXPR name
    return Abs(x)


def where(cond: sympy.Expr, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    return Piecewise((a, cond), (b, True))


def gt(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    return sympy.StrictGreaterThan(a, b)


def ge(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    return sympy.GreaterThan(a, b)


def lt(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    return sympy.StrictLessThan(a, b)


def le(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    return sympy.LessThan(a, b)


class _Step(Function):
    """A piecewise-constant function (floor, ceil, round, trunc): PyTorch's derivative is 0 everywhere."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.Integer(0)

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:
        if x.is_number and x.is_real and x.is_finite:
            return cls.of_number(sympy.nsimplify(x) if x.is_Float else x)
        return None

    @staticmethod
    def of_number(x: sympy.Expr) -> sympy.Expr:
        raise NotImplementedError


class floor(_Step):  # noqa: N801
    of_number = staticmethod(lambda x: sympy.floor(x))


class ceil(_Step):  # noqa: N801
    of_number = staticmethod(lambda x: sympy.ceiling(x))


class trunc(_Step):  # noqa: N801
    of_number = staticmethod(lambda x: sympy.sign(x) * sympy.floor(Abs(x)))


class round(_Step):  # noqa: N801, A001 - EXPR name; half to even, as torch.round
    @staticmethod
    def of_number(x: sympy.Expr) -> sympy.Expr:
        r = sympy.Rational(x)
        return sympy.Integer(builtins.round(Fraction(int(r.p), int(r.q))))


class sinc(Function):  # noqa: N801
    """sin(pi x)/(pi x), 1 at 0 (torch.sinc, normalised); derivative 0 at 0 as PyTorch's."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        x = self.args[0]
        return Piecewise(((cos(sympy.pi * x) - sinc(x)) / x, sympy.StrictGreaterThan(x * x, 0)), (0, True))

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:
        if x.is_zero:
            return sympy.Integer(1)
        if x.is_number and x.is_real:
            return sin(sympy.pi * x) / (sympy.pi * x)
        return None

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real
