"""What plain torch refuses, gradexplain refuses too (issue 19: exit 2 only where torch also rejects
the program, exit 0 only where its torch side is plain torch's), found by bench/differential.py.
Each test runs the plain-torch spelling here and checks that it raises, then that gradexplain
exits 2 with one `error:` line; the spellings torch accepts next to them still work."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import run_cli


def _leaf(v):
    return torch.tensor(v, dtype=torch.float64, requires_grad=True)


def _refused(expr: str, *inputs: str) -> str:
    r = run_cli("eval", expr, *inputs)
    assert r.code == 2, (r.code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    return lines[0]


def _value(expr: str, *inputs: str) -> dict:
    r = run_cli("eval", "--json", expr, *inputs)
    assert r.code == 0, r.stderr
    return r.json()


# --------------------------------------------------------------- min/max of two tensors take no dim


@pytest.mark.parametrize("expr, call", [
    ("min(x, x, dim=1)", lambda x: torch.min(x, x, dim=1)),
    ("max(x, x, 0)", lambda x: torch.max(x, x, 0)),
    ("x.max(x, keepdim=True)", lambda x: x.max(x, keepdim=True)),
])
def test_min_max_of_two_tensors_with_a_dim_is_refused(expr, call):
    x = _leaf([[2.0, 2.0], [1.0, 3.0]])
    with pytest.raises(TypeError):
        call(x)
    assert "must be int, not Tensor" in _refused(f"{expr}.sum()", "x=[[2,2],[1,3]]")


def test_min_of_two_tensors_and_min_along_a_dim_still_work():
    x = _leaf([[2.0, 2.0], [1.0, 3.0]])
    torch.minimum(x, x * 0 + 2).sum().backward()
    assert _value("min(x, x*0 + 2).sum()", "x=[[2,2],[1,3]]")["grads"]["x"]["torch"] == x.grad.tolist()
    values = torch.min(x.detach(), 1).values
    assert _value("min(x, 1)[0]", "x=[[2,2],[1,3]]", "--const", "x")["output"]["value"] == values.tolist()


# ----------------------------------------------------------- full_like's fill value is a Number


@pytest.mark.parametrize("expr, fill", [
    ("full_like(x, y).sum()", lambda x: _leaf(3.0)),  # a 0-d tensor that requires grad
    ("full_like(x, x.mean()).sum()", lambda x: x.mean()),
    ("full_like(x, z).sum()", lambda x: torch.tensor([3.0], dtype=torch.float64)),  # one element, but 1-d
])
def test_full_like_with_a_tensor_that_torch_cannot_take_as_a_number_is_refused(expr, fill):
    x = _leaf([1.0, 2.0])
    with pytest.raises(TypeError, match="must be Number, not Tensor"):
        torch.full_like(x, fill(x))
    assert "must be Number, not Tensor" in _refused(expr, "x=1,2", "y=3", "z=[3]", "--const", "z")


def test_full_like_with_a_number_or_a_constant_0d_tensor_works():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert _value("full_like(x, y)", "x=1,2", "y=3", "--const", "y")["output"]["value"] == \
        torch.full_like(x, torch.tensor(3.0, dtype=torch.float64)).tolist()
    assert _value("full_like(x, numel(x))", "x=1,2")["output"]["value"] == torch.full_like(x, x.numel()).tolist()


# ------------------------------------------- sizes and numbers read off a tensor are not tensors


@pytest.mark.parametrize("expr, call", [
    ("size(x).sum()", lambda x: x.size().sum()),
    ("s = x.size(); exp(s).sum()", lambda x: torch.exp(x.size())),
    ("pairwise_distance(x.size(), x.size()).sum()", lambda x: F.pairwise_distance(x.size(), x.size())),
])
def test_a_torch_size_where_a_tensor_goes_is_refused(expr, call):
    with pytest.raises((TypeError, AttributeError)):
        call(_leaf([[1.0, 2.0, 3.0]]))
    assert "torch.Size" in _refused(expr, "x=[[1,2,3]]")


@pytest.mark.parametrize("expr, call", [
    ("s = numel(x); s.sum()", lambda x: x.numel().sum()),
    ("exp(x.numel())", lambda x: torch.exp(x.numel())),
    ("hardtanh(x.dim())", lambda x: F.hardtanh(x.dim())),
    ("exp(x.sum().item())", lambda x: torch.exp(x.sum().item())),
    ("maximum(x, x.numel()).sum()", lambda x: torch.maximum(x, x.numel())),  # not only as the first
    ("s = x.dim(); s = s*1; s += s; s.sum()", lambda x: (x.dim() * 1 + x.dim()).sum()),
])
def test_a_number_read_off_a_tensor_as_the_tensor_of_an_op_is_refused(expr, call):
    with pytest.raises((TypeError, AttributeError)):
        call(_leaf([1.0, 2.0]))
    assert "Python number read off a tensor" in _refused(expr, "x=1,2")


@pytest.mark.parametrize("expr, ref", [
    ("(x.numel() * x).sum()", lambda x: (x.numel() * x).sum()),
    ("s = x.dim(); s = s*1; s += x; s.sum()", lambda x: (x.dim() * 1 + x).sum()),  # int += tensor rebinds
    ("pow(numel(x), x).sum()", lambda x: torch.pow(x.numel(), x).sum()),
    ("xlogy(numel(x), x).sum()", lambda x: torch.xlogy(x.numel(), x).sum()),
    ("clamp(x, max=numel(x)).sum()", lambda x: torch.clamp(x, max=x.numel()).sum()),
    ("(-x.size(0) * x / len(x)).sum()", lambda x: (-x.size(0) * x / len(x)).sum()),
    ("x.view(x.size()).sum()", lambda x: x.view(x.size()).sum()),
    ("where(x > 1, numel(x), x).sum()", lambda x: torch.where(x > 1, x.numel(), x).sum()),
    ("lerp(x, 2*x, x.dim()).sum()", lambda x: torch.lerp(x, 2 * x, x.dim()).sum()),
    # torch's function on two numbers gives a tensor (the operator a number): .sum() works on it
    ("s = sub(x.dim(), 3); s = s*1; s += 1; (s.sum() * x).sum()",
     lambda x: (torch.sub(x.dim(), 3).add_(1).sum() * x).sum()),
])
def test_sizes_and_numbers_where_torch_takes_them_still_work(expr, ref):
    x = _leaf([1.0, 3.0])
    ref(x).backward()
    assert _value(expr, "x=1,3")["grads"]["x"]["torch"] == pytest.approx(x.grad.tolist())


def test_a_size_output_is_shown_as_its_values():
    assert _value("x.size()", "x=[[1,2,3]]")["output"]["value"] == list(torch.ones(1, 3).size())


# -------------------------------------------- accepted on purpose (README, "deviations"), as torch computes


def test_softmax_without_dim_is_torch_functional_implicit_dim():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [5.0, 2.0]]], dtype=torch.float64)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        expected = F.softmax(x)
    got = _value("softmax(x)", "x=[[[1,2],[3,4]],[[0,1],[5,2]]]", "--const", "x")["output"]["value"]
    assert torch.allclose(torch.tensor(got, dtype=torch.float64), expected, rtol=1e-12)


def test_batch_norm_without_running_statistics_is_none_for_them():
    x = _leaf([[1.0, 2.0], [3.0, 5.0], [0.0, 1.0]])
    (F.batch_norm(x, None, None, training=True) ** 3).sum().backward()
    doc = _value("(batch_norm(x, training=True) ** 3).sum()", "x=[[1,2],[3,5],[0,1]]")
    assert torch.allclose(torch.tensor(doc["grads"]["x"]["torch"], dtype=torch.float64), x.grad, rtol=1e-12)


def test_heaviside_has_torch_heaviside_value_and_a_zero_gradient_in_its_input():
    a = torch.tensor([float("nan"), -0.0, 2.0, -1.0], dtype=torch.float64)
    doc = _value("heaviside(a, v).sum()", "a=[nan,-0.0,2,-1]", "v=0.5")
    assert doc["output"]["value"] == torch.heaviside(a, torch.tensor(0.5, dtype=torch.float64)).sum().item()
    assert doc["grads"]["a"]["torch"] == [0.0, 0.0, 0.0, 0.0]
    assert doc["grads"]["v"]["torch"] == float((a == 0).sum())  # g where a == 0


def test_index_put_with_a_tensor_for_its_tuple_of_indices_is_refused():
    y = _leaf(3.0)
    with pytest.raises(TypeError, match="must be tuple of Tensors, not Tensor"):
        torch.index_put(y, y, y)
    assert "must be tuple of Tensors" in _refused("index_put(y, y, y)", "y=3")


def test_gaussian_nll_loss_takes_a_float_var_and_refuses_an_int_one_as_torch():
    x = _leaf([1.0, 2.0])
    F.gaussian_nll_loss(x, x * 2, x.sum().item() / 12).backward()
    doc = _value("gaussian_nll_loss(x, x*2, x.sum().item()/12)", "x=1,2")
    assert doc["grads"]["x"]["torch"] == pytest.approx(x.grad.tolist())
    with pytest.raises(TypeError):
        F.gaussian_nll_loss(x, x * 2, x.dim())
    _refused("gaussian_nll_loss(x, x*2, x.dim())", "x=1,2")
