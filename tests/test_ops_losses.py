"""Losses, the softmax family and distances (issue 14): the must-show examples through the CLI, and
the ``grad_fn`` of every sample of these ops equal to plain torch's (expected values from plain torch)."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from conftest import run_cli
from test_ops_registry import SAMPLES, explained

# the ops of this part of issue 14 (their samples live in their registry entries)
OPS = {"softmax", "log_softmax", "softmin", "cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy",
       "binary_cross_entropy_with_logits", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "poisson_nll_loss",
       "gaussian_nll_loss", "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss",
       "multilabel_soft_margin_loss", "cosine_embedding_loss", "triplet_margin_loss", "normalize",
       "cosine_similarity", "pairwise_distance", "cdist"}
OURS = [sid for sid in SAMPLES if sid.rsplit("-", 1)[0] in OPS]
T = torch.tensor([[1.0, -1.0, 2.5], [0.5, 0.75, -0.5]], dtype=torch.float64)


def grads_of(fn, **inputs):
    leaves = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in inputs.items()}
    out = fn(**leaves)
    out.backward()
    return out, {n: t.grad for n, t in leaves.items()}


def assert_like_torch(doc, ref, name, value):
    """Output, torch's and SymPy's gradient of ``name`` in ``doc`` equal plain torch's ``ref`` at ``value``."""
    out, want = grads_of(ref, **{name: value})
    assert doc["output"]["value"] == pytest.approx(out.item(), abs=1e-12)
    for side in (doc["grads"][name]["torch"], doc["grads"][name]["symbolic"]["value"]):
        assert torch.allclose(torch.tensor(side, dtype=torch.float64), want[name], atol=1e-12)


def test_cross_entropy_with_probability_targets_not_summing_to_one():
    x, y = [1.4, 0.3, -0.3], [-1, -1.4, -0.3]
    r = run_cli("eval", "F.cross_entropy(x, y)", f"x={json.dumps(x)}", f"y={json.dumps(y)}", "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    out, want = grads_of(lambda x, y: F.cross_entropy(x, y), x=x, y=y)
    assert doc["agree"] is True
    assert doc["output"]["value"] == pytest.approx(out.item(), abs=1e-12)
    for name in ("x", "y"):
        assert doc["grads"][name]["torch"] == pytest.approx(want[name].tolist(), abs=1e-12)
        assert doc["grads"][name]["symbolic"]["value"] == pytest.approx(want[name].tolist(), abs=1e-12)
    assert "sum(0, keepdim=True)" in doc["grads"]["x"]["symbolic"]["expr"]


@pytest.mark.parametrize("expr, ref", [
    ("F.cross_entropy(z, tensor([[0, 2], [1, 1]]))", lambda z: F.cross_entropy(z, torch.tensor([[0, 2], [1, 1]]))),
    ("F.cross_entropy(z, tensor([[0, -100], [1, 1]]))",
     lambda z: F.cross_entropy(z, torch.tensor([[0, -100], [1, 1]]))),
    ("F.cross_entropy(z, tensor([[0, 2], [1, 2]]), ignore_index=2)",
     lambda z: F.cross_entropy(z, torch.tensor([[0, 2], [1, 2]]), ignore_index=2)),
])
def test_cross_entropy_n_c_d_logits_and_ignore_index(expr, ref):
    z = [[[1.0, 2.0], [0.5, -1.0], [3.0, 1.0]], [[1.0, 1.5], [2.0, 0.0], [-0.5, 0.25]]]  # (N=2, C=3, d=2)
    r = run_cli("eval", expr, f"z={json.dumps(z)}", "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert_like_torch(doc, ref, "z", z)
    assert doc["agree"] is True


@pytest.mark.parametrize("sample_id", OURS)
def test_grad_fn_is_plain_torchs(sample_id: str):
    """The output's ``grad_fn`` is the one plain torch gives for the same call."""
    _, s = SAMPLES[sample_id]
    r, values, _ = explained(sample_id)
    assert r.code == 0, r.stderr
    leaves = [v.clone().requires_grad_(n not in s.const) for n, v in values.items()]
    want = type(s.ref(*leaves).grad_fn).__name__
    assert r.json()["output"]["grad_fn"] == want, (s.expr, want)


def test_every_op_of_this_part_is_registered_with_samples_and_listed():
    assert OPS <= {sid.rsplit("-", 1)[0] for sid in OURS}
    r = run_cli("ops", "--json")
    assert r.code == 0, r.stderr
    listed = {entry["name"]: entry for entry in r.json()}
    for name in OPS:  # each with its rule text
        assert listed[name]["rules"] and all(listed[name]["rules"].values()), name


@pytest.mark.parametrize("expr, ref", [
    ("x.softmax(-1)[0, 1] + F.log_softmax(x, dim=0)[1, 0] + F.softmin(x, 1)[1, 2]",
     lambda x: x.softmax(-1)[0, 1] + F.log_softmax(x, dim=0)[1, 0] + F.softmin(x, 1)[1, 2]),
    ("F.l1_loss(x, t) + F.smooth_l1_loss(x, t, beta=0.5) + F.huber_loss(x, t, delta=2.0)",
     lambda x: F.l1_loss(x, T) + F.smooth_l1_loss(x, T, beta=0.5) + F.huber_loss(x, T, delta=2.0)),
    ("F.cosine_similarity(x, t).sum() + F.pairwise_distance(x, t).sum() + torch.cdist(x, t).sum() + "
     "F.normalize(x, dim=0)[0, 1]",
     lambda x: F.cosine_similarity(x, T).sum() + F.pairwise_distance(x, T).sum() + torch.cdist(x, T).sum()
     + F.normalize(x, dim=0)[0, 1]),
])
def test_spellings_through_the_cli(expr, ref):
    x = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    r = run_cli("eval", expr, f"x={json.dumps(x)}", f"t={json.dumps(T.tolist())}", "--const", "t", "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert_like_torch(doc, ref, "x", x)
