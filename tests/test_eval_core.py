"""The core `eval` contract, checked through the CLI against plain torch computed here."""
from __future__ import annotations

import torch

from conftest import run_cli, run_subprocess


def torch_grad(fn, *values, grad_output=None):
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    out = fn(*leaves)
    out.backward(None if grad_output is None else torch.tensor(grad_output, dtype=torch.float64))
    return out.detach(), [leaf.grad for leaf in leaves]


def test_two_dot_x_x_json_round_trips():
    out, (gx,) = torch_grad(lambda x: 2 * torch.dot(x, x), [1.0, 2.0, 3.0])
    r = run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["schema"] == "gradexplain/1"
    assert doc["output"]["value"] == float(out)
    assert doc["grads"]["x"]["torch"] == gx.tolist()
    expr = doc["grads"]["x"]["symbolic"]["expr"]
    assert "[" not in expr
    assert doc["grads"]["x"]["symbolic"]["value"] == gx.tolist()
    again = run_cli("eval", expr, "x=1,2,3", "--json").json()
    assert again["output"]["value"] == gx.tolist()


def test_dot_node_sends_two_contributions():
    doc = run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--json").json()
    dot = next(g for g in doc["graph"] if g["node"] == "DotBackward0")
    assert dot["grad_inputs"] == [[2.0, 4.0, 6.0], [2.0, 4.0, 6.0]]
    assert "dot(x,x)" in dot["label"]
    acc = next(g for g in doc["graph"] if g["node"] == "AccumulateGrad")
    assert acc["variable"] == "x" and acc["grad_output"] == [4.0, 8.0, 12.0]


def test_text_output_names_nodes_and_formula():
    r = run_subprocess("eval", "2*dot(x,x)", "x=1,2,3")
    assert r.code == 0
    for needle in ("DotBackward0", "AccumulateGrad", "4*x", "4, 8, 12"):
        assert needle in r.stdout


def test_non_scalar_output_gives_jacobian():
    r = run_cli("eval", "x*2", "x=1,2", "--json")
    assert r.code == 0
    doc = r.json()
    expected = torch.autograd.functional.jacobian(lambda x: x * 2, torch.tensor([1.0, 2.0])).tolist()
    assert doc["jacobian"]["x"]["torch"] == expected
    assert doc["jacobian"]["x"]["symbolic"]["value"] == expected
    assert doc["grads"] == {}


def test_vjp_seed_case():
    def program(a):
        b = torch.zeros(1, 2, dtype=torch.float64)
        b[0, 0] = a[0, 0] ** 2 + a[0, 1]
        b[0, 1] = a[0, 1] ** 3 + a[0, 0]
        return 2 * b

    _, (ga,) = torch_grad(program, [[2.0, 4.0]], grad_output=[[1.0, 2.0]])
    r = run_cli("eval", "b = zeros(1,2); b[0,0] = a[0,0]**2 + a[0,1]; b[0,1] = a[0,1]**3 + a[0,0]; 2*b",
                "a=[[2,4]]", "--grad-output", "[[1,2]]", "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["grads"]["a"]["torch"] == ga.tolist() == [[12.0, 194.0]]
    assert doc["grads"]["a"]["symbolic"]["value"] == ga.tolist()
    assert "CopySlices" in [g["node"] for g in doc["graph"]]
    jac = torch.autograd.functional.jacobian(program, torch.tensor([[2.0, 4.0]], dtype=torch.float64))
    assert doc["jacobian"]["a"]["torch"] == jac.tolist()


def test_bad_inputs_exit_2_with_one_error_line():
    cases = [("x*",), ("2*dot(x,x)",), ("dot(x,y)", "x=1,2", "y=1,2,3"), ("x.sum()", "x=[[1,2],[3]]"),
             ("frobnicate(x)", "x=1")]
    for args in cases:
        r = run_subprocess("eval", *args)
        assert r.code == 2, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("error:"), r.stderr
        assert "Traceback" not in r.stderr
    caret = run_subprocess("eval", "x*", "x=1")
    assert "^" in caret.stderr
