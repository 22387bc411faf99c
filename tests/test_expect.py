"""--expect: values and formulas, proved / unproved / wrong outcomes, exact values, the numeric third opinion."""
from __future__ import annotations

import time

import torch

from conftest import run_cli


def expect_json(*args: str):
    r = run_cli("eval", *args, "--json")
    return r.code, r.json()


def test_formula_proved_and_wrong_formula_exit_codes():
    code, doc = expect_json("2*dot(x,x)", "x=1,2,3", "--expect", "x=4*x")
    assert code == 0
    (e,) = doc["expect"]
    assert (e["passed"], e["outcome"], e["proved"], e["kind"]) == (True, "proved", True, "formula")
    code, doc = expect_json("2*dot(x,x)", "x=1,2,3", "--expect", "x=4*x+1")
    assert code == 1
    (e,) = doc["expect"]
    assert (e["passed"], e["outcome"]) == (False, "wrong")
    # 4x+1 at [1,2,3] is [5,9,13]; the gradient is [4,8,12]: every entry off by 1
    assert "[0] 5 instead of 4 (off by 1)" in e["message"]


def test_wrong_value_names_the_entry_and_the_difference():
    code, doc = expect_json("x.sum()", "x=[[1,2],[3,4]]", "--expect", "x=[[1,1],[1,3]]")
    assert code == 1
    assert "[1, 1] 3 instead of 1 (off by 2)" in doc["expect"][0]["message"]


def test_transpose_is_named_for_square_and_rectangular_matrices():
    a, b = [[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [-1.0, 2.0]]
    A, B = torch.tensor(a, requires_grad=True), torch.tensor(b)
    torch.trace(A @ B).backward()
    assert not torch.equal(A.grad, B)  # the right answer is B.T, so "B" is its transpose
    code, doc = expect_json("trace(A @ B)", f"A={a}".replace(" ", ""), f"B={b}".replace(" ", ""), "--const", "B",
                            "--expect", "A=B")
    assert code == 1 and doc["expect"][0]["outcome"] == "transposed"
    code, doc = expect_json("(W@x - t).pow(2).sum()", "W=[[1,2,3],[3,4,5]]", "x=[[5],[6],[7]]", "t=[[1],[2]]",
                            "--const", "x,t", "--expect", "W=2*x@(W@x-t).T")
    assert code == 1
    e = doc["expect"][0]
    assert e["outcome"] == "transposed" and "shape [3, 2]" in e["message"] and "transpose" in e["message"]


def test_wrong_shape_is_named():
    code, doc = expect_json("x.sum()", "x=1,2,3", "--expect", "x=[1,1]")
    assert code == 1
    e = doc["expect"][0]
    assert e["outcome"] == "wrong-shape" and "shape [2]" in e["message"] and "[3]" in e["message"]


def test_formula_that_only_matches_at_the_inputs_is_not_general():
    # 3x² + x(x-1)(x-3) equals 3x² at x = 0, 1, 3 only
    code, doc = expect_json("(x**3).sum()", "x=0,1,3", "--expect", "x=3*x**2 + x*(x-1)*(x-3)")
    assert code == 1
    assert doc["expect"][0]["outcome"] == "not-general"


def test_unproved_is_a_distinct_visible_outcome():
    # S x - b is the gradient only because this S is symmetric: true numerically, not provable for every S
    args = ("0.5 * x @ S @ x - dot(b, x)", "x=1,-1,2", "S=[[2,1,0],[1,3,1],[0,1,4]]", "b=1,0,1", "--const", "S,b",
            "--expect", "x=S @ x - b")
    code, doc = expect_json(*args)
    assert code == 0
    e = doc["expect"][0]
    assert (e["passed"], e["outcome"], e["proved"]) == (True, "unproved", None)
    text = " ".join(run_cli("eval", *args).stdout.split())  # rich wraps lines
    assert "? x: S @ x - b holds numerically, but SymPy could not prove it" in text and "not proved" in text


def test_matrix_formula_proved():
    code, doc = expect_json("mse_loss(W @ x + b, t)", "W=[[1,2],[0,1]]", "x=1,-1", "b=0.5,0", "t=0,0",
                            "--const", "x,t", "--expect", "W=2*outer(W @ x + b - t, x)/2")
    assert code == 0 and doc["expect"][0]["outcome"] == "proved"


def test_exact_rational_value():
    # d/dx 4x² = 8x = 16/3 at x = 2/3
    code, doc = expect_json("4*x**2", "x=2/3")
    assert code == 0
    assert doc["grads"]["x"]["symbolic"]["exact"] == "16/3"
    code, doc = expect_json("(x*x).sum()", "x=1/3,1/2")
    assert doc["grads"]["x"]["symbolic"]["exact"] == ["2/3", 1]
    assert "exact 16/3" in " ".join(run_cli("eval", "4*x**2", "x=2/3").stdout.split())
    code, doc = expect_json("sigmoid(x).sum()", "x=1/3")  # not rational
    assert doc["grads"]["x"]["symbolic"]["exact"] is None


def test_numeric_agrees_with_torch_for_sigmoid():
    x = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    torch.sigmoid(x).sum().backward()
    code, doc = expect_json("sigmoid(x).sum()", "x=-1,0,2")
    g = doc["grads"]["x"]
    assert code == 0 and g["numeric_agree"] is True
    assert torch.allclose(torch.tensor(g["numeric"]), x.grad, atol=1e-5, rtol=0)
    assert torch.allclose(torch.tensor(g["torch"]), x.grad, atol=1e-12, rtol=0)


def test_numeric_disagreement_at_a_kink_is_shown_not_failed():
    code, doc = expect_json("relu(x).sum()", "x=-1,0,2")
    assert code == 0
    g = doc["grads"]["x"]
    assert g["numeric_agree"] is False and g["torch"] == [0.0, 0.0, 1.0]
    assert abs(g["numeric"][1] - 0.5) < 1e-6  # the average slope across the kink
    assert any("finite differences disagree" in n for n in doc["notes"])


def test_directional_numeric_for_a_million_elements_is_fast():
    from gradexplain.numeric import numeric_gradients
    from gradexplain.parse import parse_program

    x = torch.linspace(-3, 3, 10**6, dtype=torch.float64)
    grad = torch.sigmoid(x) * (1 - torch.sigmoid(x))  # by hand
    start = time.perf_counter()
    result = numeric_gradients(parse_program("sigmoid(x).sum()"), {"x": x}, None, ["x"], {"x": grad})["x"]
    assert time.perf_counter() - start < 10
    assert len(result["estimates"]) == 3
    for estimate, projection in zip(result["estimates"], result["grad_dot_u"]):
        assert abs(estimate - projection) <= 1e-5 * (1 + abs(projection))


def test_wrong_formula_is_shown_the_right_one_and_a_factor():
    r = run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--expect", "x=2*x")
    assert r.code == 1
    assert "the right formula is 4*x" in r.stdout.replace("\n", " ") and "a factor of 2 off" in r.stdout
    e = run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--expect", "x=2*x", "--json").json()["expect"][0]
    assert e["correct"] == "4*x" and e["difference"] == "-2*x" and "factor of 2" in e["diagnosis"]


def test_transposed_matrix_is_diagnosed():
    # z = W @ x; (z*z).sum(): dW = 2*outer(W@x, x); the claim below is its transpose
    r = run_cli("eval", "z = W @ x; (z*z).sum()", "W=[[1,2],[3,4]]", "x=1,-1", "--expect", "W=2*outer(x, W@x)",
                "--json")
    assert r.code == 1
    e = r.json()["expect"][0]
    assert e["outcome"] == "transposed" and e["diagnosis"].startswith("transposed")


def test_sign_mean_and_chain_rule_diagnoses():
    sign = run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--expect", "x=-4*x", "--json").json()["expect"][0]
    assert sign["diagnosis"].startswith("sign")
    mean = run_cli("eval", "x.mean()", "x=1,2,3", "--expect", "x=ones_like(x)", "--json").json()["expect"][0]
    assert "mean vs sum" in mean["diagnosis"] and "n = 3" in mean["diagnosis"]
    chain = run_cli("eval", "y = sin(x); (y*y).sum()", "x=1,2", "--expect", "x=2*sin(x)", "--json").json()["expect"][0]
    assert chain["diagnosis"].startswith("missing chain-rule factor") and "y = sin(x)" in chain["diagnosis"]
