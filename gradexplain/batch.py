"""``eval --batch FILE``: many problems in one process, JSON lines in, JSON lines out.

Start-up (importing torch and SymPy) is most of a single ``eval``; a batch pays it once.  Each
input line is one problem, ``{"expr": ..., "inputs": {NAME: VALUE}, "options": [...]}``, and
gives exactly one output line: the ``gradexplain/1`` document, or a ``gradexplain-error/1``
document naming the line.  A bad line never stops the batch.  How options become a run is the
CLI's business (the same parser as ``eval``), handed in as ``evaluate``, so this module knows
nothing of click.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .errors import GradexplainError
from .i18n import Msg
from .render.errors import render_error

KEYS = {"expr", "inputs", "options", "id"}
SHAPE = '{"expr": "2*dot(x,x)", "inputs": {"x": "1,2,3"}, "options": ["--const", "t"]}'


@dataclass
class Outcome:
    """What one problem gave: its output line and its exit code (0 agree, 1 disagree, 2 bad)."""
    text: str
    code: int
    error: str | None = None  # the message, for the stderr line of a bad problem


def value_text(name: str, value: Any) -> str:
    """An input as VALUE text: a string as written (``"1,2,3"``, ``"ones(2,5)"``), a JSON number
    or (nested) list of numbers as its JSON text, which VALUE reads the same way."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        raise GradexplainError(Msg("inputs.{name}: expected a VALUE text, a number or a nested list, got {value}",
                                   name=name, value=json.dumps(value)))
    return json.dumps(value)


def problem_argv(problem: Any) -> list[str]:
    """The ``eval`` command line of one problem: its options, ``--``, EXPR and NAME=VALUE texts."""
    if not isinstance(problem, dict):
        raise GradexplainError(Msg("expected a JSON object like {shape}", shape=SHAPE))
    unknown = sorted(set(problem) - KEYS)
    if unknown:
        raise GradexplainError(Msg("unknown key {key!r} (keys: expr, inputs, options, id)", key=unknown[0]))
    expr = problem.get("expr")
    if not isinstance(expr, str):
        raise GradexplainError(Msg('"expr" must be a string (the EXPR)'))
    inputs = problem.get("inputs", {})
    if not isinstance(inputs, dict):
        raise GradexplainError(Msg('"inputs" must be an object: {example}', example='{"x": "1,2,3", "w": [[1, 2]]}'))
    options = problem.get("options", [])
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise GradexplainError(Msg('"options" must be a list of strings: ["--const", "t", "--tol", "1e-9"]'))
    if "--" in options:
        raise GradexplainError(Msg('"options" cannot hold "--": EXPR and inputs have their own keys'))
    return [*options, "--", expr, *(f"{n}={value_text(n, v)}" for n, v in inputs.items())]


def error_outcome(message: str, line: int, col: int | None = None, source: str | None = None) -> Outcome:
    return Outcome(render_error(message, col if source is not None else None, source, line=line), 2, message)


def run_problem(line_no: int, text: str, evaluate: Callable[[list[str], dict[str, Any]], tuple[str, int]],
                visible: Callable[[str], str]) -> Outcome:
    """One input line → one Outcome; every failure of this problem stays in this problem."""
    try:
        problem = json.loads(text)
    except json.JSONDecodeError as e:
        return error_outcome(Msg("not valid JSON: {reason} (column {column})", reason=e.msg, column=e.colno), line_no)
    try:
        argv = problem_argv(problem)
        extra = {"line": line_no, **({"id": problem["id"]} if "id" in problem else {})}
        doc, code = evaluate(argv, extra)
        return Outcome(doc, code)
    except GradexplainError as e:
        outcome = error_outcome(visible(e.message), line_no, e.col, e.source)
        outcome.error = e.message  # the Msg itself: the stderr line is said in the reader's language
        return outcome
    except (RecursionError, MemoryError) as e:
        return error_outcome(Msg("input too large or too deeply nested ({kind})", kind=type(e).__name__), line_no)
    except Exception as e:  # noqa: BLE001 - one problem's failure must not stop the batch
        detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return error_outcome(visible(f"{type(e).__name__}: {detail}"), line_no)


def run_batch(lines: Iterable[str], evaluate: Callable[[list[str], dict[str, Any]], tuple[str, int]],
              write: Callable[[str], None], report_error: Callable[[str], None],
              visible: Callable[[str], str]) -> int:
    """Every non-blank line in order; exit 2 if any was bad, else 1 if any disagreed, else 0."""
    codes = {0}
    for line_no, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        outcome = run_problem(line_no, text, evaluate, visible)
        write(outcome.text)
        if outcome.error is not None:
            report_error(Msg("line {line}: {message}", line=line_no, message=outcome.error))
        codes.add(outcome.code)
    return max(codes)
