"""0-d and empty tensors that plain torch accepts never crash the symbolic side (issue 19, the
differential bench's "internal error" class): concatenation of 0-d and legacy-empty ``[0]``
tensors (torch's atleast_1d/2d promotion and its skipping of 1-D empties), rules whose shape
arithmetic divides by an empty dim, cumulative ops of a 0-d input, shape witnesses that are
comparisons.  Expected values come from plain torch, run here."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import run_cli


def _tensor(v) -> torch.Tensor:
    """A JSON value of the report (``"nan"``/``"inf"`` as strings) as a float64 tensor."""
    def conv(d):
        return [conv(x) for x in d] if isinstance(d, list) else float(d)

    return torch.tensor(conv(v), dtype=torch.float64)


def _plain(fn, inputs: dict[str, str], const: tuple[str, ...]) -> dict[str, torch.Tensor]:
    leaves = {n: torch.tensor(json.loads(text.replace("inf", "Infinity")), dtype=torch.float64,
                              requires_grad=n not in const) for n, text in inputs.items()}
    fn(**leaves).backward()
    return {n: t.grad for n, t in leaves.items() if n not in const}


def _check(expr: str, fn, const: tuple[str, ...] = (), **inputs: str) -> dict:
    """eval agrees, and torch's and SymPy's gradients both equal plain torch's (shape and value)."""
    args = ["eval", "--json", expr, *[f"{n}={v}" for n, v in inputs.items()]]
    r = run_cli(*args, *(["--const", ",".join(const)] if const else []))
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["agree"] is True
    for name, expected in _plain(fn, inputs, const).items():
        grad = doc["grads"][name]
        for side in (grad["torch"], grad["symbolic"]["value"]):
            got = _tensor(side)
            assert got.shape == expected.shape, (name, got, expected)
            torch.testing.assert_close(got, expected, equal_nan=True)
    return doc


# ----------------------------------------------------------------- concatenation: 0-d and legacy empties


@pytest.mark.parametrize("expr, fn, inputs", [
    # torch.hstack promotes a 0-d tensor to (1,), torch.vstack to (1, 1) (atleast_1d / atleast_2d)
    ("(hstack([x, y])*tensor([1., 2])).sum()", lambda x, y: (torch.hstack([x, y]) * torch.tensor([1.0, 2])).sum(),
     {"x": "2", "y": "3"}),
    ("(hstack([x, y])*tensor([1., 2, 3])).sum()", lambda x, y: (torch.hstack([x, y]) * torch.tensor([1.0, 2, 3])).sum(),
     {"x": "2", "y": "[3, 4]"}),
    ("(vstack([x, y])*tensor([[1.], [2]])).sum()",
     lambda x, y: (torch.vstack([x, y]) * torch.tensor([[1.0], [2]])).sum(), {"x": "2", "y": "[3]"}),
    ("(vstack([x, y])*tensor([[1., 2], [3, 4]])).sum()",
     lambda x, y: (torch.vstack([x, y]) * torch.tensor([[1.0, 2], [3, 4]])).sum(), {"x": "[5, 6]", "y": "[7, 8]"}),
    # a 1-D empty tensor is skipped by cat next to tensors of any shape; hstack joins along dim 0
    # when its first tensor is 1-D, so hstack([[], W]) is W itself
    ("(hstack([y, w])*w).sum()", lambda y, w: (torch.hstack([y, w]) * w).sum(), {"y": "[]", "w": "[[1, 2], [3, 4]]"}),
    ("(hstack([w, y])*w).sum()", lambda y, w: (torch.hstack([w, y]) * w).sum(), {"y": "[]", "w": "[[1, 2], [3, 4]]"}),
    ("(cat([y, w], dim=1)*w).sum()", lambda y, w: (torch.cat([y, w], dim=1) * w).sum(),
     {"y": "[]", "w": "[[1, 2], [3, 4]]"}),
    ("(cat([w, y], dim=-1)*w).sum()", lambda y, w: (torch.cat([w, y], dim=-1) * w).sum(),
     {"y": "[]", "w": "[[1, 2], [3, 4]]"}),
    ("cat([y, y], dim=1).sum()", lambda y: torch.cat([y, y], dim=1).sum(), {"y": "[]"}),
    ("vstack([y, w]).sum()", lambda y, w: torch.vstack([y, w]).sum(), {"y": "[]", "w": "[[], []]"}),
    ("hstack([x, w]).sum()", lambda x, w: torch.hstack([x, w]).sum(), {"x": "[]", "w": "0"}),
    # the bench's own examples: a 0-d value stacked with a vector, then reduced
    ("s0 = mse_loss(w, y); s1 = sqrt(s0); s2 = hstack([s0, s1]); s2.sum()",
     lambda w, y: torch.hstack([F.mse_loss(w, y), F.mse_loss(w, y).sqrt()]).sum(), {"y": "[0.25]", "w": "[[], []]"}),
    ("s0 = det(y); s2 = vstack([x, s0]); (s2*s2).sum()",
     lambda x, y: (torch.vstack([x, torch.det(y)]) ** 2).sum(), {"x": "0.25", "y": "[[3, 0.5], [1.5, -1]]"}),
])
def test_concatenation_of_0d_and_empty_tensors_as_torch(expr, fn, inputs):
    _check(expr, fn, **inputs)


def test_concatenation_formula_of_a_0d_input_reads_back():
    doc = _check("(hstack([x, y])*tensor([1., 2])).sum()",
                 lambda x, y: (torch.hstack([x, y]) * torch.tensor([1.0, 2])).sum(), x="2", y="3")
    formula = doc["grads"]["y"]["symbolic"]["expr"]
    back = run_cli("eval", "--json", formula, "x=2", "y=3")
    assert back.code == 0, back.stderr
    assert back.json()["output"]["value"] == 2.0


# ----------------------------------------------------------------- rules over empty tensors


def test_losses_over_an_empty_class_dim():
    # a mean over 0 classes: torch's loss is nan and the gradient of the empty input is empty
    _check("multilabel_soft_margin_loss(w, tensor([1]), w)",
           lambda w: F.multilabel_soft_margin_loss(w, torch.tensor([1]), w), w="[[], []]")
    _check("multilabel_soft_margin_loss(w, tensor(0), v)",  # the weight is not empty: its gradient is 0
           lambda w, v: F.multilabel_soft_margin_loss(w, torch.tensor(0), v), w="[[], []]", v="[2]")
    _check("cross_entropy(z, t)", lambda z, t: F.cross_entropy(z, t), const=("t",), z="[[], []]", t="[[], []]")
    _check("cross_entropy(z, t, label_smoothing=0.1)", lambda z, t: F.cross_entropy(z, t, label_smoothing=0.1),
           const=("t",), z="[[], []]", t="[[], []]")


def test_batch_norm_of_an_empty_batch_with_mismatched_statistics():
    # torch checks nothing for an empty input: (2, 0) running statistics and a (1,) weight pass; no
    # gradient flows back from the empty output, so the weight's is 0 (its rule's reshape cannot run)
    _check("batch_norm(w, w, w, y, y, training=False).sum()",
           lambda w, y: F.batch_norm(w, w.detach(), w.detach(), y, y, training=False).sum(), w="[[], []]", y="[-0.0]")


def test_attention_without_features():
    # q and k with no features: the scores are 0 at any scale, the weights uniform (torch's value, not nan)
    _check("scaled_dot_product_attention(q, q, v).sum()", lambda q, v: F.scaled_dot_product_attention(q, q, v).sum(),
           q="[[], []]", v="[[1, 2, 3], [4, 5, 6]]")
    _check("scaled_dot_product_attention(y, y, y).sum()", lambda y: F.scaled_dot_product_attention(y, y, y).sum(),
           y="[[], []]")


@pytest.mark.parametrize("x, w", [("[1.5]", "[2]"), ("[]", "[]"), ("[[1, 2], [3, 4], [5, 6]]", "[7, 8]")])
def test_linear_with_a_weight_vector(x, w):
    # F.linear(x, w) with a 1-D weight is x @ w: the feature dim is gone from the output
    _check("(linear(x, w)**2).sum()", lambda x, w: (F.linear(x, w) ** 2).sum(), x=x, w=w)


@pytest.mark.parametrize("b", ["2", "[[1], [2]]", "[1, 0, 2]"])
def test_cosine_similarity_broadcasts_before_the_norms(b):
    # torch broadcasts x1 and x2 first: a (2, 1) or 0-d x2 has the norm of its broadcast rows
    _check("cosine_similarity(a, b, dim=-1).sum()", lambda a, b: F.cosine_similarity(a, b, dim=-1).sum(),
           a="[[1, 2, 3], [4, 5, 7]]", b=b)


def test_jacobian_that_torch_cannot_build_is_exit_2():
    # clamp whose bounds broadcast past its input: torch's forward runs, its backward raises
    y, w = torch.tensor([7.0], requires_grad=True), torch.ones(3, 2)
    with pytest.raises(RuntimeError):
        torch.clamp(y, torch.tensor(-1.0), w).sum().backward()
    r = run_cli("eval", "clamp(y, x, w)", "y=[7]", "x=-1", "w=[[1, 2], [3, 4], [5, 6]]")
    assert r.code == 2 and r.stderr.startswith("error: backward(): output with shape [1]")


def test_backward_that_torch_refuses_is_exit_2():
    # an empty tensor read as a tuple of index tensors is no index at all: torch refuses it (here, at
    # the call; a forward that ran anyway meets an IndexError in backward(), which is exit 2 too)
    x = torch.zeros(0, dtype=torch.float64, requires_grad=True)
    with pytest.raises(TypeError):
        x.index_put(x, x)
    r = run_cli("eval", "index_put(x, x, x).sum()", "x=[]")
    assert r.code == 2 and r.stderr.startswith("error: ")
    assert "Traceback" not in r.stderr and "--debug" not in r.stderr


# ----------------------------------------------------------------- 0-d inputs


@pytest.mark.parametrize("value, dim", [("2", 0), ("inf", -1), ("-inf", 0)])
def test_logcumsumexp_of_a_0d_input_as_torch(value, dim):
    # torch passes g through for a 0-d input, even at ±inf (a 1-element vector gives nan there)
    x = torch.tensor(float(value), dtype=torch.float64, requires_grad=True)
    torch.logcumsumexp(x, dim).backward()
    r = run_cli("eval", "--json", f"logcumsumexp(x, dim={dim})", f"x={value}")
    assert r.code == 0, r.stderr
    grad = r.json()["grads"]["x"]
    assert grad["torch"] == float(x.grad) == grad["symbolic"]["value"]
    assert not math.isnan(float(x.grad))


def test_einsum_with_the_empty_equation_of_a_0d_operand():
    # torch.einsum('', x) is x itself for a 0-d x; the rule reads the equation's default
    _check("einsum('', x)*x", lambda x: torch.einsum("", x) * x, x="3")


@pytest.mark.parametrize("expr, fn", [
    # rules that write a's shape back: a 0-d a is reshape(()), never reshape() or reshape(,)
    ("(repeat_interleave(x, 2)*tensor([1., 2])).sum()", lambda x: (torch.repeat_interleave(x, 2) * torch.tensor([1.0, 2])).sum()),
    ("(take_along_dim(x, tensor([0, 0]))*tensor([1., 2])).sum()",
     lambda x: (torch.take_along_dim(x, torch.tensor([0, 0])) * torch.tensor([1.0, 2])).sum()),
    ("x.permute(())*2", lambda x: x.permute(()) * 2),
    ("(x.repeat(2)*tensor([1., 2])).sum()", lambda x: (x.repeat(2) * torch.tensor([1.0, 2])).sum()),
    # torch unfolds a 0-d tensor as one window of itself
    ("(x.unfold(0, 1, 1)*3).sum()", lambda x: (x.unfold(0, 1, 1) * 3).sum()),
    # the rule zeros_like(a).index_add(0, index, g) simplifies to (0).index_add(0, tensor([0]), 1): a number
    # where torch wants a tensor is made one
    ("index_select(x, 0, tensor([0])).sum()", lambda x: torch.index_select(x, 0, torch.tensor([0])).sum()),
])
def test_rules_that_restore_a_0d_shape(expr, fn):
    _check(expr, fn, x="3")


def test_comparison_is_never_a_shape_witness():
    # the gradient simplifies to 0; the only tensor of its shape in the formula was (1 - w >= 0),
    # which EXPR spells only as a where() condition and which is not floating
    _check("s0 = hinge_embedding_loss(w, tensor(0)); s1 = div(s0, s0); s1.sum()",
           lambda w: (F.hinge_embedding_loss(w, torch.tensor(0)) / F.hinge_embedding_loss(w, torch.tensor(0))).sum(),
           w="[[0.5, 1], [-2, -1], [-2, 0.25]]")


@pytest.mark.parametrize("expr, inputs", [
    ("(x*2).sum()", {"x": "[]"}),
    ("(x*y).sum()", {"x": "[[], []]", "y": "[2]"}),
    ("(cat([w, y], dim=1)*w).sum()", {"y": "[]", "w": "[[1, 2], [3, 4]]"}),
])
def test_hessian_with_an_empty_input(expr, inputs):
    # an empty input's blocks are empty; the others are torch.func.hessian's (text view too)
    args = [f"{n}={v}" for n, v in inputs.items()]
    r = run_cli("eval", "--json", expr, *args, "--hessian")
    assert r.code == 0, r.stderr
    values = {n: torch.tensor(json.loads(v), dtype=torch.float64) for n, v in inputs.items()}
    names = list(values)

    def f(*ts):
        env = dict(zip(names, ts))
        return {"(x*2).sum()": lambda: (env["x"] * 2).sum(), "(x*y).sum()": lambda: (env["x"] * env["y"]).sum(),
                "(cat([w, y], dim=1)*w).sum()": lambda: (torch.cat([env["w"], env["y"]], dim=1) * env["w"]).sum()}[expr]()

    expected = torch.func.hessian(f, argnums=tuple(range(len(names))))(*values.values())
    hessian = r.json()["hessian"]
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            got, want = _tensor(hessian[a][b]["torch"]).reshape(-1), expected[i][j].reshape(-1)  # JSON [] has no shape
            assert torch.equal(got, want), (a, b, got, want)
            assert hessian[a][b]["agree"] is True
    assert run_cli("eval", expr, *args, "--hessian").code == 0
