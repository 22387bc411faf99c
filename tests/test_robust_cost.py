"""Bounded cost within the documented limits (issue 19): the cost of a Jacobian, of finite
differences, of optimizer steps, of output and of reading files is predicted before the work,
and past a cap the work is reduced or refused with a message naming the limit."""
from __future__ import annotations

import time

import pytest
import torch

from gradexplain.autograd import JacobianTooCostly, torch_jacobian
from gradexplain.parse import parse_program
from tests.conftest import run_cli


def _leaves(**values):
    return {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in values.items()}


@pytest.mark.parametrize("expr, values", [
    ("x*ones(5)", {"x": 2.0}),                                      # fewer inputs: forward mode
    ("W @ x", {"W": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "x": [1.0, -1.0, 2.0]}),  # fewer outputs: reverse
    ("b = zeros(3); b[0] = x[0]**2; b*x", {"x": [1.0, 2.0, 3.0]}),  # CopySlices
    ("softmax(x*y, 0)", {"x": [0.5, -1.0, 2.0], "y": 3.0}),
    ("y = x*1; y += x**2; y[1:]", {"x": [1.0, 2.0, 3.0]}),
])
def test_jacobian_equals_plain_torch(expr, values):
    program = parse_program(expr)
    leaves = _leaves(**values)
    ours = torch_jacobian(program, leaves)

    def plain(*xs):  # the same function written in plain torch, by eval of the EXPR text as Python
        env = dict(zip(values, xs), torch=torch, ones=torch.ones, zeros=torch.zeros,
                   softmax=torch.softmax)
        *stmts, last = expr.split(";")
        for s in stmts:
            exec(s.strip(), env)
        return eval(last.strip(), env)

    expected = torch.autograd.functional.jacobian(plain, tuple(t.detach() for t in leaves.values()))
    for name, e in zip(values, expected):
        assert torch.allclose(ours[name], e), name


def test_jacobian_of_a_long_output_is_one_forward_pass():
    start = time.monotonic()
    r = run_cli("eval", "--json", "x*ones(100000)", "x=2")  # was 10^5 backward passes (> 60 s, 3.2 GB)
    assert r.code == 0, r.stderr
    assert time.monotonic() - start < 20
    assert r.json()["jacobian"]["x"]["torch"] is not None


def test_jacobian_past_the_work_cap_is_a_reason_not_minutes():
    program = parse_program("outer(x, x)")
    with pytest.raises(JacobianTooCostly):
        torch_jacobian(program, _leaves(x=[1.0] * 100), work=10_000)


def test_finite_differences_are_capped_by_evaluations():
    # per-element FD on outer(x, y) would be 2·n runs of n² elements: the footprint makes it directional
    r = run_cli("eval", "--json", "outer(x, y).sum()", "x=ones(40)", "y=ones(40)", "--max-numeric", "10000")
    assert r.code == 0, r.stderr
    x = torch.ones(40, dtype=torch.float64, requires_grad=True)
    torch.outer(x, torch.ones(40, dtype=torch.float64)).sum().backward()
    grad = r.json()["grads"]["x"]
    assert grad["torch"] == x.grad.tolist()
    assert isinstance(grad["numeric"], dict) and "directions" in grad["numeric"]["method"]
    assert any("--max-numeric" in n for n in r.json()["notes"])


def test_training_memory_is_predicted_and_refused():
    r = run_cli("eval", "(w*w).sum()", "w=ones(1000000)", "--step", "adam", "--steps", "1000")
    assert r.code == 2 and "--steps" in r.stderr and "limit" in r.stderr


def test_big_tensors_are_summarised_in_json():
    r = run_cli("eval", "--json", "(x*x).sum()", "x=arange(1000)", "--max-json-values", "100")
    assert r.code == 0, r.stderr
    value = r.json()["inputs"]["x"]["value"]
    x = torch.arange(1000, dtype=torch.float64)
    assert value == {"summary": True, "shape": [1000], "min": 0.0, "max": 999.0, "mean": float(x.mean()),
                     "nonfinite": 0}


def test_document_budget_summarises_later_tensors():
    from gradexplain.report import document_budget, to_plain

    with document_budget(10):
        first, second = to_plain(torch.ones(8)), to_plain(torch.ones(8))
    assert first == [1.0] * 8 and second["summary"] is True


def test_jacobian_cap_is_an_option_named_in_the_reason():
    r = run_cli("eval", "--json", "x*2", "x=ones(30)", "--max-jacobian", "100")
    assert r.code == 0, r.stderr
    entry = r.json()["jacobian"]["x"]
    assert entry["torch"] is None and "--max-jacobian" in entry["reason"]
    r = run_cli("eval", "--json", "x*2", "x=ones(30)")  # the default builds it (torch: 2·I)
    assert r.json()["jacobian"]["x"]["torch"] == (2 * torch.eye(30, dtype=torch.float64)).tolist()


def test_step_record_cap_is_an_option():
    args = ("eval", "(w*w).sum()", "w=ones(1000)", "--step", "sgd", "--steps", "10")
    refused = run_cli(*args, "--max-step-record", "40000")  # 8 numbers per element per step: 5 steps fit
    assert refused.code == 2 and "--max-step-record" in refused.stderr and "at most 5 here" in refused.stderr
    assert "even one step" in run_cli(*args, "--max-step-record", "1000").stderr
    assert run_cli(*args).code == 0


def test_cost_options_must_not_be_negative():
    r = run_cli("eval", "2*x", "x=1", "--max-numeric", "-1")
    assert r.code == 2 and "--max-numeric must be 0 or more" in r.stderr


def test_check_takes_the_json_caps(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[[problem]]\nname = "sq"\nexpr = "(x*x).sum()"\ninputs = { x = "arange(50)" }\n')
    r = run_cli("check", str(f), "--json", "--max-json-values", "10")
    assert r.code == 0, r.stdout
    value = r.json()["problems"][0]["result"]["inputs"]["x"]["value"]
    assert value["summary"] is True and value["max"] == 49.0
