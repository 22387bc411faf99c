"""check FILE.toml: per-problem verdicts, exit codes, the gradexplain-check/1 JSON, broken problems."""
from __future__ import annotations

import torch

from conftest import SAMPLES, run_cli

WRONG_SET = '''
[[problem]]
name = "right-formula"
expr = "2*dot(x,x)"
inputs = { x = "1,2,3" }
expect = { x = "4*x" }

[[problem]]
name = "wrong-value"
expr = "2*dot(x,x)"
inputs = { x = "1,2,3" }
expect = { x = "[4,8,13]" }

[[problem]]
name = "wrong-formula"
expr = "(W@x).sum()"
inputs = { W = "[[1,2],[3,4]]", x = "[5,6]" }
expect = { x = "2*W.sum(0)", W = "ones_like(W)*x" }

[[problem]]
name = "transposed-matrix"
expr = "(W@x - t).pow(2).sum()"
inputs = { W = "[[1,2,3],[3,4,5]]", x = "[[5],[6],[7]]", t = "[[1],[2]]" }
const = ["x", "t"]
expect = { W = "2*x@(W@x-t).T" }

[[problem]]
name = "right-matrix"
expr = "(W@x - t).pow(2).sum()"
inputs = { W = "[[1,2,3],[3,4,5]]", x = "[[5],[6],[7]]", t = "[[1],[2]]" }
const = ["x", "t"]
output = "[[0.0]]"
expect = { W = "2*(W@x-t)@x.T" }
'''


def torch_answers():
    """The right answers, by hand in torch, to be sure the set's wrong ones really are wrong."""
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (2 * torch.dot(x, x)).backward()
    W = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    v = torch.tensor([5.0, 6.0], requires_grad=True)
    (W @ v).sum().backward()
    M = torch.tensor([[1.0, 2, 3], [3, 4, 5]], requires_grad=True)
    c, t = torch.tensor([[5.0], [6], [7]]), torch.tensor([[1.0], [2]])
    loss = (M @ c - t).pow(2).sum()
    loss.backward()
    return x.grad, v.grad, M.grad, loss.detach()


def test_seeds_pass():
    r = run_cli("check", str(SAMPLES / "seeds.toml"), "--json")
    assert r.code == 0, r.stdout
    doc = r.json()
    assert doc["schema"] == "gradexplain-check/1" and doc["failed"] == 0 and doc["passed"] == len(doc["problems"])


def test_wrong_answers_fail_and_json_names_exactly_them(tmp_path):
    gx, gv, gM, loss = torch_answers()
    assert gx.tolist() != [4, 8, 13] and gv.tolist() != [8.0, 12.0]
    assert gM.shape == (2, 3) and float(loss) != 0.0  # "[[0.0]]" output of right-matrix is wrong too
    path = tmp_path / "homework.toml"
    path.write_text(WRONG_SET)
    r = run_cli("check", str(path), "--json")
    assert r.code == 1
    doc = r.json()
    assert doc["file"] == str(path) and (doc["passed"], doc["failed"]) == (1, 4)
    failed = {p["name"] for p in doc["problems"] if not p["passed"]}
    assert failed == {"wrong-value", "wrong-formula", "transposed-matrix", "right-matrix"}
    by_name = {p["name"]: p for p in doc["problems"]}
    assert by_name["right-formula"]["failures"] == [] and by_name["right-formula"]["result"]["schema"] == "gradexplain/1"
    assert any("transpose" in f for f in by_name["transposed-matrix"]["failures"])
    assert any(f.startswith("output:") for f in by_name["right-matrix"]["failures"])
    outcomes = {e["name"]: e["outcome"] for e in by_name["wrong-formula"]["result"]["expect"]}
    assert outcomes == {"x": "wrong", "W": "proved"}


def test_text_lines_and_summary(tmp_path):
    path = tmp_path / "homework.toml"
    path.write_text(WRONG_SET)
    r = run_cli("check", str(path))
    assert r.code == 1
    lines = r.stdout.splitlines()
    assert lines[0] == "✓ right-formula"
    text = " ".join(r.stdout.split())
    assert "✗ wrong-value: x: expected [4,8,13], torch and sympy give [4,8,12]" in text
    assert "[2] 13 instead of 12 (off by 1)" in text
    assert "1 passed, 4 failed" in text


def test_broken_problems_are_reported_by_name_and_do_not_stop_the_rest(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('''
[[problem]]
name = "syntax"
expr = "2*dot(x,"
inputs = { x = "1,2,3" }

[[problem]]
name = "typo-key"
expr = "x.sum()"
inputs = { x = "1,2" }
expects = { x = "[1,1]" }

[[problem]]
name = "missing-value"
expr = "x*y"
inputs = { x = "1" }

[[problem]]
name = "fine"
expr = "x.sum()"
inputs = { x = [1, 2] }
expect = { x = [1, 1] }
''')
    r = run_cli("check", str(path), "--json")
    assert r.code == 1
    problems = {p["name"]: p for p in r.json()["problems"]}
    assert problems["fine"]["passed"] is True
    for name, words in (("syntax", "syntax"), ("typo-key", "unknown key 'expects'"), ("missing-value", "'y'")):
        assert problems[name]["passed"] is False and problems[name]["result"] is None
        assert words in problems[name]["error"] and problems[name]["failures"][0].startswith("error:")


def test_bad_toml_is_exit_2_with_an_error_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[[problem]\nname = 1\n")
    r = run_cli("check", str(path))
    assert r.code == 2
    assert r.stderr.startswith("error:") and "not valid TOML" in r.stderr and "line 1" in r.stderr
    assert run_cli("check", str(tmp_path / "nope.toml")).code == 2


def test_unproved_passes_with_a_warning(tmp_path):
    path = tmp_path / "sym.toml"
    path.write_text('''
[[problem]]
name = "symmetric"
expr = "0.5 * x @ S @ x"
inputs = { x = "[1, 2]", S = "[[2, 1], [1, 3]]" }
const = ["S"]
expect = { x = "S @ x" }
''')
    r = run_cli("check", str(path), "--json")
    assert r.code == 0
    (p,) = r.json()["problems"]
    assert p["passed"] and "could not prove" in p["warnings"][0]
    assert run_cli("check", str(path)).stdout.startswith("? symmetric")
