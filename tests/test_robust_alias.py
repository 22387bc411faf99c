"""Aliasing and in-place semantics (issue 19): in-place writes behave as torch's, or are refused
where the IR cannot model them (a clear exit 2 beats a false verdict)."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import run_cli


@pytest.mark.parametrize("expr", [
    "y = x*1; z = y; z += 1; (y*x).sum()",          # z is y: torch changes y too
    "y = x*1; v = y[0:1]; v *= 2; (y*x).sum()",     # v views y: the write goes through
    "y = x*1; v = y[0:1]; y *= 2; (v*x[0]).sum()",  # y changes under its view v
    "y = x*1; v = y.T; v[0] = 5; (y*x).sum()",      # indexed assignment through a view
])
def test_in_place_write_to_a_shared_tensor_is_refused(expr):
    r = run_cli("eval", expr, "x=1,2")
    assert r.code == 2 and "in place" in r.stderr and "Traceback" not in r.stderr


def test_in_place_on_a_copy_agrees_with_torch():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    y = x * 1
    z = y * 1
    z += 1
    (y * z).sum().backward()
    r = run_cli("eval", "--json", "y = x*1; z = y*1; z += 1; (y*z).sum()", "x=1,2")
    assert r.code == 0, r.stderr
    assert r.json()["grads"]["x"]["torch"] == x.grad.tolist()


def test_in_place_on_a_const_input_is_seen_by_every_side():
    # torch changes the --const tensor itself; symbolic and numeric sides must see the program's value,
    # not a tensor the torch run already changed
    x = torch.tensor(1.0, dtype=torch.float64)
    w = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    x += 1
    (x * w).sum().backward()
    r = run_cli("eval", "--json", "x += 1; (x*w).sum()", "x=1", "w=2", "--const", "x")
    assert r.code == 0, r.stderr
    grad = r.json()["grads"]["w"]
    assert grad["torch"] == float(w.grad) == grad["symbolic"]["value"]
    assert grad["numeric_agree"] is True
    assert r.json()["inputs"]["x"]["value"] == 1.0  # the value as given
