"""Second derivatives: ``eval --hessian`` and ``--hvp`` (CONTRACT.md "Second derivatives").

Every expected value is computed here independently: by hand, or with plain torch
(``torch.autograd.functional.hessian``), never with gradexplain's own code.
"""
from __future__ import annotations

import math
import time

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli


def hessian_json(*args: str) -> dict:
    r = run_cli("eval", *args, "--hessian", "--json")
    assert r.code == 0, r.stderr
    return r.json()


def close(a, b, tol: float = 1e-9) -> bool:
    a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=tol, rtol=tol))


def value_of(expr: str, *values: str) -> list:
    """Evaluate a formula the tool printed, by running ``eval`` on it (forward value only)."""
    r = run_cli("eval", expr, *values, "--json", "--no-numeric")
    assert r.code == 0, r.stderr
    return r.json()["output"]["value"]


def test_quadratic_form_is_a_plus_a_transposed():
    doc = hessian_json("x @ A @ x", "x=1,2", "A=[[1,2],[3,4]]", "--const", "A")
    block = doc["hessian"]["x"]["x"]
    assert block["torch"] == [[2, 5], [5, 8]]
    assert block["agree"] is True and doc["agree"] is True
    assert close(block["symbolic"]["value"], [[2, 5], [5, 8]])
    # shape-generic: the same formula at another A is that A + A.T (and it does not involve x)
    other = [[0.5, -1.0, 2.0], [3.0, 0.25, 1.0], [-2.0, 4.0, 7.0]]
    expected = (torch.tensor(other) + torch.tensor(other).T).tolist()
    assert close(value_of(block["symbolic"]["expr"], f"A={other}", "x=5,6,7", "--const", "A,x"), expected)
    assert doc["hessian_info"]["definiteness"].startswith("indefinite")  # eigenvalues 5 ± sqrt(34)


def test_sigmoid_sum_is_diagonal():
    doc = hessian_json("sigmoid(x).sum()", "x=-1,0,2")
    block = doc["hessian"]["x"]["x"]
    s = [1 / (1 + math.exp(-v)) for v in (-1, 0, 2)]
    diag = [si * (1 - si) * (1 - 2 * si) for si in s]
    expected = [[diag[i] if i == j else 0.0 for j in range(3)] for i in range(3)]
    assert close(block["torch"], expected)
    assert close(block["symbolic"]["value"], expected)
    assert abs(diag[0] - 0.0909) < 1e-4 and abs(diag[2] + 0.0800) < 1e-4
    assert block["agree"] is True and block["symmetric"] is True
    assert close(sorted(block["eigenvalues"]), sorted(diag))
    assert close(block["numeric"], expected, tol=1e-6)


def test_mixed_block_of_w_x_plus_b():
    doc = hessian_json("w*x + b", "x=1", "w=2", "b=3")
    h = doc["hessian"]
    assert h["w"]["x"]["torch"] == 1 and h["x"]["w"]["torch"] == 1
    for name in ("w", "x", "b"):
        assert h[name][name]["torch"] == 0
    assert h["b"]["w"]["torch"] == 0 and h["x"]["b"]["torch"] == 0
    assert all(blk["agree"] is True for row in h.values() for blk in row.values())
    assert h["w"]["x"]["symbolic"]["value"] == 1
    assert doc["hessian_info"]["eigenvalues"] == [-1, 0, 1]  # [[0,1,0],[1,0,0],[0,0,0]]


def test_hessian_matches_torch_for_two_inputs():
    W = [[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]]
    x = [0.3, -0.7]
    doc = hessian_json("y = sigmoid(W @ x); (y*y).sum()", f"x={x}", f"W={W}")

    def f(W_: torch.Tensor, x_: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(W_ @ x_) ** 2).sum()

    H = torch.autograd.functional.hessian(f, (torch.tensor(W), torch.tensor(x)))
    names = ("W", "x")
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            block = doc["hessian"][a][b]
            assert close(block["torch"], H[i][j].tolist()), (a, b)
            assert block["agree"] is True, (a, b, block["reason"])
            assert list(torch.tensor(block["torch"]).shape) == list(torch.tensor(W if a == "W" else x).shape) + \
                list(torch.tensor(W if b == "W" else x).shape)


def test_hessian_is_the_jacobian_of_the_gradient_formula():
    """``--hessian`` agrees with ``eval "<grads.x.symbolic.expr>" --jacobian`` on the same inputs."""
    values = ("x=0.5,-1,2", "W=[[1,2,0],[0.5,-1,3]]")
    doc = hessian_json("z = tanh(W @ x); dot(z, z) + (x**3).sum()", *values)
    for a in ("x", "W"):
        formula = doc["grads"][a]["symbolic"]["expr"]
        r = run_cli("eval", formula, *values, "--jacobian", "--json", "--no-numeric")
        assert r.code == 0, r.stderr
        jac = r.json()["jacobian"]
        for b in ("x", "W"):
            assert close(jac[b]["torch"], doc["hessian"][a][b]["torch"]), (a, b)


def test_per_element_formula_through_indexing():
    doc = hessian_json("x[0]*x[1]**2", "x=1,2")
    block = doc["hessian"]["x"]["x"]
    # f = x0 x1²: f_00 = 0, f_01 = 2 x1 = 4, f_11 = 2 x0 = 2
    assert block["torch"] == [[0, 4], [4, 2]]
    assert block["agree"] is True
    assert close(value_of(block["symbolic"]["expr"], "x=3,5"), [[0, 10], [10, 6]])


def test_grad_output_gives_the_hessian_of_v_dot_output():
    doc = hessian_json("x**3", "x=1,2", "-g", "2,1")
    # v·x³ = 2x0³ + x1³: diagonal 12 x0, 6 x1
    assert doc["hessian"]["x"]["x"]["torch"] == [[12, 0], [0, 12]]
    assert doc["hessian"]["x"]["x"]["agree"] is True


def test_input_the_output_does_not_reach_has_zero_blocks():
    doc = hessian_json("(x**2).sum() + 0*y", "x=1,2", "y=3")
    assert doc["hessian"]["y"]["y"]["torch"] == 0
    assert doc["hessian"]["x"]["y"]["torch"] == [0, 0]
    assert doc["hessian"]["x"]["x"]["torch"] == [[2, 0], [0, 2]]
    assert doc["agree"] is True


def test_hvp_of_a_large_input_never_builds_the_matrix():
    start = time.perf_counter()
    r = run_cli("eval", "2*dot(x,x)", "x=randn(100000)", "--hvp", "randn(100000)", "--json", "--seed", "3")
    elapsed = time.perf_counter() - start
    assert r.code == 0, r.stderr
    doc = r.json()
    entry = doc["hvp"]["x"]
    v = torch.tensor(entry["direction"])
    assert v.shape == (100000,)
    assert close(entry["torch"], (4 * v).tolist())
    assert entry["symbolic"]["expr"] == "4*v" and entry["agree"] is True
    assert close(entry["numeric"], (4 * v).tolist(), tol=1e-5)
    assert "hessian" not in doc
    assert elapsed < 30  # a 10^10-entry matrix would not fit in memory, let alone in this time


def test_hessian_over_the_limit_is_exit_2_and_names_the_options():
    r = run_cli("eval", "2*dot(x,x)", "x=randn(100000)", "--hessian")
    assert r.code == 2
    assert "10,000,000,000" in r.stderr and "--max-hessian" in r.stderr and "--hvp" in r.stderr
    assert run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--hessian", "--max-hessian", "8").code == 2
    assert run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--hessian", "--max-hessian", "9").code == 0


def test_hvp_per_input_matches_torch():
    doc = run_cli("eval", "(x*y).sum() * y.sum()", "x=1,2", "y=3,4", "--hvp", "x=1,0", "--hvp", "y=0,1",
                  "--json").json()
    x, y = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    H = torch.autograd.functional.hessian(lambda x_, y_: (x_ * y_).sum() * y_.sum(), (x, y))
    vx, vy = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    expected = {"x": H[0][0] @ vx + H[0][1] @ vy, "y": H[1][0] @ vx + H[1][1] @ vy}
    for name, want in expected.items():
        assert close(doc["hvp"][name]["torch"], want.tolist()), name
        assert close(doc["hvp"][name]["symbolic"]["value"], want.tolist()), name
        assert doc["hvp"][name]["agree"] is True
    assert "v_x" in doc["hvp"]["y"]["symbolic"]["expr"] or "v_y" in doc["hvp"]["y"]["symbolic"]["expr"]


def test_hvp_and_hessian_errors_are_exit_2():
    cases = [
        (("(x*y).sum()", "x=1,2", "y=3", "--hvp", "1,0"), "--hvp NAME=V"),
        (("(x*y).sum()", "x=1,2", "y=3", "--hvp", "x=1,2,3"), "shape"),
        (("(x*y).sum()", "x=1,2", "y=3", "--const", "y", "--hvp", "y=1"), "--const"),
        (("(x*y).sum()", "x=1,2", "y=3", "--hvp", "q=1"), "no input"),
        (("x*2", "x=1,2", "--hessian"), "scalar output"),
    ]
    for args, words in cases:
        r = run_cli("eval", *args)
        assert r.code == 2, args
        assert r.stderr.startswith("error:") and words in r.stderr, (args, r.stderr)


def test_text_explains_double_backward():
    r = run_cli("eval", "sigmoid(x).sum()", "x=-1,0,2", "--hessian", "--hvp", "1,0,0")
    assert r.code == 0, r.stderr
    for words in ("H[x, x]", "symmetric ✓", "eigenvalues", "create_graph=True", "SigmoidBackwardBackward0",
                  "is_grads_batched", "Hessian-vector products", "indefinite"):
        assert words in r.stdout, words


@settings(max_examples=5, deadline=None)
@given(st.lists(st.floats(-2, 2, allow_nan=False).map(lambda v: round(v, 3)), min_size=1, max_size=4))
def test_random_points_agree_with_torch(xs):
    values = ",".join(repr(v) for v in xs) + ("," if len(xs) == 1 else "")
    doc = hessian_json("(exp(x) * x**2).sum() + dot(x, x)**2", f"x={values}")
    x = torch.tensor(xs, dtype=torch.float64)
    H = torch.autograd.functional.hessian(lambda t: (torch.exp(t) * t**2).sum() + torch.dot(t, t) ** 2, x)
    block = doc["hessian"]["x"]["x"]
    assert close(block["torch"], H.tolist())
    assert block["agree"] is True
