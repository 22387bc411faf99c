"""Ops that return several tensors (``max(x, dim)`` → values, indices; sort, topk...): every way PyTorch
users pick an output, against plain torch."""
from __future__ import annotations

import torch

from conftest import run_cli


def ok(*args: str) -> dict:
    r = run_cli(*args, "--no-numeric")
    assert r.code == 0, (args, r.stderr)
    return r.json()


def refused(*args: str) -> str:
    r = run_cli(*args)
    assert r.code == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr, (args, r.code, r.stderr)
    return r.stderr


def grad_of(fn, x):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = fn(t)
    out.backward()
    return out, t.grad


def test_max_dim_values_gradient_goes_to_the_returned_index():
    x = [[1.0, 2.0], [1.0, 0.0]]  # a tie in column 0: torch gives the whole gradient to row 0
    out, gx = grad_of(lambda t: t.max(dim=0).values.sum(), x)
    doc = ok("eval", "x.max(dim=0).values.sum()", "x=[[1,2],[1,0]]", "--json")
    assert doc["grads"]["x"]["torch"] == gx.tolist() == [[1.0, 1.0], [0.0, 0.0]]
    assert doc["grads"]["x"]["symbolic"]["value"] == gx.tolist()
    assert doc["forward"][0]["value"] == out.item()


SPELLINGS = [
    ("x.max(dim=0).values.sum()", lambda t: t.max(dim=0).values.sum()),
    ("torch.max(x, 1)[0].sum()", lambda t: torch.max(t, 1)[0].sum()),
    ("v, i = x.max(0); (v * i).sum()", lambda t: (t.max(0)[0] * t.max(0)[1]).sum()),
    ("torch.min(x, -1, keepdim=True).values.sum()", lambda t: torch.min(t, -1, keepdim=True).values.sum()),
    ("x.gather(1, x.min(1, keepdim=True).indices).sum()", lambda t: t.gather(1, t.min(1, keepdim=True).indices).sum()),
]


def test_every_spelling_of_picking_an_output_matches_plain_torch():
    x = [[1.0, 3.0, 3.0], [2.0, -1.0, 2.0]]
    for expr, fn in SPELLINGS:
        out, gx = grad_of(fn, x)
        doc = ok("eval", expr, f"x={x}", "--json")
        assert doc["grads"]["x"]["torch"] == gx.tolist(), expr
        assert doc["grads"]["x"]["symbolic"]["value"] == gx.tolist(), expr
        assert doc["output"]["value"] == out.item(), expr


def test_indices_are_an_integer_output_without_gradient():
    doc = ok("eval", "x.max(1).indices", "x=[[1,2],[4,0]]", "--json")
    assert doc["output"]["value"] == [1, 0]
    assert doc["grads"] == {}


def test_misuse_is_refused_with_one_error_line():
    x = "x=[[1,2],[3,4]]"
    assert "values" in refused("eval", "x.max(0) * 2", x)
    assert "values" in refused("eval", "x.max(0).foo", x)
    assert "out of range" in refused("eval", "x.max(0)[2]", x)
    assert "unpack" in refused("eval", "a, b, c = x.max(0); a", x)
    assert "unpacked" in refused("eval", "a, b = x; a", x)


def test_grad_fn_is_max_backward0():
    r = run_cli("eval", "v = x.max(0).values; v.sum()", "x=[[1,2],[3,4]]", "--json")
    assert r.json()["forward"][0]["grad_fn"] == type(torch.tensor([[1.0]], requires_grad=True).max(0).values.grad_fn).__name__


def test_nan_is_selected_and_gets_the_gradient_as_in_torch():
    t = torch.tensor([[1.0, float("nan"), 0.0], [2.0, 5.0, 2.0]], dtype=torch.float64, requires_grad=True)
    t.max(1).values.sum().backward()
    doc = ok("eval", "x.max(1).values.sum()", "x=[[1, nan, 0], [2, 5, 2]]", "--json")
    assert doc["grads"]["x"]["torch"] == t.grad.tolist() == doc["grads"]["x"]["symbolic"]["value"]


def test_an_empty_dim_tuple_reduces_every_dim_as_torch():
    x = [[1.0, 2.0], [3.0, 5.0]]
    for expr, fn in (("x.sum(())", lambda t: t.sum(())), ("(x*x).mean(())", lambda t: (t * t).mean(())),
                     ("x.amax(())", lambda t: t.amax(()))):
        out, gx = grad_of(fn, x)
        doc = ok("eval", expr, f"x={x}", "--json")
        assert doc["output"]["value"] == out.item(), expr
        assert doc["grads"]["x"]["symbolic"]["value"] == gx.tolist() == doc["grads"]["x"]["torch"], expr


def test_sort_topk_and_var_mean_pick_outputs_like_torch():
    x = [[3.0, 1.0, 2.0], [0.5, 4.0, -1.0]]
    cases = [("torch.sort(x, descending=True).values[:, 0].sum()", lambda t: torch.sort(t, descending=True).values[:, 0].sum()),
             ("x.topk(2, dim=1)[0].prod()", lambda t: t.topk(2, dim=1)[0].prod()),
             ("v, m = torch.var_mean(x, 1, correction=0); (v * m).sum()",
              lambda t: (torch.var_mean(t, 1, correction=0)[0] * torch.var_mean(t, 1, correction=0)[1]).sum())]
    for expr, fn in cases:
        out, gx = grad_of(fn, x)
        doc = ok("eval", expr, f"x={x}", "--json")
        assert abs(doc["output"]["value"] - out.item()) < 1e-12, expr
        assert torch.allclose(torch.tensor(doc["grads"]["x"]["symbolic"]["value"], dtype=torch.float64), gx), expr


def test_huge_or_unsupported_norm_p_exits_2():
    for p in ("1e300", "'nuc'"):
        assert "error:" in refused("eval", f"norm(x, p={p})", "x=[1, -2]")
    doc = ok("eval", "norm(x, p=1e309)", "x=[1, -2]", "--json")  # 1e309 is inf: the max norm
    assert doc["output"]["value"] == 2.0 and doc["grads"]["x"]["torch"] == [0.0, -1.0]


def test_ops_lists_the_new_ops_with_their_rules():
    r = run_cli("ops", "--json")
    assert r.code == 0
    listed = {entry["name"]: entry for entry in r.json()}
    for name in ("clamp", "gelu", "softplus", "maximum", "prod", "var", "sort", "topk", "cumprod", "matrix_norm", "amax"):
        assert name in listed, name
        assert any(listed[name]["rules"].values()), (name, listed[name])
