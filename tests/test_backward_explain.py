"""The backward pass explained per node: recorded gradients checked against plain torch hooks,
accumulation, retained intermediates, the vector-Jacobian product, and misconception notes."""
from __future__ import annotations

import re

import pytest
import torch

from conftest import run_cli

SEED_VJP = "b = zeros(1,2); b[0,0] = a[0,0]**2 + a[0,1]; b[0,1] = a[0,1]**3 + a[0,0]; 2*b"


@pytest.fixture(autouse=True)
def _wide(monkeypatch):
    """Wide, colourless text so phrases are not wrapped across lines."""
    monkeypatch.setenv("COLUMNS", "220")
    monkeypatch.setenv("NO_COLOR", "1")


def plain(v):
    return v.tolist() if isinstance(v, torch.Tensor) else v


def hooked_flow(out: torch.Tensor) -> list[tuple[str, list]]:
    """Breadth-first over out.grad_fn with plain Node hooks: (node name, what it sent per edge)."""
    order, seen, queue = [], set(), [out.grad_fn]
    while queue:
        fn = queue.pop(0)
        if fn in seen:
            continue
        seen.add(fn)
        order.append(fn)
        queue.extend(n for n, _ in fn.next_functions if n is not None)
    sent: dict = {}
    for fn in order:
        fn.register_hook(lambda gi, go, fn=fn: sent.__setitem__(fn, [plain(g) if g is not None else None for g in gi]))
    out.backward()
    return [(type(fn).__name__, sent.get(fn, [])) for fn in order]


def test_dot_node_sends_2_4_6_twice_and_is_named_after_the_expr():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    expected = hooked_flow(2 * torch.dot(x, x))
    doc = run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--json").json()
    dot = next(g for g in doc["graph"] if g["node"] == "DotBackward0")
    want = dict(expected)["DotBackward0"]
    assert want == [[2.0, 4.0, 6.0], [2.0, 4.0, 6.0]]
    assert dot["grad_inputs"] == want
    assert "dot(x,x)" in dot["label"]
    assert [e["source"] for e in dot["edges"]] == ["x", "x"]
    assert [e["rule"] for e in dot["edges"]] == ["g*x", "g*x"]
    acc = [g for g in doc["graph"] if g["node"] == "AccumulateGrad"]
    assert len(acc) == 1 and acc[0]["variable"] == "x" and acc[0]["grad_output"] == x.grad.tolist()
    mul = doc["graph"][0]
    assert mul["edges"][1] == {"arg": "a", "source": "2", "rule": None, "constant": True, "direct": True}
    assert mul["edges"][0]["rule"] == "g*2"


@pytest.mark.parametrize("expr,build", [
    ("y = x*2; z = y*y*3; z.mean()", lambda x: (lambda y: (y * y * 3).mean())(x * 2)),
    ("exp(x).sum() + (x*x).sum()", lambda x: torch.exp(x).sum() + (x * x).sum()),
    ("sigmoid(x*3).mean()", lambda x: torch.sigmoid(x * 3).mean()),
])
def test_every_node_matches_plain_torch_hooks(expr, build):
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    expected = hooked_flow(build(x))
    doc = run_cli("eval", expr, "x=1,2,3", "--json").json()
    got = [(g["node"], g["grad_inputs"]) for g in doc["graph"]]
    assert [n for n, _ in got] == [n for n, _ in expected]
    for (name, sent), (_, want) in zip(got, expected):
        assert len(sent) == len(want), name
        for a, b in zip(sent, want):
            assert (a is None) == (b is None), name
            assert a is None or torch.allclose(torch.tensor(a), torch.tensor(b)), name


def test_text_shows_contributions_and_their_sum_once():
    r = run_cli("eval", "2*dot(x,x)", "x=1,2,3")
    assert r.code == 0
    assert re.search(r"x\.grad = \[2, 4, 6\] \(from dot\(x,x\), a\) \+ \[2, 4, 6\] \(from dot\(x,x\), b\) = \[4, 8, 12\]",
                     r.stdout)
    assert r.stdout.count("(contribution 1 of 2)") == 1 and r.stdout.count("(contribution 2 of 2)") == 1
    assert "g*x  = [2, 4, 6]" in r.stdout
    assert "zero_grad()" in r.stdout and "x.grad = [8, 16, 24]" in r.stdout
    assert "retain_graph" in r.stdout and "saved tensors: self = [1, 2, 3] (x)" in r.stdout


def test_intermediates_keep_their_grad_and_non_leaves_are_explained():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    z = y * y * 3
    y.retain_grad()
    z.retain_grad()
    z.mean().backward()
    doc = run_cli("eval", "y = x*2; z = y*y*3; z.mean()", "x=1,2,3", "--json").json()
    grads = {f["name"]: f["grad"] for f in doc["forward"]}
    assert grads["y"] == y.grad.tolist() == [4.0, 8.0, 12.0]
    assert grads["z"] == pytest.approx(z.grad.tolist()) and grads["z"] == pytest.approx([1 / 3] * 3)
    text = run_cli("eval", "y = x*2; z = y*y*3; z.mean()", "x=1,2,3").stdout
    assert "non-leaves: y, z, out" in text and ".retain_grad()" in text and "leaves: x" in text


def test_vjp_seed_case_shows_jacobian_and_the_product():
    def f(a):
        b = torch.zeros(1, 2)
        b[0, 0] = a[0, 0] ** 2 + a[0, 1]
        b[0, 1] = a[0, 1] ** 3 + a[0, 0]
        return 2 * b

    jac = torch.autograd.functional.jacobian(f, torch.tensor([[2.0, 4.0]]))
    doc = run_cli("eval", SEED_VJP, "a=[[2,4]]", "-g", "[[1,2]]", "--json").json()
    assert doc["jacobian"]["a"]["torch"] == jac.tolist() == [[[[8.0, 2.0]], [[2.0, 96.0]]]]
    assert doc["grads"]["a"]["torch"] == [[12.0, 194.0]]
    text = run_cli("eval", SEED_VJP, "a=[[2,4]]", "-g", "[[1,2]]").stdout
    assert "CopySlices" in text and "96" in text and "194" in text
    assert "a.grad[0,0] = 1·8 + 2·2 = 12" in text
    assert "a.grad[0,1] = 1·2 + 2·96 = 194" in text
    assert re.search(r"out\[0,1\]\s+2\s+96", text)  # J drawn as a 2x2 matrix


def test_non_scalar_without_v_explains_why_and_shows_j():
    r = run_cli("eval", SEED_VJP, "a=[[2,4]]")
    assert r.code == 0
    assert "grad can be implicitly created only for scalar outputs" in r.stdout
    assert re.search(r"out\[0,0\]\s+8\s+2", r.stdout) and "did not run" in r.stdout


@pytest.mark.parametrize("expr,values,needle", [
    ("relu(x).sum()", ["x=0,1"], "PyTorch uses the subgradient 0 there; SymPy's derivative Heaviside(x) is 1/2"),
    ("abs(x).sum()", ["x=0,1"], "x[0] is exactly 0"),
    ("sqrt(x).sum()", ["x=0,1"], "zoo"),
    ("max(x, y).sum()", ["x=1,2", "y=1,3"], "splits the gradient evenly (0.5 to each)"),
    ("max(x)", ["x=2,2,1"], "2 entries tie for the maximum"),
    ("z = x*w + b; mse_loss(z, t)", ["x=5", "t=0", "w=1", "b=3", "--const", "x,t"], "x, t: --const"),
    ("cross_entropy(z.unsqueeze(0), tensor([2]))", ["z=1,2,3"], "integer tensors cannot require grad"),
    (SEED_VJP, ["a=[[2,4]]", "-g", "[[1,2]]"], "b = zeros(1,2): built inside EXPR, so a constant"),
])
def test_misconceptions_are_flagged_where_they_apply(expr, values, needle):
    doc = run_cli("eval", expr, *values, "--json").json()
    assert any(needle in n for n in doc["notes"]), doc["notes"]


def test_no_kink_note_away_from_the_kink():
    doc = run_cli("eval", "relu(x).sum() + abs(x).sum()", "x=1,-2", "--json").json()
    assert not any("differentiable" in n for n in doc["notes"])


def test_in_place_on_a_leaf_is_explained():
    r = run_cli("eval", "x += 1; x*2", "x=1,2")
    assert r.code == 2
    assert "error:" in r.stderr and "leaf" in r.stderr and "y = x*1" in r.stderr and "--const" in r.stderr


def test_rule_variables_never_read_as_the_users_names():
    r = run_cli("eval", "b = zeros(1,2); b[0,0] = a[0,0]**2 + a[0,1]; b[0,1] = a[0,1]**3 + a[0,0]; 2*b",
                "a=[[2,4]]", "-g", "[[1,2]]")
    out = r.stdout
    assert "a = a[0,0]**2" not in out and "a[0,0]**2 (as self)" in out
    selects = [line for line in out.splitlines() if "SelectBackward0 [a[0,0]]" in line]
    assert selects and all("#" in line for line in selects)  # repeated nodes are told apart
    c = run_cli("eval", "x*d", "x=1,2", "d=3,4", "--const", "d").stdout
    assert "x = d" not in c and "d (as other): needs no gradient" in c


def test_symbolic_jacobian_prints_as_a_matrix():
    out = run_cli("eval", "sin(x)*x", "x=1,2").stdout
    assert "stack([stack(" not in out and "stack([" not in out
    assert "x[0]*cos(x[0]) + sin(x[0])" in out
