"""Let-form gradients (contract: "Readable answers"): ``symbolic.program`` reuses the user's names,
reads back through ``eval`` to torch's gradient, and grows linearly with the program's depth."""
from __future__ import annotations

import torch

from conftest import run_cli
from gradexplain.autograd import run_program
from gradexplain.explain import EvalOptions, explain
from gradexplain.formula import formula_limits
from gradexplain.parse import parse_program

W = [[0.5, -0.2, 0.1], [0.3, 0.4, -0.6], [0.2, 0.1, 0.3]]


def chain(k: int) -> tuple[str, list[str]]:
    """``h1 = tanh(W1 @ x + b1); …; hK = tanh(WK @ h(K-1) + bK); (hK*hK).sum()``."""
    stmts = ["h1 = tanh(W1 @ x + b1)"] + [f"h{i} = tanh(W{i} @ h{i - 1} + b{i})" for i in range(2, k + 1)]
    values = ["x=[0.1,0.2,-0.3]"] + [f"W{i}={W}" for i in range(1, k + 1)] + [f"b{i}=[0.1,0,-0.1]" for i in range(1, k + 1)]
    return "; ".join(stmts + [f"(h{k}*h{k}).sum()"]), values


def plain_torch_grad(k: int) -> torch.Tensor:
    x = torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64, requires_grad=True)
    h = x
    for _ in range(k):
        h = torch.tanh(torch.tensor(W, dtype=torch.float64) @ h + torch.tensor([0.1, 0, -0.1], dtype=torch.float64))
    (h * h).sum().backward()
    return x.grad


def program_value(text: str, report) -> torch.Tensor:
    program = parse_program(text, formula_limits())
    leaves = {n: torch.as_tensor(i.value, dtype=torch.float64) for n, i in report.inputs.items()}
    return run_program(program, leaves, formula_limits())[program.output]


def test_deep_chain_program_round_trips_and_grows_linearly():
    lengths = []
    for k in (8, 16, 32, 64):
        expr, values = chain(k)
        report = explain(EvalOptions(expr=expr, values=values, numeric=False))
        sym = report.grads["x"].symbolic
        assert report.grads["x"].agree is True
        program = sym.program
        assert f"h{k} = tanh(W{k} @ h{k - 1} + b{k})" in program and f"g_h{k - 1} = " in program
        assert torch.allclose(program_value(program, report), plain_torch_grad(k), atol=1e-12)
        lengths.append(len(program))
        if k >= 16:  # past the inline cap: the one expression is left out, with a note
            assert sym.expr is None and "symbolic.program" in sym.note
    assert all(b / a <= 2.2 for a, b in zip(lengths, lengths[1:])), lengths


def test_program_through_cli_and_small_expression():
    r = run_cli("eval", "y = x*2; z = y*y*3; z.mean()", "x=1,2,3", "--json")
    program = r.json()["grads"]["x"]["symbolic"]["program"]
    assert program.split("; ")[0] == "y = x*2"  # the user's own intermediate, by name
    back = run_cli("eval", program, "x=1,2,3", "--json").json()
    assert back["output"]["value"] == r.json()["grads"]["x"]["torch"]
    simple = run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--json").json()
    assert simple["grads"]["x"]["symbolic"]["program"] == "4*x"


def test_reassigned_names_are_not_reused():
    r = run_cli("eval", "h = tanh(W @ x); h = tanh(W @ h); h.sum()", "x=1,2", "W=[[0.1,0.2],[0.3,0.4]]", "--json")
    doc = r.json()
    program = doc["grads"]["x"]["symbolic"]["program"]
    names = [line.split(" = ")[0] for line in program.split("; ")[:-1]]
    assert len(names) == len(set(names)), program
    back = run_cli("eval", program, "x=1,2", "W=[[0.1,0.2],[0.3,0.4]]", "--json").json()
    assert torch.allclose(torch.tensor(back["output"]["value"]), torch.tensor(doc["grads"]["x"]["torch"]))


def test_brief_prints_the_answer_only():
    r = run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--brief")
    lines = r.stdout.strip().splitlines()
    assert r.code == 0 and len(lines) <= 3
    assert "x.grad" in lines[0] and "[4, 8, 12]" in lines[0] and "4*x" in lines[0] and "✓" in lines[0]


def test_default_text_opens_with_the_answer_and_the_layout_convention():
    r = run_cli("eval", "2*dot(x,x)", "x=1,2,3")
    head = r.stdout.splitlines()[:5]
    assert any("x.grad" in l and "[4, 8, 12]" in l and "4*x" in l for l in head), head
    assert r.stdout.count("a gradient has the shape of its input") == 1


def test_brief_vjp_line_spells_v_times_j():
    r = run_cli("eval", "b = zeros(1,2); b[0,0] = a[0,0]**2 + a[0,1]; b[0,1] = a[0,1]**3 + a[0,0]; 2*b",
                "a=[[2,4]]", "-g", "[[1,2]]", "--brief")
    assert "a.grad = vᵀ·J = [[1, 2]] · [[8, 2], [2, 96]] = [[12, 194]]" in r.stdout


def test_text_view_prints_the_program_in_numbered_lines():
    expr, values = chain(4)
    out = run_cli("eval", expr, *values, "--no-numeric").stdout
    assert "  1  h1 = tanh(W1 @ x + b1)" in out and "∂/∂x = W1.T @ (g_h1*(1 - h1**2))" in out


def test_component_pick_keeps_a_closed_form():
    doc = run_cli("eval", "--json", "--", "-log(softmax(z, dim=0)[2])", "z=1,2,3").json()
    sym = doc["grads"]["z"]["symbolic"]
    # whole-tensor: the pick's gradient is written with pad/one_hot of g, never per element
    assert "stack(" not in sym["expr"] and len(sym["expr"]) < 300 and sym["note"] is None
    z = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    (-torch.log(torch.softmax(z, 0)[2])).backward()
    back = run_cli("eval", "--json", "--const", "z", "--", sym["expr"], "z=1,2,3").json()
    assert torch.allclose(torch.tensor(back["output"]["value"], dtype=torch.float64), z.grad)
