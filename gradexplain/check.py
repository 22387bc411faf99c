"""``gradexplain check FILE.toml``: run a problem set through ``eval`` and report per problem.

Each ``[[problem]]`` has ``name``, ``expr``, ``inputs`` (NAME → VALUE text) and optionally
``const``, ``grad_output``, ``expect_output`` (the expected forward value; ``output`` is its older
name, kept as an alias), ``output_name`` (the statement to use as the output, eval's ``--output``),
``expect`` (NAME → value or formula), ``tol``, ``dtype``, ``seed``.  A file that is not TOML is bad input (exit 2); a broken
problem is a failure reported under its name and does not stop the others.
"""
from __future__ import annotations

import tomllib
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

from .compare import agrees
from .errors import GradexplainError
from .i18n import Msg
from .expect import differing
from .explain import explain
from .format import short
from .limits import DEFAULT, Limits
from .options import EvalOptions
from .phrases import COMMA, joined
from .report import compact
from .values import parse_value
from .files import check_toml_nesting, read_regular_file

CHECK_SCHEMA = "gradexplain-check/1"
KNOWN_KEYS = {"name", "expr", "inputs", "const", "grad_output", "expect_output", "output", "output_name", "expect",
              "dtype", "tol", "seed"}
Progress = Callable[[int], AbstractContextManager[Callable[[str], None]]]  # total -> context of "starting NAME"


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
        raise GradexplainError(Msg("{path}: not valid TOML: {reason}", path=path, reason=str(e))) from None
    except UnicodeDecodeError as e:
        raise GradexplainError(Msg("{path}: cannot read: {reason}", path=path, reason=str(e))) from None
    problems = data.get("problem")
    if not isinstance(problems, list) or not problems:
        raise GradexplainError(Msg("{path}: no [[problem]] tables", path=path))
    return problems


def _text(v: Any) -> str:
    """A TOML value as VALUE text: strings as written, numbers and arrays (``[1, 2]``) as Python prints them."""
    return v if isinstance(v, str) else str(v)


def problem_name(problem: Any, index: int) -> str:
    name = problem.get("name") if isinstance(problem, dict) else None
    return str(name) if name is not None else f"problem {index + 1}"


def problem_options(problem: Any, tol: float | None, limits: Limits = DEFAULT) -> EvalOptions:
    """A problem table → EvalOptions, or a GradexplainError naming what is wrong with it."""
    if not isinstance(problem, dict):
        raise GradexplainError(Msg("a [[problem]] must be a table"))
    unknown = sorted(set(problem) - KNOWN_KEYS)
    if unknown:
        raise GradexplainError(Msg("unknown key {key!r} (known: {known})", key=unknown[0],
                                   known=", ".join(sorted(KNOWN_KEYS))))
    if not isinstance(problem.get("expr"), str):
        raise GradexplainError(Msg("missing expr (a string)") if "expr" not in problem else
                               Msg("expr must be a string"))
    inputs, expect, const = problem.get("inputs", {}), problem.get("expect", {}), problem.get("const", [])
    if not isinstance(inputs, dict) or not isinstance(expect, dict) or not isinstance(const, list):
        raise GradexplainError(Msg("inputs and expect must be tables, const a list"))
    seed, ptol = problem.get("seed", 0), problem.get("tol", tol)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise GradexplainError(Msg("seed must be an integer, not {seed!r}", seed=seed))
    if ptol is not None and (not isinstance(ptol, (int, float)) or isinstance(ptol, bool)):
        raise GradexplainError(Msg("tol must be a number, not {tol!r}", tol=ptol))
    if "output_name" in problem and not isinstance(problem["output_name"], str):
        raise GradexplainError(Msg("output_name must be a statement's name (a string), not {value!r}",
                                   value=problem["output_name"]))
    if "output" in problem and "expect_output" in problem:
        raise GradexplainError(Msg("give expect_output or its alias output, not both"))
    return EvalOptions(
        expr=problem["expr"], values=[f"{k}={_text(v)}" for k, v in inputs.items()],
        const={str(c) for c in const}, grad_output=_text(problem["grad_output"]) if "grad_output" in problem else None,
        expect=[f"{k}={_text(v)}" for k, v in expect.items()], tol=ptol,
        dtype=str(problem.get("dtype", "float64")), seed=seed, output=problem.get("output_name"), limits=limits,
    )


def expected_output(problem: dict[str, Any]) -> str | None:
    """The expected forward value as VALUE text: ``expect_output``, or ``output`` (its alias)."""
    value = problem.get("expect_output", problem.get("output"))
    return _text(value) if value is not None else None


def run_problem(problem: Any, index: int, tol: float | None, limits: Limits = DEFAULT) -> ProblemResult:
    """One problem; every failure (bad table, bad EXPR, even an internal error) stays inside it."""
    name = problem_name(problem, index)
    try:
        report = explain(problem_options(problem, tol, limits))
        text = expected_output(problem)
        expected = parse_value(text).tensor if text is not None else None
    except GradexplainError as e:
        return ProblemResult(name, False, [Msg("error: {message}", message=e.message)], None, e.message)
    except (RecursionError, MemoryError) as e:
        too_large = Msg("input too large ({kind})", kind=type(e).__name__)
        return ProblemResult(name, False, [Msg("error: {message}", message=too_large)], None, type(e).__name__)
    except Exception as e:  # noqa: BLE001 - one problem must never stop the others
        message = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        return ProblemResult(name, False, [Msg("error: {message}", message=message)], None, message)
    failures = [e.message for e in report.expect if not e.passed]
    output_failure = check_output(report, expected)
    if output_failure:
        failures.append(output_failure)
    if report.agree is False:
        bad = [n for n, g in report.grads.items() if g.agree is False]
        failures.append(Msg("torch and sympy disagree on {names}", names=joined(bad, COMMA)) if bad else
                        Msg("torch and sympy disagree on the Jacobian"))
    warnings = problem_warnings(report)
    return ProblemResult(name, not failures, failures, compact(report, limits.max_json_values), warnings=warnings)


def check_output(report: Any, expected: Any) -> str | None:
    """The forward value against the problem's ``expect_output`` (same entries; a [1]-vs-[] shape is forgiven)."""
    if expected is None:
        return None
    value = report.output.value
    if expected.numel() == value.numel():
        expected = expected.reshape(value.shape)
    if agrees(value, expected.to(value.dtype), report.tol):
        return None
    if expected.shape == value.shape:
        return Msg("output: expected {expected}, got {value} (differs at {where})", expected=short(expected),
                   value=short(value), where=differing(expected, value, report.tol))
    return Msg("output: expected {expected}, got {value} (shape {claimed} vs {right})", expected=short(expected),
               value=short(value), claimed=list(expected.shape), right=list(value.shape))


def problem_warnings(report: Any) -> list[str]:
    """What passed but deserves a look: formulas SymPy could not prove, finite differences that disagree."""
    warnings = [e.message for e in report.expect if e.outcome == "unproved"]
    warnings += [Msg("{name}: finite differences disagree with torch", name=n) for n, g in report.grads.items()
                 if g.numeric_agree is False]
    return warnings


def run_check(path: str, tol: float | None = None, progress: Progress | None = None,
              limits: Limits = DEFAULT) -> CheckResult:
    """Every problem of the file, in order.  ``progress(total)`` (a renderer's progress bar) gives a
    context whose value is called with each problem's name before that problem runs."""
    problems = load_problems(path)
    result = CheckResult(path)
    with (progress(len(problems)) if progress is not None else nullcontext(_no_progress)) as starting:
        for i, p in enumerate(problems):
            starting(problem_name(p, i))
            result.problems.append(run_problem(p, i, tol, limits))
    return result


def _no_progress(name: str) -> None:
    """No progress bar: nothing to show."""
