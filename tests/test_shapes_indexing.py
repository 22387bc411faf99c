"""Shapes, views, indexing and PyTorch's spellings of them, through the CLI (issue 13, items 3-6).

Expected values come from plain torch computed here.  Integer index tensors are passed as
``NAME=tensor([...])`` (an int64 input, as ``tensor([...])`` with integer literals is in EXPR)."""
from __future__ import annotations

import json
import math

import pytest
import torch

from conftest import run_cli


def ok(*args: str) -> dict:
    r = run_cli("eval", "--json", *args)
    assert r.code == 0, (args, r.stderr)
    return r.json()


def close(actual, expected) -> bool:
    got = torch.tensor(actual, dtype=torch.float64)
    return got.shape == expected.shape and torch.allclose(got, expected.double(), atol=1e-9)


def grads(fn, *values):
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    out = fn(*leaves)
    out.backward()
    return out, [t.grad for t in leaves]


LOGPROBS = [[-1.2, -0.3, -2.0], [-0.5, -1.5, -0.9], [-2.2, -0.1, -1.0], [-0.7, -0.8, -1.9]]


def test_nll_by_integer_indexing_with_range_is_closed_form():
    """The makemore spelling: ``-logprobs[range(n), Yb].mean()`` with Yb an int64 input."""
    yb = [1, 0, 2, 1]
    out, (g,) = grads(lambda lp: -lp[range(4), torch.tensor(yb)].mean(), LOGPROBS)
    doc = ok("n = 4; loss = -logprobs[range(n), Yb].mean(); loss", f"logprobs={json.dumps(LOGPROBS)}",
             f"Yb=tensor({yb})")
    entry = doc["grads"]["logprobs"]
    assert close(doc["output"]["value"], out.detach())
    assert close(entry["torch"], g) and close(entry["symbolic"]["value"], g)
    assert "index_put" in entry["symbolic"]["expr"] and "stack" not in entry["symbolic"]["expr"]
    assert "Yb" not in doc["grads"] and doc["inputs"]["Yb"]["requires_grad"] is False
    assert doc["agree"] is True


def test_embedding_lookup_accumulates_repeated_rows():
    """``C[Xb]``: IndexBackward0 adds the gradient of each repeated index; then ``emb.view(emb.shape[0], -1)``."""
    c = [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]]
    xb = [[0, 2], [2, 2], [1, 0]]
    w = [[1.0], [2.0], [-1.0], [0.5]]

    def ref(c, w):
        emb = c[torch.tensor(xb)]
        return (emb.view(emb.shape[0], -1) @ w).tanh().sum()

    out, (gc, gw) = grads(ref, c, w)
    doc = ok("emb = C[Xb]; h = emb.view(emb.shape[0], -1) @ W; h.tanh().sum()", f"C={json.dumps(c)}",
             f"Xb=tensor({xb})", f"W={json.dumps(w)}")
    assert close(doc["output"]["value"], out.detach())
    for name, want in (("C", gc), ("W", gw)):
        entry = doc["grads"][name]
        assert close(entry["torch"], want) and close(entry["symbolic"]["value"], want), name
    assert "index_put" in doc["grads"]["C"]["symbolic"]["expr"]
    names = {step["name"]: step["grad_fn"] for step in doc["forward"]}
    assert names["emb"] == "IndexBackward0"


def test_integer_index_tensor_inside_expr_and_index_select_spelling():
    x = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    out, (g,) = grads(lambda x: (x[:, torch.tensor([2, 2, 0])] ** 2).sum(), x)
    doc = ok("(x[:, tensor([2, 2, 0])]**2).sum()", f"x={json.dumps(x)}")
    assert close(doc["grads"]["x"]["symbolic"]["value"], g) and "index_add" in doc["grads"]["x"]["symbolic"]["expr"]


def test_shape_expressions_and_constants():
    x = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    expr = ("x.sum() / x.shape[0] + x.size(1) * torch.pi + len(x) * math.e + x.ndim + x.dim() + x.numel()"
            " + x[0, 0].item() * x.mean(axis=0, keepdims=True).sum()")

    def ref(x):
        return (x.sum() / x.shape[0] + x.size(1) * torch.pi + len(x) * math.e + x.ndim + x.dim() + x.numel()
                + x[0, 0].item() * x.mean(axis=0, keepdims=True).sum())

    out, (g,) = grads(ref, x)
    doc = ok(expr, f"x={json.dumps(x)}")
    assert math.isclose(doc["output"]["value"], float(out.detach()), rel_tol=1e-12)
    assert close(doc["grads"]["x"]["torch"], g) and close(doc["grads"]["x"]["symbolic"]["value"], g)


def test_detach_cuts_the_graph_and_clone_keeps_it():
    x = [1.0, -2.0, 3.0]
    _, (g,) = grads(lambda x: (x * x.detach() + x.clone() * 2).sum(), x)
    doc = ok("(x * x.detach() + x.clone() * 2).sum()", f"x={json.dumps(x)}")
    assert close(doc["grads"]["x"]["torch"], g) and close(doc["grads"]["x"]["symbolic"]["value"], g)
    graph = {n["node"] for n in doc["graph"]}
    assert "CloneBackward0" in graph


def test_masks_in_where_and_masked_fill():
    x = [[0.5, -1.0], [2.0, 0.0]]
    _, (g,) = grads(lambda x: torch.where((x > 0) & ~(x == 2), x * x, 3 * x).sum()
                    + x.masked_fill((x != 0) | (x < -0.5), 1.0).sum(), x)
    doc = ok("where((x > 0) & ~(x == 2), x*x, 3*x).sum() + x.masked_fill((x != 0) | (x < -0.5), 1.0).sum()",
             f"x={json.dumps(x)}")
    assert close(doc["grads"]["x"]["torch"], g) and close(doc["grads"]["x"]["symbolic"]["value"], g)


@pytest.mark.parametrize("expr, ref", [
    ("x[..., None, 1:].sum() * x[None].sum()", lambda x: x[..., None, 1:].sum() * x[None].sum()),
    ("(x.mT @ x).sum() + x.H.sum() * x.permute(1, 0).sum()", lambda x: (x.mT @ x).sum() + x.H.sum() * x.permute(1, 0).sum()),
    ("F.pad(x[None], (1, 2), mode='reflect').pow(2).sum()",
     lambda x: torch.nn.functional.pad(x[None], (1, 2), mode="reflect").pow(2).sum()),
    ("torch.swapaxes(x, 0, 1).flip(0).roll(1, 1).tril().pow(2).sum()",
     lambda x: torch.swapaxes(x, 0, 1).flip(0).roll(1, 1).tril().pow(2).sum()),
])
def test_views_compose(expr, ref):
    x = [[1.0, -2.0, 3.0], [0.5, 4.0, -1.0], [2.0, 1.0, 0.0]]
    out, (g,) = grads(ref, x)
    doc = ok(expr, f"x={json.dumps(x)}")
    assert math.isclose(doc["output"]["value"], float(out.detach()), rel_tol=1e-12)
    assert close(doc["grads"]["x"]["torch"], g) and close(doc["grads"]["x"]["symbolic"]["value"], g)


@pytest.mark.parametrize("expr, message", [
    ("x[::-1].sum()", "step must be greater than zero"),
    ("x[..., ...].sum()", "single ellipsis"),
    ("torch.linalg.relu(x)", "unknown function"),
    ("F.pad(x, (1, 1), mode='wrap')", "pad mode"),
])
def test_refused_as_torch_refuses(expr, message):
    r = run_cli("eval", expr, "x=[1, 2, 3]")
    assert r.code == 2 and message in r.stderr, r.stderr


def test_a_plain_list_value_stays_floating():
    doc = ok("(x * 2).sum()", "x=[1, 0, 2]")
    assert doc["inputs"]["x"]["requires_grad"] is True and doc["grads"]["x"]["torch"] == [2.0, 2.0, 2.0]


def test_split_chunk_unbind_give_several_outputs():
    x = [[1.0, 2.0], [3.0, -1.0], [0.5, 4.0], [2.0, 2.0], [-3.0, 1.0]]

    def ref(x):
        a, b, c = x.split(2)
        return (a.sum() * c.sum() + x.chunk(3)[1].pow(2).sum() + torch.unbind(x, 1)[0] @ x.unbind(1)[1])

    out, (g,) = grads(ref, x)
    doc = ok("a, b, c = x.split(2); a.sum() * c.sum() + x.chunk(3)[1].pow(2).sum() + torch.unbind(x, 1)[0] @ x.unbind(1)[1]",
             f"x={json.dumps(x)}")
    assert math.isclose(doc["output"]["value"], float(out.detach()), rel_tol=1e-12)
    entry = doc["grads"]["x"]
    assert close(entry["torch"], g) and close(entry["symbolic"]["value"], g)
    assert {"SplitBackward0", "UnbindBackward0"} <= {n["node"] for n in doc["graph"]}
