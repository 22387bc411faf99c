"""The worked examples: every problem of samples/seeds.toml through ``gradexplain eval
--json``, and every one-line ``gradexplain`` command of the sample programs in samples/*.sh.

The file's expected numbers were computed with plain torch when it was written; here they are
read as JSON literals and compared with what the run reports (output value, torch's ``.grad``
and the symbolic formula's value).  Expected gradients written as formulas are handed to the
run as ``--expect``.  The seed file is the project's own copy, so a fresh clone runs these too.
"""
from __future__ import annotations

import json
import shlex
import tomllib

import pytest
import torch

from conftest import SAMPLES, run_cli

SEEDS = SAMPLES / "seeds.toml"
PROBLEMS = tomllib.loads(SEEDS.read_text())["problem"]
TOL = 1e-9


def literal(text: str) -> torch.Tensor | None:
    """An expected value as written (``"[[12,194]]"``, ``"7.72"``), or None for a formula (``"4*x"``)."""
    try:
        return torch.tensor(json.loads(text), dtype=torch.float64)
    except (json.JSONDecodeError, TypeError, ValueError):
        return None


def eval_args(problem: dict) -> list[str]:
    args = ["eval", "--json"]
    if problem.get("const"):
        args += ["--const", ",".join(problem["const"])]
    if "grad_output" in problem:
        args += ["--grad-output", problem["grad_output"]]
    for name, claim in problem.get("expect", {}).items():
        if literal(claim) is None:
            args += ["--expect", f"{name}={claim}"]
    return [*args, "--", problem["expr"], *(f"{n}={v}" for n, v in problem["inputs"].items())]


def close(actual: object, expected: torch.Tensor) -> bool:
    got = torch.tensor(actual, dtype=torch.float64)
    return got.shape == expected.shape and bool(torch.allclose(got, expected, rtol=TOL, atol=TOL))


def test_the_seed_file_has_problems():
    assert len(PROBLEMS) >= 10
    assert all({"name", "expr", "inputs", "expect"} <= set(p) for p in PROBLEMS)


@pytest.mark.parametrize("problem", PROBLEMS, ids=[p["name"] for p in PROBLEMS])
def test_seed_problem(problem: dict):
    r = run_cli(*eval_args(problem))
    assert r.code == 0, (r.stderr, r.stdout[-2000:])
    doc = r.json()
    assert doc["agree"] is True
    if "output" in problem:
        assert close(doc["output"]["value"], literal(problem["output"])), doc["output"]
    for name, claim in problem["expect"].items():
        expected = literal(claim)
        if expected is None:
            continue  # a formula: checked by the run's --expect (exit 0 above)
        entry = doc["grads"][name]
        assert close(entry["torch"], expected), (name, entry["torch"], claim)
        assert close(entry["symbolic"]["value"], expected), (name, entry["symbolic"], claim)
        assert entry["agree"] is True
    for name in problem.get("const", []):
        assert name not in doc["grads"]


def sample_commands() -> list[tuple[str, list[str], int]]:
    """``(script, argv, expected exit)`` for each one-line gradexplain command of samples/*.sh;
    a command followed by ``|| ...`` is one that is meant to fail with exit 1."""
    found = []
    for script in sorted(SAMPLES.glob("*.sh")):
        for line in script.read_text().splitlines():
            if not line.startswith("gradexplain ") or "$" in line:
                continue  # multi-line commands and shell variables are for the shell alone
            command, _, fallback = line.partition(" || ")
            argv = shlex.split(command.split(" | ")[0])[1:]
            found.append((script.name, argv, 1 if fallback else 0))
    return found


@pytest.mark.parametrize("script, argv, code", sample_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_sample_command(script: str, argv: list[str], code: int):
    r = run_cli(*argv)
    assert r.code == code, (script, argv, r.stderr, r.stdout[-1500:])
