"""``gradexplain check FILE.toml``: run a problem set through ``eval`` and report per problem.

Each ``[[problem]]`` has ``name``, ``expr``, ``inputs`` (NAME → VALUE text) and optionally
``const``, ``grad_output``, ``output`` (expected forward value), ``expect`` (NAME → value or
formula), ``tol``, ``dtype``, ``seed``.  A file that is not TOML is bad input (exit 2); a broken
problem is a failure reported under its name and does not stop the others.
"""
from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .errors import GradexplainError
from .files import check_toml_nesting, read_regular_file

CHECK_SCHEMA = "gradexplain-check/1"
KNOWN_KEYS = {"name", "expr", "inputs", "const", "grad_output", "output", "expect", "dtype", "tol", "seed"}
SHOWN_FAILURES = 2  # per problem in the text view; JSON has them all


@dataclass
class ProblemResult:
    name: str
    passed: bool
    failures: list[str]
    result: Any | None = None  # the eval Report (None when the problem could not run)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # passed, but worth a look (not proved, finite differences)


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


def load_problems(path: str) -> list[Any]:
    raw = read_regular_file(path)  # regular files only, size capped: not /dev/zero, not a FIFO
    try:
        text = raw.decode("utf-8")
        check_toml_nesting(text, path)
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GradexplainError(f"{path}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise GradexplainError(f"{path}: cannot read: {e}") from None
    problems = data.get("problem")
    if not isinstance(problems, list) or not problems:
        raise GradexplainError(f"{path}: no [[problem]] tables")
    return problems


def _text(v: Any) -> str:
    """A TOML value as VALUE text: strings as written, numbers and arrays (``[1, 2]``) as Python prints them."""
    return v if isinstance(v, str) else str(v)


def problem_name(problem: Any, index: int) -> str:
    name = problem.get("name") if isinstance(problem, dict) else None
    return str(name) if name is not None else f"problem {index + 1}"


def problem_options(problem: Any, tol: float | None) -> Any:
    """A problem table → EvalOptions, or a GradexplainError naming what is wrong with it."""
    from .explain import EvalOptions

    if not isinstance(problem, dict):
        raise GradexplainError("a [[problem]] must be a table")
    unknown = sorted(set(problem) - KNOWN_KEYS)
    if unknown:
        raise GradexplainError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(KNOWN_KEYS))})")
    if not isinstance(problem.get("expr"), str):
        raise GradexplainError("missing expr (a string)" if "expr" not in problem else "expr must be a string")
    inputs, expect, const = problem.get("inputs", {}), problem.get("expect", {}), problem.get("const", [])
    if not isinstance(inputs, dict) or not isinstance(expect, dict) or not isinstance(const, list):
        raise GradexplainError("inputs and expect must be tables, const a list")
    seed, ptol = problem.get("seed", 0), problem.get("tol", tol)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise GradexplainError(f"seed must be an integer, not {seed!r}")
    if ptol is not None and (not isinstance(ptol, (int, float)) or isinstance(ptol, bool)):
        raise GradexplainError(f"tol must be a number, not {ptol!r}")
    return EvalOptions(
        expr=problem["expr"], values=[f"{k}={_text(v)}" for k, v in inputs.items()],
        const={str(c) for c in const}, grad_output=_text(problem["grad_output"]) if "grad_output" in problem else None,
        expect=[f"{k}={_text(v)}" for k, v in expect.items()], tol=ptol,
        dtype=str(problem.get("dtype", "float64")), seed=seed,
    )


def run_problem(problem: Any, index: int, tol: float | None) -> ProblemResult:
    """One problem; every failure (bad table, bad EXPR, even an internal error) stays inside it."""
    from .explain import explain
    from .values import parse_value

    name = problem_name(problem, index)
    try:
        report = explain(problem_options(problem, tol))
        expected = parse_value(_text(problem["output"])).tensor if "output" in problem else None
    except GradexplainError as e:
        return ProblemResult(name, False, [f"error: {e.message}"], None, e.message)
    except (RecursionError, MemoryError) as e:
        return ProblemResult(name, False, [f"error: input too large ({type(e).__name__})"], None, type(e).__name__)
    except Exception as e:  # noqa: BLE001 - one problem must never stop the others
        message = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        return ProblemResult(name, False, [f"error: {message}"], None, message)
    failures = [e.message for e in report.expect if not e.passed]
    output_failure = check_output(report, expected)
    if output_failure:
        failures.append(output_failure)
    if report.agree is False:
        bad = [n for n, g in report.grads.items() if g.agree is False]
        failures.append(f"torch and sympy disagree on {', '.join(bad) or 'the Jacobian'}")
    return ProblemResult(name, not failures, failures, report, warnings=problem_warnings(report))


def check_output(report: Any, expected: Any) -> str | None:
    """The forward value against the problem's ``output`` (same entries; a [1]-vs-[] shape is forgiven)."""
    from .expect import differing, short
    from .explain import agree

    if expected is None:
        return None
    value = report.output.value
    if expected.numel() == value.numel():
        expected = expected.reshape(value.shape)
    ok, _ = agree(value, expected.to(value.dtype), report.tol)
    if ok:
        return None
    where = f" (differs at {differing(expected, value, report.tol)})" if expected.shape == value.shape else \
        f" (shape {list(expected.shape)} vs {list(value.shape)})"
    return f"output: expected {short(expected)}, got {short(value)}{where}"


def problem_warnings(report: Any) -> list[str]:
    """What passed but deserves a look: formulas SymPy could not prove, finite differences that disagree."""
    warnings = [e.message for e in report.expect if e.outcome == "unproved"]
    warnings += [f"{n}: finite differences disagree with torch" for n, g in report.grads.items()
                 if g.numeric_agree is False]
    return warnings


def run_check(path: str, tol: float | None = None, show_progress: bool = False) -> CheckResult:
    """Every problem of the file, in order; a progress bar on stderr when asked (a terminal)."""
    problems = load_problems(path)
    result = CheckResult(path)
    if not show_progress:
        result.problems = [run_problem(p, i, tol) for i, p in enumerate(problems)]
        return result
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("checking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns, transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("", total=len(problems))
        for i, p in enumerate(problems):
            progress.update(task, description=problem_name(p, i))
            result.problems.append(run_problem(p, i, tol))
            progress.advance(task)
    return result


def check_dict(result: CheckResult) -> dict[str, Any]:
    """The ``gradexplain-check/1`` document (contract), plus ``error``/``warnings`` where there are any."""
    from .render.json import report_dict
    from .report import document_budget

    def problem(p: ProblemResult) -> dict[str, Any]:
        error = p.error
        try:
            with document_budget():  # each problem's document is bounded on its own
                result = report_dict(p.result) if p.result is not None else None
        except Exception as e:  # noqa: BLE001 - one problem's document must never lose the whole report
            result, error = None, error or f"could not write this problem's result: {type(e).__name__}: {e}"
        doc = {"name": p.name, "passed": p.passed, "failures": p.failures, "result": result}
        if error:
            doc["error"] = error
        if p.warnings:
            doc["warnings"] = p.warnings
        return doc

    return {"schema": CHECK_SCHEMA, "file": result.file, "passed": result.passed, "failed": result.failed,
            "problems": [problem(p) for p in result.problems]}


def render_check(result: CheckResult, fmt: str) -> None:
    if fmt == "json":
        from .render.json import dumps

        sys.stdout.write(dumps(check_dict(result)) + "\n")
        return
    if fmt in ("markdown", "latex"):
        from .render import writeup

        sys.stdout.write(writeup.render_check(result, fmt) + "\n")
        return
    print_check(result)


def print_check(result: CheckResult) -> None:
    """One line per problem (✓, ? for passed-with-warnings, ✗ with its first failures), then a summary."""
    from rich.text import Text

    from .render.text import make_console
    from .sanitize import visible  # names and messages are the file's text: never raw to the terminal

    console = make_console()
    for p in result.problems:
        if not p.passed:
            line = Text("✗ ", style="bold red").append(visible(p.name))
            shown = "; ".join(visible(f) for f in p.failures[:SHOWN_FAILURES])
            more = f" (+{len(p.failures) - SHOWN_FAILURES} more)" if len(p.failures) > SHOWN_FAILURES else ""
            line.append(f": {shown}{more}", style="red")
        elif p.warnings:
            line = Text("? ", style="bold yellow").append(visible(p.name)).append(
                ": " + "; ".join(visible(w) for w in p.warnings), style="yellow")
        else:
            line = Text("✓ ", style="bold green").append(visible(p.name))
        console.print(line)
    summary = f"{result.passed} passed, {result.failed} failed"
    warned = sum(1 for p in result.problems if p.passed and p.warnings)
    if warned:
        summary += f" ({warned} passed with warnings: see the ? lines)"
    if result.failed:
        summary += " — failed: " + ", ".join(visible(p.name) for p in result.problems if not p.passed)
    console.print(Text(summary, style="bold green" if result.failed == 0 else "bold red"))
