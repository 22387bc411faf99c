"""The front door (issue 17): a fresh copy runs its own data, the program starts like a Python
tool (``python -m``, ``-h``, bare ``gradexplain``, no warnings under ``-W error``), scripts get
JSON errors, batches and a quiet closed pipe, and every documented command pastes into a shell.

Subprocesses only where the real process matters (exit codes, pipes, warnings, start-up)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
import torch
import typer.main
from typer.testing import CliRunner

from conftest import ROOT, SAMPLES, run_cli

from gradexplain.cli import app

ENV = dict(os.environ, NO_COLOR="1", COLUMNS="100")


def py(*args: str, cwd: str | os.PathLike | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV, cwd=cwd or ROOT,
                          timeout=120, **kw)


# --------------------------------------------------------------------------- self-contained data

def test_seed_problems_pass_from_a_copy_with_no_shared_beside_it(tmp_path):
    copy = tmp_path / "clone"
    shutil.copytree(SAMPLES, copy / "samples", symlinks=True)
    assert not (tmp_path / "shared").exists()
    p = py("-m", "gradexplain", "check", "samples/seeds.toml", "--json", cwd=copy)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr
    doc = json.loads(p.stdout)
    seeds = tomllib.loads((SAMPLES / "seeds.toml").read_text())["problem"]
    assert doc["failed"] == 0 and doc["passed"] == len(seeds) >= 10


def test_no_test_reads_outside_the_repository():
    outside = ["ROOT.parent", '/ "shared"']
    for path in sorted(p for p in (ROOT / "tests").glob("*.py") if p.name != "test_frontdoor.py"):
        text = path.read_text()
        assert not any(o in text for o in outside), path.name


def test_ci_runs_the_readme_commands_in_a_fresh_clone():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "git clone" in ci and "mktemp -d" in ci and "README.md" in ci
    first_block = re.search(r"```\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1).splitlines()
    assert len(first_block) == 2 and first_block[1] == ".venv/bin/python -m pytest -q"


# --------------------------------------------------------------------------- starting like a Python tool

@pytest.mark.parametrize("argv", [["--help"], ["-h"], [], ["eval", "-h"], ["check", "-h"]],
                         ids=["--help", "-h", "bare", "eval -h", "check -h"])
def test_help_forms_exit_0_with_usage_and_no_warnings(argv):
    p = py("-W", "error", "-m", "gradexplain", *argv)
    assert p.returncode == 0, p.stderr
    assert "Usage:" in p.stdout and "error" not in p.stderr.lower() and "Warning" not in p.stderr


def test_imports_clean_under_W_error():
    p = py("-W", "error", "-c", "import gradexplain.cli, gradexplain.batch, gradexplain.sample_files")
    assert p.returncode == 0, p.stderr


def test_shell_completion_is_offered():
    out = run_cli("--help").stdout
    assert "--install-completion" in out and "--show-completion" in out


# --------------------------------------------------------------------------- errors under --json, closed pipes

def test_json_error_document_on_stdout():
    p = py("-m", "gradexplain", "eval", "--json", "x*", "x=1")
    assert p.returncode == 2
    doc = json.loads(p.stdout)
    assert doc["schema"] == "gradexplain-error/1" and doc["error"].startswith("syntax")
    assert doc["column"] == 3 and doc["source"] == "x*"  # 1-based: the caret stands after the *
    assert [line for line in p.stderr.splitlines() if line.startswith("error:")] == [f"error: {doc['error']}"]
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("argv, column", [
    (["eval", "--json", "2*x", "x=[1,'a']"], 4),
    (["eval", "--format", "json", "2*y", "x=1"], None),
    (["check", "--json", "/nonexistent/set.toml"], None),
])
def test_json_errors_in_process(argv, column):
    r = run_cli(*argv)
    assert r.code == 2
    doc = r.json()
    assert doc["schema"] == "gradexplain-error/1" and doc["column"] == column
    assert r.stderr.startswith("error: " + doc["error"])


def test_usage_error_under_json_is_json_too():
    p = py("-m", "gradexplain", "eval", "--json", "--no-such-option", "2*x", "x=1")
    assert p.returncode == 2 and json.loads(p.stdout)["schema"] == "gradexplain-error/1"


@pytest.mark.parametrize("argv", [["eval", "2*dot(x,x)", "x=1,2,3"], ["check", "--json", "samples/seeds.toml"]],
                         ids=["eval text", "check json"])
def test_closed_stdout_ends_quietly(argv):
    """The reader is gone before the first write: no traceback, not the "disagree" exit 1."""
    read, write = os.pipe()
    os.close(read)
    try:
        p = subprocess.run([sys.executable, "-m", "gradexplain", *argv], stdout=write, stderr=subprocess.PIPE,
                           text=True, env=ENV, cwd=ROOT, timeout=120)
    finally:
        os.close(write)
    assert p.returncode == 141 and p.stderr == ""


def test_head_in_a_real_pipeline():
    script = f'"{sys.executable}" -m gradexplain eval "2*dot(x,x)" x=1,2,3 | head -1; echo "status ${{PIPESTATUS[0]}}"'
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    status = int(p.stdout.strip().splitlines()[-1].split()[1])
    assert status in (0, 141) and "Traceback" not in p.stderr and p.stderr == ""


# --------------------------------------------------------------------------- eval --batch

def batch_lines() -> list[str]:
    return [
        json.dumps({"expr": "2*dot(x,x)", "inputs": {"x": "1,2,3"}}),
        json.dumps({"expr": "x*", "inputs": {"x": 1}}),
        "",
        "not json",
        json.dumps({"expr": "mm(a, w)", "inputs": {"a": [[2, 3], [1, 2]], "w": "ones(2,1)"},
                    "options": ["-g", "[[1],[1]]"], "id": "seed-003-mm"}),
        json.dumps({"expr": "2*x", "inputs": {"x": 1.5}, "options": ["--expect", "x=2"]}),
        json.dumps({"expr": "2*x", "inputs": {"x": 1}, "options": ["--bogus"]}),
    ]


def invoke_batch(lines: list[str], tmp_path, *extra: str):
    path = tmp_path / "problems.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return run_cli("eval", "--batch", str(path), *extra)


def test_batch_one_line_out_per_problem(tmp_path):
    r = invoke_batch(batch_lines(), tmp_path)
    assert r.code == 2  # any bad line: 2
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["line"] for d in docs] == [1, 2, 4, 5, 6, 7]  # the blank line 3 is no problem
    assert [d["schema"] for d in docs] == ["gradexplain/1", "gradexplain-error/1", "gradexplain-error/1",
                                         "gradexplain/1", "gradexplain/1", "gradexplain-error/1"]
    x = torch.tensor([1.0, 2, 3], requires_grad=True)
    (2 * torch.dot(x, x)).backward()
    assert docs[0]["grads"]["x"]["torch"] == x.grad.tolist() and docs[0]["agree"] is True
    a = torch.tensor([[2.0, 3], [1, 2]], requires_grad=True)
    w = torch.ones(2, 1, requires_grad=True)
    torch.mm(a, w).backward(torch.ones(2, 1))
    assert docs[3]["id"] == "seed-003-mm" and docs[3]["grads"]["w"]["torch"] == w.grad.tolist()
    assert docs[4]["expect"][0]["passed"] is True
    assert docs[1]["column"] == 3 and "No such option" in docs[5]["error"]
    assert r.stderr.count("error: line ") == 3 and "error: line 2: syntax" in r.stderr


def test_batch_exit_codes(tmp_path):
    good = json.dumps({"expr": "x.sum()", "inputs": {"x": "1,2"}})
    wrong = json.dumps({"expr": "x.sum()", "inputs": {"x": "1,2"}, "options": ["--expect", "x=[1,3]"]})
    assert invoke_batch([good, good], tmp_path).code == 0
    assert invoke_batch([good, wrong, good], tmp_path).code == 1


def test_batch_from_stdin_and_its_own_option_rules(tmp_path):
    text = json.dumps({"expr": "x*x", "inputs": {"x": 3}}) + "\n"
    r = CliRunner().invoke(app, ["eval", "--batch", "-"], input=text)
    assert r.exit_code == 0 and json.loads(r.stdout)["grads"]["x"]["torch"] == 6.0
    shared = invoke_batch([text.strip()], tmp_path, "--tol", "1")
    assert shared.code == 2 and "--tol belongs in each line" in shared.json()["error"]
    as_text = invoke_batch([json.dumps({"expr": "x", "inputs": {"x": 1}, "options": ["--format", "text"]})], tmp_path)
    assert as_text.code == 2 and "JSON lines only" in json.loads(as_text.stdout)["error"]
    assert run_cli("eval", "--batch", str(tmp_path / "missing.jsonl")).code == 2


# --------------------------------------------------------------------------- samples, check, notes, hints

def test_samples_list_print_and_path():
    listing = run_cli("samples")
    assert listing.code == 0
    for name in ("seeds.toml", "calculus.toml", "matrix.toml", "mlp.sh", "scripts/seed003_vjp.py"):
        assert re.search(rf"^{re.escape(name)}\s", listing.stdout, re.M), name
    assert run_cli("samples", "seeds.toml").stdout == (SAMPLES / "seeds.toml").read_text()
    assert run_cli("samples", "seed003_vjp").stdout == (SAMPLES / "scripts" / "seed003_vjp.py").read_text()
    folder = run_cli("samples", "--path").stdout.strip()
    assert (os.path.realpath(folder) == os.path.realpath(SAMPLES))
    assert run_cli("samples", "nope").code == 2


def test_check_help_example_is_complete_and_passes(tmp_path):
    help_text = typer.main.get_command(app).commands["check"].help
    example = help_text.split("Example (problems.toml):")[1].split("Keys")[0]
    toml = "\n".join(line.strip() for line in example.splitlines() if line.strip() not in ("", "\b"))
    toml = toml.replace("[\\[problem]]", "[[problem]]")
    problems = tomllib.loads(toml)["problem"]
    keys = {"name", "expr", "inputs", "const", "grad_output", "expect_output", "output_name", "expect", "tol",
            "dtype", "seed"}
    assert set().union(*problems) == keys
    assert all(re.search(rf"^  {k}\s", help_text, re.M) for k in keys | {"expect"})
    path = tmp_path / "problems.toml"
    path.write_text(toml)
    r = run_cli("check", str(path), "--json")
    assert r.code == 0 and r.json()["passed"] == len(problems)


def test_expect_output_output_alias_and_output_name(tmp_path):
    base = 'name = "p"\nexpr = "z = x*w + b; mse_loss(z, t)"\ninputs = { x = "5", t = "0", w = "1", b = "3" }\n'
    x, w, b, t = (torch.tensor(v, requires_grad=True) for v in (5.0, 1.0, 3.0, 0.0))
    z = x * w + b
    loss = torch.nn.functional.mse_loss(z, t)
    cases = {f'expect_output = "{loss.item():g}"': 0, f'output = "{loss.item():g}"': 0,
             f'expect_output = "{loss.item() + 1:g}"': 1,
             f'output_name = "z"\nexpect_output = "{z.item():g}"': 0,
             'expect_output = "64"\noutput = "64"': 1}  # both keys: a broken problem, reported as failed
    for extra, code in cases.items():
        path = tmp_path / "p.toml"
        path.write_text("[[problem]]\n" + base + extra + "\n")
        r = run_cli("check", str(path), "--json")
        assert r.code == code, (extra, r.stdout[-800:])


def test_integer_inputs_are_floating_with_a_note():
    written_int = run_cli("eval", "--json", "2*dot(x,x)", "x=1,2,3").json()
    assert any("written with integers but used as float64" in n for n in written_int["notes"])
    written_float = run_cli("eval", "--json", "2*dot(x,x)", "x=1.5,2,3").json()
    assert not any("written with integers" in n for n in written_float["notes"])
    text = run_cli("eval", "2*dot(x,x)", "x=1,2,3").stdout
    assert "written with integers" in " ".join(text.split())


def test_split_value_hint_names_the_value():
    r = run_cli("eval", "2*x", "x=[1,", "2]")
    assert r.code == 2 and 'quote the VALUE: "x=[1, 2]"' in r.stderr
    r = run_cli("eval", "2", "*", "x", "x=1")
    assert r.code == 2 and 'quote EXPR: "2 *"' in r.stderr


# --------------------------------------------------------------------------- paste-safe documentation

def unquoted(command: str) -> str:
    """The parts of a shell command line outside quotes (what the shell would expand)."""
    out, quote = [], None
    for c in command:
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        else:
            out.append(c)
    return "".join(out)


def documented_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    lines = [line for block in re.findall(r"```[a-z]*\n(.*?)```", readme, re.S) for line in block.splitlines()]
    lines += [line[4:] for line in readme.splitlines() if line.startswith("    ")]
    lines += re.findall(r"(?<!`)`(gradexplain [^`]+)`(?!`)", readme)
    group = typer.main.get_command(app)
    for command in [group, *group.commands.values()]:
        lines += (command.help or "").splitlines()
    found = []
    for line in lines:
        start = line.find("gradexplain ")
        command = line[start:].split("`")[0].split("  (")[0].split("   #")[0]
        synopsis = re.search(r"\b(EXPR|FILE|NAME)\b|\[options\]", command)  # a usage line, not a command
        if start >= 0 and not line.lstrip().startswith(("#", "|")) and not synopsis:
            found.append(command)
    return found


def test_every_documented_command_quotes_what_a_shell_expands():
    commands = documented_commands()
    assert len(commands) > 20
    bad = [c for c in commands if re.search(r"[\[\]()*?{}]", unquoted(c).replace("$(", "").replace("…", ""))]
    assert not bad, bad
