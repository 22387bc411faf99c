"""``gradexplain run SCRIPT``: the user's own PyTorch code, explained per backward().

Expected gradients come from plain torch: each script is also run with nothing but a wrapper around
``Tensor.backward`` that reads the ``.grad`` of the leaves autograd's graph reaches (its
``AccumulateGrad`` nodes), right after each call.
"""
from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import torch

from conftest import ROOT, run_cli

SCRIPTS = ROOT / "samples" / "scripts"
DATA = ROOT / "tests" / "data"
SMALL = sorted(p for p in SCRIPTS.glob("*.py") if "mlp" not in p.name)


@pytest.fixture(autouse=True)
def _float32():
    """A script starts as `python` starts it: float32 by default."""
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(torch.float64)


def _leaves(t: torch.Tensor) -> list[torch.Tensor]:
    seen, stack, leaves = set(), [t.grad_fn], []
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if hasattr(fn, "variable"):
            leaves.append(fn.variable)
        stack.extend(n for n, _ in fn.next_functions)
    return leaves


def plain_grads(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[torch.Tensor]]:
    """Run the script with plain torch; the leaves' .grad right after each Tensor.backward()."""
    calls: list[list[torch.Tensor]] = []
    original = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        leaves = _leaves(self)
        original(self, *args, **kwargs)
        calls.append([leaf.grad.clone() for leaf in leaves if leaf.grad is not None])

    monkeypatch.setattr(torch.Tensor, "backward", backward)
    monkeypatch.chdir(path.parent)
    runpy.run_path(str(path), run_name="__main__")
    monkeypatch.undo()
    return calls


def documents(*args: str) -> tuple[list[dict], object]:
    r = run_cli("run", *args)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()], r


def _find(expected: torch.Tensor, got: dict) -> bool:
    return any(torch.tensor(g["torch"]).shape == expected.shape
               and torch.equal(torch.tensor(g["torch"], dtype=expected.dtype), expected) for g in got.values())


@pytest.mark.parametrize("script", SMALL, ids=lambda p: p.stem)
def test_every_sample_script_matches_plain_torch(script: Path, monkeypatch: pytest.MonkeyPatch):
    expected = plain_grads(script, monkeypatch)
    docs, r = documents(str(script), "--json", "--all")
    assert r.code == 0, r.stderr
    assert len(docs) == len(expected) >= 1
    for k, (doc, grads) in enumerate(zip(docs, expected)):
        assert doc["schema"] == "gradexplain/1" and doc["agree"] is True
        assert doc["call"]["index"] == k and doc["call"]["line"] >= 1 and "backward" in doc["call"]["code"]
        assert all(f["source"]["code"] for f in doc["forward"])
        assert len(doc["grads"]) == len(grads)
        for g in grads:  # bit-identical to what the script's own .grad holds
            assert _find(g, doc["grads"]), (g, doc["grads"])
        for name, entry in doc["grads"].items():
            assert entry["symbolic"]["expr"], name


def test_seed001_zero_grad_between_calls():
    docs, _ = documents(str(SCRIPTS / "seed001_dot_then_sum.py"), "--json")
    first, second = docs
    assert first["grads"]["x"]["torch"] == [0, 4, 8, 12] and first["grads"]["x"]["symbolic"]["expr"] == "4*x"
    assert second["grads"]["x"]["torch"] == [1, 1, 1, 1]
    assert any("x.grad.zero_()" in n for n in second["notes"])
    assert first["forward"][0]["source"] == {"line": 6, "code": "y = 2 * torch.dot(x, x)"}
    assert first["call"] == {"file": str(SCRIPTS / "seed001_dot_then_sum.py"), "line": 7, "code": "y.backward()",
                             "index": 0, "kind": "backward"}


def test_seed003_vjp_and_jacobian():
    a = torch.tensor([[2.0, 4.0]], requires_grad=True)
    b = torch.zeros(1, 2)
    b[0, 0] = a[0, 0] ** 2 + a[0, 1]
    b[0, 1] = a[0, 1] ** 3 + a[0, 0]
    jac = torch.autograd.functional.jacobian(lambda t: 2 * torch.stack([t[0, 0] ** 2 + t[0, 1], t[0, 1] ** 3 + t[0, 0]]),
                                             a.detach())
    (doc,), _ = documents(str(SCRIPTS / "seed003_vjp.py"), "--json")
    assert doc["grads"]["a"]["torch"] == [[12, 194]]
    assert torch.equal(torch.tensor(doc["jacobian"]["a"]["torch"]).reshape(2, 2), jac.reshape(2, 2))
    assert jac.reshape(2, 2).tolist() == [[8, 2], [2, 96]]
    assert doc["grad_output"] == [[1, 2]]
    assert doc["inputs"]["b"]["value"] == [[0, 0]]  # b as the script made it, before the writes into it
    assert [f["value"] for f in doc["forward"]] == [[[8, 0]], [[8, 66]], [[16, 132]]]
    assert doc["forward"][0]["expr"] == "b[0, 0] = a[0, 0]**2 + a[0, 1]"


def test_seed002_integer_input():
    (doc,), _ = documents(str(SCRIPTS / "seed002_mse_scalar.py"), "--json")
    assert doc["grads"]["w"]["torch"] == 80 and doc["grads"]["b"]["torch"] == 16
    assert doc["inputs"]["x"] == {"shape": [], "value": 5, "requires_grad": False}
    assert doc["grads"]["w"]["agree"] is True


def test_seed004_mlp_named_parameters_and_summaries(monkeypatch: pytest.MonkeyPatch):
    expected = plain_grads(SCRIPTS / "seed004_mlp.py", monkeypatch)
    docs, r = documents(str(SCRIPTS / "seed004_mlp.py"), "--json")
    assert r.code == 0, r.stderr
    full, summaries = docs[0], docs[1:]
    assert full["schema"] == "gradexplain/1" and full["agree"] is True
    names = list(full["grads"])
    assert names[:4] == ["model.ln1.weight", "model.ln1.bias", "model.fc1.weight", "model.fc1.bias"]
    assert "model.fc6.bias" in names and "x_train" in full["inputs"] and "dropout_mask" in full["inputs"]
    for g in expected[0]:
        assert _find(g, full["grads"])
    assert len(summaries) == 48 and all(s["schema"] == "gradexplain-summary/1" for s in summaries)
    assert summaries[0]["step"]["lr"] == [0.05] and summaries[-1]["step"]["lr"] == [0.05 * 0.5 ** 4]
    assert all(set(s["grad_norms"]) == set(names) for s in summaries)
    for s, grads in zip(summaries, expected[1:]):  # zero_grad() each epoch: the norms are of .grad itself
        assert sorted(round(v, 4) for v in s["grad_norms"].values()) == \
            sorted(round(float(g.double().norm()), 4) for g in grads)
    assert all(s["step"]["change_norms"]["model.fc6.bias"] > 0 for s in summaries)
    assert "epoch 10 loss" in r.stderr  # the script's own output, moved to stderr under --json


def test_training_loop_without_zero_grad(monkeypatch: pytest.MonkeyPatch):
    expected = plain_grads(DATA / "loop_no_zero_grad.py", monkeypatch)
    docs, r = documents(str(DATA / "loop_no_zero_grad.py"), "--json")
    assert [d["schema"] for d in docs] == ["gradexplain/1"] + ["gradexplain-summary/1"] * 3
    assert docs[1]["accumulated"] == ["w"]
    assert docs[0]["grads"]["w"]["torch"] == expected[0][0].tolist()
    docs, _ = documents(str(DATA / "loop_no_zero_grad.py"), "--json", "--all")
    assert len(docs) == 4 and all(d["schema"] == "gradexplain/1" for d in docs)
    for doc, grads in zip(docs, expected):
        assert doc["grads"]["w"]["torch"] == grads[0].tolist()  # the accumulated .grad, as the script sees it
        assert doc["agree"] is True
    assert any("zero_grad" in n for n in docs[1]["notes"])
    docs, _ = documents(str(DATA / "loop_no_zero_grad.py"), "--json", "--max-explained", "0")
    assert all(d["schema"] == "gradexplain-summary/1" for d in docs)
    r = run_cli("run", str(DATA / "loop_no_zero_grad.py"))
    assert "piled up" in r.stdout and "SGD.step() lr 0.01" in r.stdout


def test_text_output_keeps_the_script_output_first():
    r = run_cli("run", str(SCRIPTS / "seed000_backward.py"))
    assert r.code == 0
    assert r.stdout.index("tensor([ 8., 16., 24.])") < r.stdout.index("x.grad = [8, 16, 24]  =  8*x  ✓")
    assert "y = x * 2" in r.stdout  # the user's own source line beside the step
    brief = run_cli("run", str(SCRIPTS / "seed000_backward.py"), "--brief")
    assert "x.grad = [8, 16, 24]" in brief.stdout and "backward pass" not in brief.stdout
    md = run_cli("run", str(SCRIPTS / "seed000_backward.py"), "--format", "markdown")
    assert md.stdout.count("## backward() #1") == 1 and "8*x" in md.stdout


def test_script_argv_name_and_exit_status():
    r = run_cli("run", str(DATA / "argv_and_failure.py"), "a", "--lr", "0.1")
    assert "name __main__ argv ['a', '--lr', '0.1']" in r.stdout and r.code == 0
    r = run_cli("run", str(DATA / "argv_and_failure.py"), "--", "--fail")
    assert r.code == 1 and "ValueError: the script failed on purpose" in r.stderr and "Traceback" in r.stderr
    frames = r.stderr.split("Traceback")[1].split("ValueError")[0]
    package = str(ROOT / "gradexplain") + "/"  # the package's own files (the clone's folder may be named so too)
    assert package not in frames and "runpy" not in frames  # the script's frames only, as python shows
    assert "x.grad = 4" in r.stdout  # what ran before the failure is still explained
    r = run_cli("run", str(DATA / "argv_and_failure.py"), "--", "--exit")
    assert r.code == 3


def test_double_backward():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (g,) = torch.autograd.grad((x ** 3).sum(), x, create_graph=True)
    g.sum().backward()
    docs, r = documents(str(DATA / "double_backward.py"), "--json")
    first, second = docs
    assert first["call"]["kind"] == "autograd.grad" and first["grads"]["x"]["torch"] == g.tolist()
    assert first["grads"]["x"]["symbolic"]["expr"] == "3*x**2"
    assert second["grads"]["x"]["torch"] == x.grad.tolist() and second["agree"] is True
    assert second["grads"]["x"]["symbolic"]["expr"] == "6*x"


def test_help_says_the_script_is_executed():
    r = run_cli("run", "--help")
    assert "EXECUTED" in r.stdout and "never executed" in r.stdout


def test_missing_script_is_bad_input():
    r = run_cli("run", str(DATA / "nope.py"))
    assert r.code == 2 and r.stderr.startswith("error:")


@pytest.mark.parametrize("script", ["classifier_adam.py", "manual_clamp.py", "custom_function.py"])
def test_other_teaching_scripts(script: str, monkeypatch: pytest.MonkeyPatch):
    """Integer class targets, the tutorial's clamp(min=0) as relu (a closed form with its kink), a custom
    autograd.Function the recording cannot see (torch's value, a note, agree null): .grad always as the script's."""
    path = DATA / script
    expected = plain_grads(path, monkeypatch)
    docs, r = documents(str(path), "--json", "--all")
    assert r.code == 0, r.stderr
    assert len(docs) == len(expected)
    for doc, grads in zip(docs, expected):
        for g in grads:
            assert _find(g, doc["grads"])
    first = docs[0]
    if script == "classifier_adam.py":
        assert first["agree"] is True and "net.0.weight" in first["grads"] and first["inputs"]["t"]["value"] == [0, 2, 1, 1, 0]
    elif script == "manual_clamp.py":
        assert first["agree"] is True  # clamp(min=0) is a registry op: a closed form, checked against torch
        assert all("where(" in g["symbolic"]["expr"] for g in first["grads"].values())
        assert any("held zeros" in n for n in docs[1]["notes"])  # w1.grad.zero_() after the manual step
    else:
        assert first["agree"] is None and any("cannot see" in n for n in first["notes"])


def test_full_view_draws_the_inputs_and_forward_pass_once():
    """run's full view shows the script's leaves and its forward pass line by line; the eval-style
    header (inputs, forward table, output line) is not drawn a second time below it."""
    r = run_cli("run", str(SCRIPTS / "seed003_vjp.py"))
    assert r.code == 0, r.stderr
    lines = [line.strip() for line in r.stdout.splitlines()]
    assert lines.count("leaves and constants") == 1 and "inputs" not in lines
    assert sum(line.startswith("output out:") for line in lines) == 1
