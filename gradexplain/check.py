"""``gradexplain check FILE.toml``: run a problem set through ``eval`` and report per problem.

Each ``[[problem]]`` has ``name``, ``expr``, ``inputs`` (NAME → VALUE text) and optionally
``const``, ``grad_output``, ``output`` (expected forward value) and ``expect`` (NAME → value or
formula).  A broken problem is reported under its name and does not stop the others.
"""
from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .errors import GradexplainError

CHECK_SCHEMA = "gradexplain-check/1"
KNOWN_KEYS = {"name", "expr", "inputs", "const", "grad_output", "output", "expect", "dtype", "tol", "seed"}


@dataclass
class ProblemResult:
    name: str
    passed: bool
    failures: list[str]
    result: Any | None = None  # the eval Report (None when the problem could not run)
    error: str | None = None


@dataclass
class CheckResult:
    file: str
    problems: list[ProblemResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(p.passed for p in self.problems)

    @property
    def failed(self) -> int:
        return len(self.problems) - self.passed


def load_problems(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise GradexplainError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise GradexplainError(f"{path}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GradexplainError(f"{path}: cannot read: {e}") from None
    problems = data.get("problem")
    if not isinstance(problems, list) or not problems:
        raise GradexplainError(f"{path}: no [[problem]] tables")
    return problems


def _text(v: Any) -> str:
    return v if isinstance(v, str) else str(v)


def run_problem(problem: Any, index: int, tol: float | None) -> ProblemResult:
    from .expect import short
    from .explain import EvalOptions, agree, explain
    from .values import parse_value

    name = str(problem.get("name", f"problem {index + 1}")) if isinstance(problem, dict) else f"problem {index + 1}"
    try:
        if not isinstance(problem, dict):
            raise GradexplainError("a [[problem]] must be a table")
        unknown = sorted(set(problem) - KNOWN_KEYS)
        if unknown:
            raise GradexplainError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(KNOWN_KEYS))})")
        if "expr" not in problem:
            raise GradexplainError("missing expr")
        inputs = problem.get("inputs", {})
        expect = problem.get("expect", {})
        const = problem.get("const", [])
        if not isinstance(inputs, dict) or not isinstance(expect, dict) or not isinstance(const, list):
            raise GradexplainError("inputs and expect must be tables, const a list")
        opts = EvalOptions(
            expr=_text(problem["expr"]), values=[f"{k}={_text(v)}" for k, v in inputs.items()],
            const={str(c) for c in const}, grad_output=_text(problem["grad_output"]) if "grad_output" in problem else None,
            expect=[f"{k}={_text(v)}" for k, v in expect.items()], tol=problem.get("tol", tol),
            dtype=str(problem.get("dtype", "float64")), seed=int(problem.get("seed", 0)),
        )
        report = explain(opts)
    except GradexplainError as e:
        return ProblemResult(name, False, [f"error: {e.message}"], None, e.message)
    failures = [e.message for e in report.expect if not e.passed]
    if "output" in problem:
        expected = parse_value(_text(problem["output"])).tensor
        ok, _ = agree(report.output.value, expected.reshape(report.output.value.shape)
                      if expected.numel() == report.output.value.numel() else expected, report.tol)
        if not ok:
            failures.append(f"output: expected {short(expected)}, got {short(report.output.value)}")
    if report.agree is False:
        bad = [n for n, g in report.grads.items() if g.agree is False]
        failures.append(f"torch and sympy disagree on {', '.join(bad) or 'the Jacobian'}")
    return ProblemResult(name, not failures, failures, report)


def run_check(path: str, tol: float | None = None, show_progress: bool = False) -> CheckResult:
    problems = load_problems(path)
    result = CheckResult(path)
    if show_progress:
        from rich.progress import Progress

        with Progress(transient=True, console=None) as progress:
            task = progress.add_task("checking", total=len(problems))
            for i, p in enumerate(problems):
                result.problems.append(run_problem(p, i, tol))
                progress.advance(task)
    else:
        result.problems = [run_problem(p, i, tol) for i, p in enumerate(problems)]
    return result


def check_dict(result: CheckResult) -> dict[str, Any]:
    from .render.json import report_dict

    return {"schema": CHECK_SCHEMA, "file": result.file, "passed": result.passed, "failed": result.failed,
            "problems": [{"name": p.name, "passed": p.passed, "failures": p.failures,
                          "result": report_dict(p.result) if p.result is not None else None,
                          **({"error": p.error} if p.error else {})} for p in result.problems]}


def render_check(result: CheckResult, fmt: str) -> None:
    if fmt == "json":
        import json

        sys.stdout.write(json.dumps(check_dict(result), allow_nan=False) + "\n")
        return
    if fmt in ("markdown", "latex"):
        from .render import writeup

        sys.stdout.write(writeup.render_check(result, fmt) + "\n")
        return
    from rich.text import Text

    from .render.text import make_console

    console = make_console()
    for p in result.problems:
        line = Text("✓ " if p.passed else "✗ ", style="bold green" if p.passed else "bold red")
        line.append(p.name)
        if not p.passed:
            line.append(": " + "; ".join(p.failures), style="red")
        console.print(line)
    style = "bold green" if result.failed == 0 else "bold red"
    console.print(Text(f"{result.passed} passed, {result.failed} failed", style=style))
