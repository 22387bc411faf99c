"""The one comparison (gradexplain.compare): the contract's tolerance, exact IEEE semantics, and
the verdicts built on it (--expect, check's expected output) never passing an infinity."""
from __future__ import annotations

import math

import torch

from gradexplain.compare import all_agree, compare

from conftest import run_cli

INF, NAN = math.inf, math.nan


def t(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)


def test_tolerance_is_relative_plus_absolute():
    assert compare(t(1.0), t(1.0 + 1e-7), 1e-6).agree
    assert not compare(t(1.0), t(1.0 + 1e-5), 1e-6).agree
    assert compare(t(1e6), t(1e6 + 0.5), 1e-6).agree  # 0.5 <= 1e-6 * (1 + 1e6)
    assert compare(t(1.0, 2.0), t(1.0, 2.5), 1e-6).max_abs_diff == 0.5


def test_shapes_must_be_equal():
    c = compare(t(1.0, 2.0), torch.tensor([[1.0, 2.0]]), 1e-6)
    assert not c.agree and c.max_abs_diff == INF


def test_an_infinity_equals_only_the_same_infinity():
    assert compare(t(INF, -INF), t(INF, -INF), 1e-6) == (True, 0.0)
    assert not compare(t(INF), t(1.0), 1e-6).agree  # the bound would be infinite: it must not apply
    assert not compare(t(1.0), t(-INF), 1e-6).agree
    assert not compare(t(INF), t(-INF), 1e-6).agree
    assert not compare(t(INF), t(NAN), 1e-6).agree


def test_nan_agrees_only_with_nan():
    assert compare(t(NAN, 1.0), t(NAN, 1.0), 1e-6) == (True, 0.0)
    assert not compare(t(NAN), t(0.0), 1e-6).agree
    assert compare(t(NAN), t(0.0), 1e-6).max_abs_diff == INF


def test_all_agree_combines_verdicts():
    assert all_agree([True, True]) is True
    assert all_agree([True, None]) is None
    assert all_agree([None, False]) is False


def test_expect_of_infinities_does_not_hold_against_finite_gradients():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (2 * torch.dot(x, x)).backward()
    assert torch.isfinite(x.grad).all()  # plain torch: [4, 8, 12]
    r = run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--expect", "x=[inf,inf,inf]", "--json")
    assert r.code == 1
    assert [e["passed"] for e in r.json()["expect"]] == [False]
    assert run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--expect", "x=[4,8,12]").code == 0


def test_check_output_inf_fails_against_a_finite_output(tmp_path):
    x = torch.tensor([1.0, 2.0, 3.0])
    assert math.isfinite(float(2 * torch.dot(x, x)))  # plain torch: 28
    path = tmp_path / "inf.toml"
    path.write_text('[[problem]]\nname = "inf-output"\nexpr = "2*dot(x,x)"\ninputs = { x = "1,2,3" }\n'
                    'output = "inf"\n\n[[problem]]\nname = "right-output"\nexpr = "2*dot(x,x)"\n'
                    'inputs = { x = "1,2,3" }\noutput = "28"\n')
    r = run_cli("check", str(path), "--json")
    assert r.code == 1
    assert {p["name"]: p["passed"] for p in r.json()["problems"]} == {"inf-output": False, "right-output": True}
