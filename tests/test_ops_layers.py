"""Layers and linear algebra (issue 14): PyTorch's own grad_fn, closed forms written with whole-tensor
ops (the gradient of a convolution is a transposed convolution), and a small CNN explained in full.

Expected values come from plain torch computed here."""
from __future__ import annotations

import json
import time

import pytest
import torch
import torch.nn.functional as F

from conftest import run_cli
from gradexplain.ops import REGISTRY
from test_ops_registry import SAMPLES, explained

FAMILIES = ("gradexplain.ops.conv", "gradexplain.ops.einsum", "gradexplain.ops.pool", "gradexplain.ops.linalg", "gradexplain.ops.linalg_dec",
            "gradexplain.ops.norm_layers", "gradexplain.ops.layers")
OURS = [sid for sid, (spec, s) in SAMPLES.items() if spec.torch is not None and spec.torch.__module__ in FAMILIES]


def _grad_fn_name(t: torch.Tensor) -> str | None:
    return None if t.grad_fn is None else type(t.grad_fn).__name__


@pytest.mark.parametrize("sample_id", OURS)
def test_grad_fn_is_plain_torchs(sample_id: str):
    """The node PyTorch records for the op is the one plain torch records for the same call (the eval
    is the one test_ops_registry already ran for this sample)."""
    _, s = SAMPLES[sample_id]
    r, values, _ = explained(sample_id)
    leaves = [v.clone().requires_grad_(n not in s.const) for n, v in values.items()]
    assert r.code == 0, r.stderr
    assert r.json()["output"]["grad_fn"] == _grad_fn_name(s.ref(*leaves)), s.expr


def _symbolic(expr: str, *inputs: str) -> dict:
    r = run_cli("eval", expr, *inputs, "--json", "--no-numeric")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["agree"] is True
    return {name: entry["symbolic"]["expr"] for name, entry in doc["grads"].items()}


def test_conv2d_input_gradient_is_a_transposed_convolution():
    x = torch.randn(1, 1, 5, 5, generator=torch.Generator().manual_seed(1))
    exprs = _symbolic("conv2d(x, W, stride=2, padding=1).sum()", f"x={json.dumps(x.tolist())}",
                      "W=[[[[1, 2, 0], [0, -1, 1], [2, 0, 1]]]]")
    assert exprs["x"].startswith("conv_transpose2d(") and "stride=2, padding=1" in exprs["x"]
    assert exprs["W"].startswith("conv2d_weight(x, ")


CNN = ("h = max_pool2d(relu(conv2d(x, W1, b1)), 2); "
       "cross_entropy(linear(h.reshape(1, -1), W2, b2), tensor([1]))")


def _cnn_inputs(n: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(n)
    side = (n - 2) // 2
    shapes = {"x": (1, 1, n, n), "W1": (2, 1, 3, 3), "b1": (2,), "W2": (3, 2 * side * side), "b2": (3,)}
    return {k: torch.round(torch.randn(s, generator=gen, dtype=torch.float64) * 1000) / 1000 for k, s in shapes.items()}


def _cnn_reference(v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    leaves = {k: t.clone().requires_grad_(k != "x") for k, t in v.items()}
    h = F.max_pool2d(F.relu(F.conv2d(leaves["x"], leaves["W1"], leaves["b1"])), 2)
    F.cross_entropy(F.linear(h.reshape(1, -1), leaves["W2"], leaves["b2"]), torch.tensor([1])).backward()
    return {k: t.grad for k, t in leaves.items() if k != "x"}


def test_two_layer_cnn_explained_in_closed_form_per_parameter():
    """conv2d → relu → max_pool2d → flatten → linear → cross_entropy on a 1×1×6×6 image, in full (with
    the finite-difference check), in under 10 s; every parameter's gradient a whole-tensor formula."""
    v = _cnn_inputs(6)
    start = time.perf_counter()
    r = run_cli("eval", CNN, *(f"{k}={json.dumps(t.tolist())}" for k, t in v.items()), "--const", "x", "--json")
    elapsed = time.perf_counter() - start
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["agree"] is True
    for name, grad in _cnn_reference(v).items():
        entry = doc["grads"][name]
        assert torch.allclose(torch.tensor(entry["symbolic"]["value"], dtype=torch.float64), grad, atol=1e-9)
        assert torch.allclose(torch.tensor(entry["torch"], dtype=torch.float64), grad, atol=1e-9)
        assert "stack(" not in entry["symbolic"]["expr"] and entry["numeric_agree"] is True
    assert doc["grads"]["W1"]["symbolic"]["expr"].startswith("conv2d_weight(x, max_pool2d_backward(")
    assert elapsed < 10, elapsed


def test_cnn_formula_does_not_grow_with_the_image():
    """The symbolic formula's size follows the program, not the data: 6×6 and 28×28 differ only in
    the literal shapes they mention."""
    texts = {}
    for n in (6, 28):
        v = _cnn_inputs(n)
        r = run_cli("eval", CNN, *(f"{k}={json.dumps(t.tolist())}" for k, t in v.items()), "--const", "x",
                    "--json", "--no-numeric")
        assert r.code == 0, r.stderr
        texts[n] = {k: e["symbolic"]["expr"] for k, e in r.json()["grads"].items()}
        for name, grad in _cnn_reference(v).items():
            assert torch.allclose(torch.tensor(r.json()["grads"][name]["symbolic"]["value"]), grad, atol=1e-9)
    for name in texts[6]:
        assert abs(len(texts[28][name]) - len(texts[6][name])) < 20, name


def test_matrix_function_closed_forms():
    """∂/∂A of logdet(A) is inv(A).T (batched: .transpose(-2, -1)); of det(A) it is det(A)*inv(A).T;
    values against plain torch."""
    A = torch.tensor([[2.0, 0.5, 0.1], [0.3, 1.5, 0.2], [0.0, 0.4, 1.0]], dtype=torch.float64)
    for expr, fn, want_text in (("logdet(A)", torch.logdet, "inv(A).T"),
                                ("torch.linalg.det(A)", torch.linalg.det, "det(A)*inv(A).T")):
        r = run_cli("eval", expr, f"A={json.dumps(A.tolist())}", "--json")
        assert r.code == 0, r.stderr
        entry = r.json()["grads"]["A"]
        assert entry["symbolic"]["expr"] == want_text
        leaf = A.clone().requires_grad_()
        fn(leaf).backward()
        assert torch.allclose(torch.tensor(entry["symbolic"]["value"], dtype=torch.float64), leaf.grad, atol=1e-12)
    batch = torch.stack([A, A.T + torch.eye(3, dtype=torch.float64)])
    exprs = _symbolic("logdet(A).sum()", f"A={json.dumps(batch.tolist())}")
    assert "inv(A).transpose(-2, -1)" in exprs["A"]


def test_embedding_padding_row_gets_no_gradient():
    """torch's convention (not the forward's slope): the padding_idx row's gradient is zero."""
    W = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    r = run_cli("eval", "(F.embedding(tensor([1, 0, 1]), W, padding_idx=0)**2).sum()", f"W={json.dumps(W.tolist())}",
                "--json")
    assert r.code == 0, r.stderr
    leaf = W.clone().requires_grad_()
    (F.embedding(torch.tensor([1, 0, 1]), leaf, padding_idx=0) ** 2).sum().backward()
    entry = r.json()["grads"]["W"]
    assert entry["torch"] == leaf.grad.tolist() == entry["symbolic"]["value"]
    assert "padding_idx=0" in entry["symbolic"]["expr"]


def test_channel_dropout_masks_whole_channels():
    x = torch.arange(1.0, 17.0, dtype=torch.float64).reshape(2, 2, 2, 2)
    r = run_cli("eval", "dropout2d(x, 0.5).sum()", f"x={json.dumps(x.tolist())}", "--seed", "3", "--json")
    assert r.code == 0, r.stderr
    grad = torch.tensor(r.json()["grads"]["x"]["torch"])
    assert set(grad.flatten().tolist()) <= {0.0, 2.0}
    assert (grad == grad[:, :, :1, :1]).all()  # one draw per (sample, channel)
    assert r.json()["grads"]["x"]["symbolic"]["value"] == grad.tolist()
