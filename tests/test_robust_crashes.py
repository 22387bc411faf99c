"""Valid input that plain torch accepts never crashes (issue 19): big exact numbers, domain edges
for finite differences, --hessian through a kink, torch's own dimension limit, LR-schedule periods.
Expected values come from plain torch, run here."""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from gradexplain.bignum import int_text, json_exact, to_float, torch_scalar
from tests.conftest import run_cli


def _grad(fn, *values, requires=None):
    ts = [torch.tensor(v, dtype=torch.float64, requires_grad=True if requires is None else requires[i])
          for i, v in enumerate(values)]
    fn(*ts).backward()
    return [t.grad for t in ts]


def test_gradient_formula_with_an_integer_past_int64():
    # d(x*x*1e-20)/dx = x/5e19: SymPy's exact 50000000000000000000 does not fit int64
    r = run_cli("eval", "--json", "x*x*1e-20", "x=3")
    assert r.code == 0, r.stderr
    (g,) = _grad(lambda x: x * x * 1e-20, 3.0)
    assert r.json()["grads"]["x"]["torch"] == pytest.approx(float(g))
    assert r.json()["grads"]["x"]["symbolic"]["value"] == pytest.approx(float(g))


def test_json_exact_value_past_int64_is_a_string():
    r = run_cli("eval", "--json", "x**3", "x=1e10")
    assert r.code == 0, r.stderr
    (g,) = _grad(lambda x: x**3, 1e10)
    grad = r.json()["grads"]["x"]
    assert grad["torch"] == float(g)
    assert grad["symbolic"]["exact"] == str(3 * 10**20)  # exact, as text past int64


def test_exact_value_past_4300_digits_is_written_in_hex():
    r = run_cli("eval", "--json", "x**20", "x=1e-300")
    assert r.code == 0, r.stderr
    exact = r.json()["grads"]["x"]["symbolic"]["exact"]
    num, den = exact.split("/")
    assert den.startswith("0x")
    assert Fraction(int(num, 0), int(den, 0)) == 20 * Fraction(1, 10**300) ** 19  # the exact value survives


def test_check_json_report_survives_a_big_exact_value(tmp_path: Path):
    f = tmp_path / "big.toml"
    f.write_text('[[problem]]\nname = "big"\nexpr = "x**3"\ninputs = { x = "1e10" }\nexpect = { x = "3*x**2" }\n'
                 '[[problem]]\nname = "small"\nexpr = "x*2"\ninputs = { x = "1" }\n')
    r = run_cli("check", str(f), "--json")
    assert r.code == 0, r.stderr
    assert [p["passed"] for p in r.json()["problems"]] == [True, True]


def test_bignum_conversions():
    assert torch_scalar(2**70) == float(2**70) and isinstance(torch_scalar(5), int)
    assert to_float(10**400) == float("inf") and to_float(-(10**400)) == float("-inf")
    assert json_exact(2**63) == str(2**63) and json_exact(2**63 - 1) == 2**63 - 1
    assert int(int_text(10**5000), 16) == 10**5000 and int_text(-7) == "-7"


def test_formula_text_with_a_huge_constant_reads_back():
    r = run_cli("eval", "--json", "x*2*10**5000", "x=1")
    assert r.code == 0, r.stderr
    expr = r.json()["grads"]["x"]["symbolic"]["expr"]
    assert "0x" in expr
    back = run_cli("eval", "--json", f"{expr}*x", "x=1")
    assert back.code == 0, back.stderr


def test_finite_differences_at_the_edge_of_the_target_domain():
    # a target of 1 is valid, but 1+h is not: the numeric estimate is one-sided, not a crash
    r = run_cli("eval", "--json", "binary_cross_entropy(sigmoid(x), t)", "x=0.3", "t=1")
    assert r.code == 0, r.stderr
    gx, gt = _grad(lambda x, t: torch.nn.functional.binary_cross_entropy(torch.sigmoid(x), t), 0.3, 1.0)
    grads = r.json()["grads"]
    assert grads["x"]["torch"] == pytest.approx(float(gx)) and grads["t"]["torch"] == pytest.approx(float(gt))
    assert grads["t"]["numeric"] == pytest.approx(float(gt), rel=1e-6)
    assert grads["t"]["numeric_agree"] is True
    assert any("one-sided" in n for n in r.json()["notes"])


def test_finite_differences_at_the_edge_with_hessian_and_hvp():
    r = run_cli("eval", "--json", "binary_cross_entropy(sigmoid(x), t)", "x=0.3", "t=1", "--hessian")
    assert r.code == 0, r.stderr
    r = run_cli("eval", "--json", "binary_cross_entropy(sigmoid(x), t)", "x=0.3", "t=1", "--hvp", "x=1",
                "--hvp", "t=1")
    assert r.code == 0, r.stderr
    assert any("Hessian-vector product" in n for n in r.json()["notes"])


def test_hessian_through_abs():
    r = run_cli("eval", "--json", "abs(x).sum()", "x=1,-2", "--hessian")
    assert r.code == 0, r.stderr
    x = torch.tensor([1.0, -2.0], dtype=torch.float64)
    expected = torch.func.hessian(lambda t: t.abs().sum())(x)
    assert r.json()["hessian"]["x"]["x"]["torch"] == expected.tolist()
    assert run_cli("eval", "abs(x).sum()", "x=1,-2", "--hessian").code == 0  # the text view too


def test_more_dims_than_torch_supports_is_exit_2():
    shape = ",".join(["1"] * 65)
    r = run_cli("eval", f"x.reshape({shape}).sum()", "x=1")
    assert r.code == 2 and "64" in r.stderr and "Traceback" not in r.stderr
    assert run_cli("eval", f"x.reshape({','.join(['1'] * 64)}).sum()", "x=1").code == 0


@pytest.mark.parametrize("schedule", ["step:step_size=0", "cosine:T_max=0"])
def test_schedule_period_zero_is_exit_2(schedule):
    # plain torch raises ZeroDivisionError in scheduler.step(): refused before any step, with a message
    r = run_cli("eval", "z = x*w; mse_loss(z, t)", "x=5", "t=0", "w=1", "--const", "x,t", "--step", "sgd",
                "--schedule", schedule)
    assert r.code == 2 and "at least 1" in r.stderr


def test_reshape_of_a_0d_input_round_trips():
    # the gradient g.reshape(()) of a 0-d input is written reshape(()), which eval reads back
    r = run_cli("eval", "--json", "x.reshape(1, 1).sum()", "x=2")
    assert r.code == 0, r.stderr
    (g,) = _grad(lambda x: x.reshape(1, 1).sum(), 2.0)
    assert r.json()["grads"]["x"]["symbolic"]["value"] == float(g)


def test_reductions_along_dim_0_of_a_0d_input_as_torch():
    # torch lets a 0-d tensor be reduced along dim 0 (or -1); the rule's count of reduced elements is 1
    for expr, fn in [("(x.mean(0)*x).sum()", lambda x: (x.mean(0) * x).sum()),
                     ("(var_mean(x, dim=0)[1]*x).sum()", lambda x: (torch.var_mean(x, dim=0)[1] * x).sum())]:
        x = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
        fn(x).backward()
        r = run_cli("eval", "--json", expr, "x=3")
        assert r.code == 0, (expr, r.stderr)
        assert r.json()["grads"]["x"]["torch"] == float(x.grad), expr


def test_cumulative_ops_of_a_0d_input_as_torch():
    for expr, fn in [("(cumsum(x, dim=0)*x).sum()", lambda x: (torch.cumsum(x, 0) * x).sum()),
                     ("(cumprod(x, dim=0)*x).sum()", lambda x: (torch.cumprod(x, 0) * x).sum())]:
        x = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
        fn(x).backward()
        r = run_cli("eval", "--json", expr, "x=3")
        assert r.code == 0 and r.json()["agree"] is True, (expr, r.stderr)
        assert r.json()["grads"]["x"]["torch"] == float(x.grad), expr


@pytest.mark.parametrize("expr, ref", [
    ("(zeros(x.size()) + x).sum()", lambda x: (torch.zeros(x.size()) + x).sum()),
    ("x.expand(x.size()).sum()", lambda x: x.expand(x.size()).sum()),
    ("(ones(x.shape) * x * x).sum()", lambda x: (torch.ones(x.shape) * x * x).sum()),
])
def test_a_size_read_off_a_tensor_as_a_shape(expr, ref):
    """A shape given as a size of another tensor (a Slot until the program runs) is predicted from
    its value, not from the placeholder."""
    (expected,) = _grad(ref, [1.0, 2.0])
    r = run_cli("eval", "--json", expr, "x=1,2")
    assert r.code == 0, r.stderr
    assert r.json()["grads"]["x"]["torch"] == expected.tolist()


def test_a_size_read_off_a_tensor_still_meets_the_element_limit():
    r = run_cli("eval", "zeros(x.size(0), 10**8).sum() + x.sum()", "x=1,2")
    assert r.code == 2 and "over the limit of 10,000,000" in r.stderr


def test_a_formula_without_a_value_here_leaves_torch_answer_standing():
    """logdet of a singular matrix: torch's gradient is ±inf, SymPy's inv(x).T has no value there; the
    run reports torch's gradient and why the symbolic side is silent (exit 0), not an error."""
    x = torch.tensor([[2.0, 2.0], [2.0, 2.0]], dtype=torch.float64, requires_grad=True)
    torch.logdet(x).backward()
    r = run_cli("eval", "--json", "logdet(x)", "x=[[2,2],[2,2]]")
    assert r.code == 0, r.stderr
    g = r.json()["grads"]["x"]
    assert g["torch"] == [[str(v) if math.isinf(v) else v for v in row] for row in x.grad.tolist()]
    assert g["symbolic"]["value"] is None and g["agree"] is None and "no value at these inputs" in g["reason"]
    text = run_cli("eval", "logdet(x)", "x=[[2,2],[2,2]]").stdout
    row = next(line for line in text.splitlines() if "inv(x).T" in line and line.lstrip().startswith("x "))
    assert "[[inf, -inf]," in row  # a value starting with a letter ([inf, ...]) is not taken for rich markup
