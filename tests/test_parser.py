"""The parser and the printer: random well-formed EXPRs round-trip; malformed ones fail with a caret.

Expressions come from a small grammar whose generator also builds the same computation in
plain torch (reused by ``test_symbolic``), so the parsed program is checked against an independent value, and the
printed text (``ir.to_text``, with its minimal parentheses) against the original.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gradexplain.errors import GradexplainError, ParseError
from gradexplain.execute import evaluate
from gradexplain.printer import to_text
from gradexplain.parse import parse_expression, parse_program

from conftest import run_cli

INPUTS = {"x": torch.tensor([0.5, -1.25, 2.0], dtype=torch.float64),
          "y": torch.tensor([1.5, 0.75, -0.5], dtype=torch.float64),
          "z": torch.tensor(0.8, dtype=torch.float64)}
CONSTANTS = {"2": 2.0, "3": 3.0, "0.5": 0.5, "1.5": 1.5}
UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "exp": torch.exp, "sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
    "abs": torch.abs, "relu": torch.relu}
BINARY: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.div}
REDUCE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"sum": torch.sum, "mean": torch.mean,
                                                              "max": torch.max}


Env = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Gen:
    """Generated EXPR text (every compound part in parentheses) and the same computation in plain torch."""

    text: str
    fn: Callable[[Env], torch.Tensor]

    @property
    def value(self) -> torch.Tensor:
        return self.fn(INPUTS)


def leaf(vector: bool) -> st.SearchStrategy[Gen]:
    if vector:
        return st.sampled_from(["x", "y"]).map(lambda n: Gen(n, lambda env: env[n]))
    consts = [Gen(t, lambda env, v=v: torch.tensor(v, dtype=torch.float64)) for t, v in CONSTANTS.items()]
    return st.sampled_from(consts + [Gen("z", lambda env: env["z"])])


@st.composite
def expr(draw: st.DrawFn, vector: bool, depth: int = 0, reductions: tuple[str, ...] = tuple(REDUCE)) -> Gen:
    """An expression of shape [3] (``vector``) or [] built from x, y, z and small constants."""
    if depth >= 4 or draw(st.integers(0, 3)) == 0:
        return draw(leaf(vector))
    kinds = ["binary", "neg", "unary", "pow"] + ([] if vector else ["reduce", "dot", "matmul"])
    kind = draw(st.sampled_from(kinds))
    sub = lambda vec: draw(expr(vec, depth + 1, reductions))  # noqa: E731 - local shorthand
    if kind == "binary":
        sym = draw(st.sampled_from(sorted(BINARY)))
        left_vec = vector and draw(st.booleans())
        right_vec = vector and (not left_vec or draw(st.booleans()))  # broadcasting: one side may be scalar
        a, b, f = sub(left_vec), sub(right_vec), BINARY[sym]
        return Gen(f"({a.text} {sym} {b.text})", lambda env: f(a.fn(env), b.fn(env)))
    if kind == "neg":
        a = sub(vector)
        return Gen(f"(-{a.text})", lambda env: -a.fn(env))
    if kind == "unary":
        name = draw(st.sampled_from(sorted(UNARY)))
        a, f = sub(vector), UNARY[name]
        text = f"{name}({a.text})" if draw(st.booleans()) else f"({a.text}).{name}()"
        return Gen(text, lambda env: f(a.fn(env)))
    if kind == "pow":
        k = draw(st.sampled_from([2, 3, -1]))
        a = sub(vector)
        return Gen(f"({a.text} ** {k})", lambda env: a.fn(env) ** k)
    a = sub(True)
    if kind == "reduce":
        name = draw(st.sampled_from(sorted(reductions)))
        f = REDUCE[name]
        text = f"{name}({a.text})" if draw(st.booleans()) else f"({a.text}).{name}()"
        return Gen(text, lambda env: f(a.fn(env)))
    b = sub(True)
    if kind == "dot":
        return Gen(f"dot({a.text}, {b.text})", lambda env: torch.dot(a.fn(env), b.fn(env)))
    return Gen(f"({a.text} @ {b.text})", lambda env: a.fn(env) @ b.fn(env))


any_expr = st.one_of(expr(True), expr(False))


def same(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=tol, atol=tol, equal_nan=True))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_expr)
def test_parse_print_parse_round_trip(gen: Gen):
    node = parse_expression(gen.text)
    printed = to_text(node)
    again = parse_expression(printed)
    assert to_text(again) == printed
    assert same(evaluate(again, INPUTS), evaluate(node, INPUTS), 1e-12), (gen.text, printed)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_expr)
def test_parsed_expression_has_the_value_plain_torch_gives(gen: Gen):
    assume(bool(torch.isfinite(gen.value).all()) and float(gen.value.abs().max()) < 1e8)
    value = evaluate(parse_expression(gen.text), INPUTS)
    assert same(value, gen.value, 1e-9), (gen.text, value, gen.value)


def test_printer_drops_only_redundant_parentheses():
    cases = {"((x + y) + z)": "x + y + z", "(x - (y - z))": "x - (y - z)", "((-x) ** 2)": "(-x)**2",
             "(-(x ** 2))": "-x**2", "((x ** 2) ** 3)": "(x**2)**3", "(x ** (2 ** 3))": "x**8",
             "((x * y) / (z * 2))": "x*y/(z*2)", "(x / (1 / 3))": "x/(1/3)"}
    for text, expected in cases.items():
        assert to_text(parse_expression(text)) == expected, text


# ------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize("text, col, fragment", [
    ("x*", 2, "syntax"),
    ("dot(x, y", 3, "unclosed"),
    ("x +* y", 3, "syntax"),
    ("2*dot(x,x) )", 11, "unmatched"),
    ("x + frobnicate(y)", 4, "unknown function 'frobnicate'"),
    ("x.grad_fn", 2, ".grad_fn"),
    ("x + (x*2).__class__", 10, ".__class__"),
    ("torch.dot.__call__(x, x)", 10, ".__call__"),
    ("x.foo()", 2, ".foo()"),
    ("sum(x, dim=y)", 11, "'dim'"),
    ("x[1.5]", 2, "index"),
    ("x; import os", 3, "Import"),
    ("x \u2264 y", 2, "U+2264"),
])
def test_error_column_points_at_the_offending_piece(text: str, col: int, fragment: str):
    with pytest.raises(ParseError) as info:
        parse_program(text)
    assert info.value.col == col, info.value.message
    assert fragment in info.value.message
    caret_line = info.value.caret().splitlines()[-1]
    assert caret_line.index("^") - 2 == col  # caret() indents by two spaces


def test_caret_on_the_right_line_of_a_program():
    with pytest.raises(ParseError) as info:
        parse_program("y = x*2\nz = y.grad\nz.sum()")
    assert (info.value.line, info.value.col) == (2, 6)
    assert info.value.caret() == "  z = y.grad\n        ^"


@pytest.mark.parametrize("text", [
    "x.grad_fn", "x.__class__", "x.sum.__globals__", "x.T.__dict__", "x.grad",
    "lambda: 1", "(lambda: 1)()", "import os", "from os import path", "[i for i in x]", "{i: 1 for i in x}",
    "(i for i in x)", "__import__('os')", "getattr(x, 'y')", "exec('1')", "eval('1')", "open('f')",
    "torch.load('f')", "x if y else z", "f'{x}'", "(y := x)", "del x", "x and y", "x == y", "x < y",
    "'a'", "x.sum()(1)", "x[0]()", "{x}", "...", "_x * 2", "x = 1 = y",
])
def test_rejected_constructs_raise_parse_error(text: str):
    with pytest.raises(ParseError):
        parse_program(text)


def test_rejected_construct_through_the_cli_is_one_error_line_with_caret():
    r = run_cli("eval", "x.__class__", "x=1")
    assert r.code == 2
    lines = r.stderr.splitlines()
    assert lines[0].startswith("error:") and ".__class__" in lines[0]
    assert lines[-1] == "    ^"
    assert r.stdout == ""


def test_values_are_parsed_without_names():
    with pytest.raises(GradexplainError):
        parse_expression("[1, y]", allow_names=False)
