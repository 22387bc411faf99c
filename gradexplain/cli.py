"""The command line: a thin Typer app over :mod:`gradexplain.explain`.

torch and SymPy are imported inside the commands, so ``--help``, ``--version`` and usage
errors stay instant.  Every failure ends at one boundary (:func:`guarded`): bad input is exit 2
with one ``error:`` line (plus a caret for parse errors), never a traceback (``--debug`` shows it).
"""
from __future__ import annotations

import os
import shlex
import sys
from typing import Any, Callable, List, Optional

import click  # typer < 0.20 (pinned) runs on click
import typer
from click.core import ParameterSource

from . import __version__
from .cli_help import LocalizedCommand, LocalizedGroup, shown_help_texts
from .errors import ExitCode, GradexplainError
from .i18n import Msg, _, language, resolve_language, set_language
from .limits import Limits
from .sanitize import visible
from .usage import usage_message

EVAL_HELP = """Explain the gradient of EXPR: PyTorch autograd and SymPy side by side.

EXPR is Python/PyTorch syntax, one expression or statements separated by ';'.
Inputs are NAME=VALUE: 3, 1,2,3, [[1,2],[3,4]], ones(2,5), randn(3), 1/3.
Quote what a shell expands: [ ] ( ) * as in "a=[[2,4]]" "w=ones(2,1)".

\b
Examples:
  gradexplain eval "2*dot(x,x)" x=1,2,3
  gradexplain eval "y = x*2; z = y*y*3; z.mean()" x=1,2,3 --json | jq .grads.x
  gradexplain eval "z = x*w + b; mse_loss(z, t)" x=5 t=0 w=1 b=3 --const x,t
  gradexplain eval "mm(a, w)" "a=[[2,3],[1,2]]" "w=ones(2,1)" -g "[[1],[1]]"
  gradexplain eval "2*dot(x,x)" x=1,2,3 --expect "x=4*x"
  gradexplain eval "mse_loss(w*x, t)" x=5 t=0 w=1 --const x,t --step sgd
  gradexplain eval --batch problems.jsonl     (JSON lines, see README)
  gradexplain eval --json -- "-2*b" b=6,4     (-- ends the options)

Exit: 0 agree, 1 disagree or an --expect fails, 2 bad input.
"""

app = typer.Typer(
    name="gradexplain",
    cls=LocalizedGroup,  # --help in the reader's language (cli_help)
    help="A gradient explainer: see why PyTorch's autograd gives the gradient it gives, and prove it right "
    "with SymPy.\n\nExamples (more in `gradexplain eval --help`):\n\n"
    "  gradexplain eval \"2*dot(x,x)\" x=1,2,3\n\n"
    "  gradexplain eval \"z = x*w + b; mse_loss(z, t)\" x=5 t=0 w=1 b=3 --const x,t\n\n"
    "  gradexplain check problems.toml\n\n  gradexplain run train.py   (runs your own script)\n\n  gradexplain ops",
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


LANG_HELP = "Language of what you read: en | zh (default: GRADEXPLAIN_LANG, then LC_ALL, LC_MESSAGES, LANG)."


def lang_option() -> Any:
    """``--lang`` on every command; :func:`main` reads it before the command line is parsed (so
    that ``--help`` and usage errors are in that language too), the commands only accept it."""
    return typer.Option(None, "--lang", metavar="en|zh", help=LANG_HELP)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gradexplain {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    lang: Optional[str] = lang_option(),
) -> None:
    """gradexplain: PyTorch autograd and SymPy, side by side."""


EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a program whose reader went away


def fail(message: str, caret: str | None = None, *, as_json: bool = False, col: int | None = None,
         source: str | None = None) -> None:
    """The one ``error:`` line on stderr; under ``--json`` also a ``gradexplain-error/1`` document on stdout."""
    typer.echo(f"error: {visible(_(message))}", err=True)  # "error:" stays as the contract spells it
    if caret:
        typer.echo(caret, err=True)
    if as_json:
        from .render.errors import render_error  # heavy

        try:
            sys.stdout.write(render_error(visible(message), col if source is not None else None, source) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # nobody reads stdout: the stderr line and exit 2 still tell
            silence_stdout()


def guarded(fn: Callable[[], int], debug: bool, json_errors: bool = False, lang: str | None = None) -> None:
    """Run a command body in the reader's language (``--lang``, else the environment's); turn every
    failure into exit 2 with one ``error:`` line (and, with ``json_errors``, the error as JSON on stdout)."""

    try:
        chosen = resolve_language(lang, os.environ)
    except GradexplainError as e:
        fail(e.message, as_json=json_errors)
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    with language(chosen):
        guarded_body(fn, debug, json_errors)


def guarded_body(fn: Callable[[], int], debug: bool, json_errors: bool) -> None:
    try:
        code = fn()
    except GradexplainError as e:
        if debug:
            raise
        fail(e.message, e.caret(), as_json=json_errors, col=e.col, source=e.source)
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except BrokenPipeError:  # stdout closed by the reader (``| head``): end quietly (click would exit 1)
        silence_stdout()
        raise typer.Exit(EXIT_CLOSED_PIPE) from None
    except (RecursionError, MemoryError) as e:
        if debug:
            raise
        fail(Msg("input too large or too deeply nested ({kind})", kind=type(e).__name__), as_json=json_errors)
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    except Exception as e:  # noqa: BLE001 - the one boundary: never a traceback for users
        if debug:
            raise
        detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
        fail(Msg("{kind}: {detail} (rerun with --debug for the traceback)", kind=type(e).__name__, detail=detail),
             as_json=json_errors)
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    raise typer.Exit(code)


def expr_and_values(args: list[str]) -> tuple[str, list[str]]:
    """``EXPR NAME=VALUE...`` as given on the command line (eval, graph)."""
    expr, values = args[0], list(args[1:])
    for i, arg in enumerate(values):
        if "=" in arg:
            continue
        if i == 0:
            raise GradexplainError(Msg("expected NAME=VALUE after EXPR, got {arg!r}: give it a NAME (NAME={arg}), "
                                       "or, if the shell split EXPR at a space, quote EXPR: {quoted}", arg=arg,
                                       quoted=shell_quoted(expr + " " + arg)))
        before = values[i - 1]  # most likely a VALUE the shell split at a space
        raise GradexplainError(Msg("expected NAME=VALUE, got {arg!r} after {before!r}: if the shell split that "
                                   "VALUE at a space, quote the VALUE: {quoted}", arg=arg, before=before,
                                   quoted=shell_quoted(before + " " + arg)))
    return expr, values


def shell_quoted(text: str) -> str:
    """``text`` as one shell word, in double quotes where that is safe (what the help writes)."""

    return f'"{text}"' if not any(c in text for c in '"$`\\!') else shlex.quote(text)


def split_names(values: list[str]) -> set[str]:
    return {n.strip() for v in values for n in v.split(",") if n.strip()}


COST_HELP = {  # the cost limits eval and check share: parameter → (option, default, help)
    "max_jacobian": ("--max-jacobian", 2**26, "Limit on elements touched building a Jacobian (passes × elements)."),
    "max_numeric": ("--max-numeric", 2**26, "Limit on elements touched by per-entry finite differences "
                    "(past it: random directions)."),
    "max_json_values": ("--max-json-values", 10**6, "Entries of one tensor a document writes out (more: a summary)."),
    "max_json_total": ("--max-json-total", 4 * 10**6, "Tensor entries one document writes in full (later ones: "
                       "summaries)."),
    "max_memory": ("--max-memory", 768, "MiB of tensors the torch run may hold at once, predicted from the shapes "
                   "before the work."),
}


def cost_option(name: str) -> Any:
    flag, default, text = COST_HELP[name]
    return typer.Option(default, flag, help=text)


def build_limits(max_elements: int, max_chars: int, max_depth: int, max_statements: int, max_exponent: int,
                 symbolic_timeout: float, max_hessian: int = 10**6, **costs: int) -> Any:
    """The Limits the options ask for; ``costs``: ``max_jacobian``, ``max_numeric``, ``max_step_record``,
    ``max_json_values``, ``max_json_total`` (each 0 or more, as every count)."""
    counts = {"--max-elements": max_elements, "--max-chars": max_chars, "--max-depth": max_depth,
              "--max-statements": max_statements, "--max-exponent": max_exponent, "--max-hessian": max_hessian,
              **{"--" + k.replace("_", "-"): v for k, v in costs.items()}}
    negative = next((name for name, v in counts.items() if v < 0), None)
    if negative:
        raise GradexplainError(Msg("{option} must be 0 or more, not {value}", option=negative, value=counts[negative]))
    if not 0 <= symbolic_timeout <= 10**6:  # NaN fails this too; the interval timer takes no more
        raise GradexplainError(Msg("--symbolic-timeout must be between 0 (no limit) and 1e6 seconds, not {value:g}",
                                   value=symbolic_timeout))
    return Limits(max_elements=max_elements, max_chars=max_chars, max_depth=max_depth,
                  max_statements=max_statements, max_exponent=max_exponent, symbolic_timeout=symbolic_timeout,
                  max_hessian=max_hessian, **costs)


def resolve_format(fmt: str, as_json: bool) -> str:
    from .render.output import resolve_format as resolve  # heavy: the renderers pull in torch

    return resolve(fmt, as_json)


def emit(result: Any, fmt: str, brief: bool = False, limits: Limits | None = None) -> None:
    """Write a Report (or a check result) in the chosen format to stdout (documents within ``limits``'
    --max-json-values and --max-json-total)."""
    from .render.output import emit as write  # heavy
    from .report import json_caps  # heavy

    with json_caps(limits or Limits()):
        write(result, fmt, brief)


@app.command("eval", cls=LocalizedCommand, help=EVAL_HELP, context_settings={"allow_interspersed_args": True})
def eval_command(
    args: Optional[List[str]] = typer.Argument(None, metavar="EXPR [NAME=VALUE]...",
                                               help="The expression, then its inputs."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document (schema gradexplain/1) on stdout."),
    fmt: str = typer.Option("text", "--format", help="text | json | markdown | latex"),
    batch: Optional[str] = typer.Option(None, "--batch", metavar="FILE|-",
                                        help='Many problems in one process: JSON lines {"expr": ..., "inputs": '
                                        '{...}, "options": [...]} in, one JSON line each out.'),
    brief: bool = typer.Option(False, "--brief", help="Only the answer: one line per input (torch, formula, ✓)."),
    grad_output: Optional[str] = typer.Option(None, "--grad-output", "-g", metavar="V",
                                              help="backward()'s gradient for a non-scalar output (vJp)."),
    jacobian: bool = typer.Option(False, "--jacobian", help="Also show the full Jacobian."),
    hessian: bool = typer.Option(False, "--hessian", help="Second derivatives: the Hessian block for each pair of "
                                 "inputs (scalar output), torch double backward and SymPy."),
    hvp: List[str] = typer.Option([], "--hvp", metavar="V|NAME=V", help="Hessian-vector product H·v without building "
                                  "the matrix (repeatable: one NAME=V per input)."),
    max_hessian: int = typer.Option(10**6, "--max-hessian", help="Limit on Hessian entries (--hessian)."),
    max_jacobian: int = cost_option("max_jacobian"),
    max_numeric: int = cost_option("max_numeric"),
    max_step_record: int = typer.Option(2**25, "--max-step-record", help="Limit on numbers --step records "
                                        "(about 8 per parameter element per step)."),
    max_json_values: int = cost_option("max_json_values"),
    max_json_total: int = cost_option("max_json_total"),
    max_memory: int = cost_option("max_memory"),
    expect: List[str] = typer.Option([], "--expect", metavar="NAME=VALUE|FORMULA",
                                     help="The gradient you expect (repeatable); mismatch → exit 1."),
    tol: Optional[float] = typer.Option(None, "--tol", help="Agreement tolerance (default 1e-6; 1e-4 for float32)."),
    const: List[str] = typer.Option([], "--const", metavar="NAMES", help="Inputs that do not require grad: x,t"),
    dtype: str = typer.Option("float64", "--dtype", help="float64 | float32"),
    seed: int = typer.Option(0, "--seed", help="Seed for randn/rand values and dropout masks."),
    output: Optional[str] = typer.Option(None, "--output", metavar="NAME", help="Use this statement as the output."),
    no_numeric: bool = typer.Option(False, "--no-numeric", help="Skip the finite-difference third opinion."),
    max_elements: int = typer.Option(10**7, "--max-elements", help="Limit on elements per tensor."),
    max_chars: int = typer.Option(10_000, "--max-chars", help="Limit on EXPR length."),
    max_depth: int = typer.Option(100, "--max-depth", help="Limit on nesting depth."),
    max_statements: int = typer.Option(200, "--max-statements", help="Limit on statements."),
    max_exponent: int = typer.Option(10**4, "--max-exponent", help="Limit on integer powers of constants."),
    symbolic_timeout: float = typer.Option(10.0, "--symbolic-timeout", help="Seconds of SymPy work before giving up."),
    step: Optional[str] = typer.Option(None, "--step", metavar="OPT",
                                       help="Train: sgd | adam | adamw | rmsprop | adagrad steps on the non-const inputs."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate for --step (default: the optimizer's)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Number of --step steps (default 1)."),
    momentum: Optional[float] = typer.Option(None, "--momentum", help="Momentum (sgd, rmsprop)."),
    nesterov: bool = typer.Option(False, "--nesterov", help="Nesterov momentum (sgd)."),
    betas: Optional[str] = typer.Option(None, "--betas", metavar="B1,B2", help="Adam/AdamW betas, e.g. 0.9,0.999."),
    eps: Optional[float] = typer.Option(None, "--eps", help="Optimizer epsilon (adam, adamw, rmsprop, adagrad)."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="Weight decay for --step."),
    no_zero_grad: bool = typer.Option(False, "--no-zero-grad", help="Skip zero_grad(): show .grad accumulating."),
    schedule: Optional[str] = typer.Option(None, "--schedule", metavar="NAME:K=V,...",
                                           help="LR scheduler after each step: step:step_size=1,gamma=0.5 | "
                                           "exponential:gamma=0.9 | cosine:T_max=10 | linear:total_iters=4"),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks (for developers)."),
    lang: Optional[str] = lang_option(),
) -> None:
    params = dict(locals())

    def body() -> int:
        from .explain import explain  # heavy

        if batch is not None:
            return run_batch_command(batch, params)
        opts, chosen = eval_options(params)
        report = explain(opts)
        emit(report, chosen, brief, opts.limits)
        return report.exit_code

    guarded(body, debug, json_errors=as_json or fmt.lower() == "json" or batch is not None, lang=lang)


def eval_options(p: dict[str, Any]) -> tuple[Any, str]:
    """``eval``'s parameters (by name, as the command or a batch line's options give them) → the
    pipeline's EvalOptions and the output format."""
    from .explain import EvalOptions  # heavy
    from .train import train_options  # heavy

    chosen = resolve_format(p["fmt"], p["as_json"])
    if not p["args"]:
        raise GradexplainError(Msg("missing EXPR: gradexplain eval \"2*dot(x,x)\" x=1,2,3 (or --batch FILE)"))
    expr, values = expr_and_values(list(p["args"]))
    opts = EvalOptions(expr=expr, values=values, const=split_names(p["const"]), grad_output=p["grad_output"],
                       jacobian=p["jacobian"], expect=list(p["expect"]), tol=p["tol"], dtype=p["dtype"],
                       seed=p["seed"], output=p["output"],
                       limits=build_limits(p["max_elements"], p["max_chars"], p["max_depth"], p["max_statements"],
                                           p["max_exponent"], p["symbolic_timeout"], p["max_hessian"],
                                           **{k: p[k] for k in (*COST_HELP, "max_step_record")}),
                       numeric=not p["no_numeric"], hessian=p["hessian"], hvp=list(p["hvp"]),
                       train=train_options(p["step"], p["lr"], p["steps"], p["momentum"], p["nesterov"], p["betas"],
                                           p["eps"], p["weight_decay"], p["no_zero_grad"], p["schedule"]))
    return opts, chosen


BATCH_WIDE = {"batch", "as_json", "debug", "lang"}  # the only eval options that belong to the batch itself


def run_batch_command(source: str, params: dict[str, Any]) -> int:
    """``eval --batch FILE|-``: each line's options parsed by eval's own parser, one process."""

    from .batch import run_batch  # heavy
    from .explain import explain  # heavy
    from .render.json import dumps, report_dict  # heavy
    from .report import document_budget, json_caps  # heavy

    ctx = click.get_current_context()
    shared = [p.opts[0] for p in ctx.command.params if p.name not in BATCH_WIDE
              and ctx.get_parameter_source(p.name) == ParameterSource.COMMANDLINE]
    if shared:
        raise GradexplainError(Msg("with --batch, {option} belongs in each line's \"options\" (or EXPR in \"expr\")",
                                   option=shared[0]))
    command = ctx.command

    def evaluate(argv: list[str], extra: dict[str, Any]) -> tuple[str, int]:
        if any(a in ("-h", "--help", "--batch") for a in argv[:argv.index("--")]):
            raise GradexplainError(Msg('"options" cannot hold --help or --batch'))
        try:
            line_params = command.make_context("eval", ["--format", "json", *argv], parent=ctx.parent).params
        except click.exceptions.UsageError as e:
            raise GradexplainError(usage_message(e)) from None
        opts, chosen = eval_options(line_params)
        if chosen != "json":
            raise GradexplainError(Msg("--format {format}: a batch writes JSON lines only", format=chosen))
        report = explain(opts)
        with json_caps(opts.limits), document_budget():  # each line's document is bounded on its own
            return dumps({**report_dict(report), **extra}), report.exit_code

    def write(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()  # one line per problem as it is done, for a reader that streams

    if source == "-":
        return run_batch(sys.stdin, evaluate, write, lambda m: fail(m), visible)
    try:
        with open(source, encoding="utf-8") as lines:
            return run_batch(lines, evaluate, write, lambda m: fail(m), visible)
    except FileNotFoundError:
        raise GradexplainError(Msg("{path}: no such file", path=source)) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise GradexplainError(Msg("{path}: cannot read it ({kind})", path=source, kind=type(e).__name__)) from None


CHECK_HELP = """Cross-check a problem set: every expected output and gradient, one line per problem.

FILE.toml holds [\\[problem]] tables; `gradexplain samples` lists ready ones (seeds.toml, calculus.toml, matrix.toml).

\b
Example (problems.toml):
  [\\[problem]]
  name = "two-dot-x-x"
  expr = "2*dot(x,x)"
  inputs = { x = "1,2,3" }
  expect_output = "28"
  expect = { x = "4*x" }
\b
  [\\[problem]]
  name = "vjp-mm"
  expr = "mm(a, w)"
  inputs = { a = "[[2,3],[1,2]]", w = "ones(2,1)" }
  grad_output = "[[1],[1]]"
  expect = { a = "[[1,1],[1,1]]", w = "[[3],[5]]" }
\b
  [\\[problem]]
  name = "linear-then-mse"
  expr = "z = x*w + b; mse_loss(z, t)"
  inputs = { x = "5", t = "0", w = "1", b = "3" }
  const = ["x", "t"]
  output_name = "z"
  expect_output = "8"
  expect = { w = "x", b = "1" }
  tol = 1e-9
  dtype = "float64"
  seed = 0
\b
Keys (name, expr and inputs are required):
  name           the problem's name in the report
  expr           EXPR, as for eval
  inputs         NAME = VALUE text, as for eval ("1,2,3", "[[2,4]]", "ones(2,5)")
  const          inputs that do not require grad (eval --const)
  grad_output    backward()'s gradient for a non-scalar output (eval -g)
  output_name    the statement to use as the output (eval --output)
  expect_output  the expected forward value (older name: output)
  expect         NAME = the expected gradient: a value, or a formula over the
                 input names, checked numerically and proved with SymPy
  tol            agreement tolerance (default 1e-6; 1e-4 for float32)
  dtype          float64 (default) or float32
  seed           seed for randn/rand inputs and dropout masks (default 0)
\b
Examples:
  gradexplain check problems.toml
  gradexplain check problems.toml --json | jq '.problems[] | select(.passed | not)'
  gradexplain check problems.toml --format markdown > report.md
\b
Exit: 0 all pass, 1 any fails, 2 the file cannot be read.
"""


@app.command("check", cls=LocalizedCommand, help=CHECK_HELP)
def check_command(
    file: str = typer.Argument(..., metavar="FILE.toml", help="A problem set: [\\[problem]] tables."),
    as_json: bool = typer.Option(False, "--json", help="One JSON report (schema gradexplain-check/1)."),
    fmt: str = typer.Option("text", "--format", help="text | json | markdown | latex"),
    tol: Optional[float] = typer.Option(None, "--tol", help="Agreement tolerance."),
    max_jacobian: int = cost_option("max_jacobian"),
    max_numeric: int = cost_option("max_numeric"),
    max_json_values: int = cost_option("max_json_values"),
    max_json_total: int = cost_option("max_json_total"),
    max_memory: int = cost_option("max_memory"),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks."),
    lang: Optional[str] = lang_option(),
) -> None:
    costs = dict(max_jacobian=max_jacobian, max_numeric=max_numeric, max_json_values=max_json_values,
                 max_json_total=max_json_total, max_memory=max_memory)

    def body() -> int:
        from .check import run_check  # heavy
        from .render.check_text import check_progress  # heavy

        chosen = resolve_format(fmt, as_json)
        d = Limits()
        limits = build_limits(d.max_elements, d.max_chars, d.max_depth, d.max_statements, d.max_exponent,
                              d.symbolic_timeout, d.max_hessian, **costs)
        result = run_check(file, tol=tol, progress=check_progress if chosen == "text" and sys.stderr.isatty() else None,
                           limits=limits)
        emit(result, chosen, limits=limits)
        return ExitCode.OK if result.failed == 0 else ExitCode.DISAGREE

    guarded(body, debug, json_errors=as_json or fmt.lower() == "json", lang=lang)


@app.command("graph", cls=LocalizedCommand, context_settings={"allow_interspersed_args": True})
def graph_command(
    args: List[str] = typer.Argument(..., metavar="EXPR [NAME=VALUE]...", help="The expression, then its inputs."),
    fmt: str = typer.Option("dot", "--format", help="dot | mermaid | svg (svg needs Graphviz's dot program)"),
    grad_output: Optional[str] = typer.Option(None, "--grad-output", "-g", metavar="V",
                                              help="backward()'s gradient for a non-scalar output (vJp)."),
    const: List[str] = typer.Option([], "--const", metavar="NAMES", help="Inputs that do not require grad: x,t"),
    dtype: str = typer.Option("float64", "--dtype", help="float64 | float32"),
    seed: int = typer.Option(0, "--seed", help="Seed for randn/rand values and dropout masks."),
    output: Optional[str] = typer.Option(None, "--output", metavar="NAME", help="Use this statement as the output."),
    max_nodes: int = typer.Option(150, "--max-nodes", help="Draw at most this many graph nodes (a note says so)."),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks."),
    lang: Optional[str] = lang_option(),
) -> None:
    """Print the backward graph with the user's labels, shapes, values and gradients on its nodes.

    \b
    Examples:
      gradexplain graph "2*dot(x,x)" x=1,2,3 | dot -Tpng > graph.png
      gradexplain graph "2*dot(x,x)" x=1,2,3 --format mermaid
      gradexplain graph "2*dot(x,x)" x=1,2,3 --format svg > graph.svg
    """

    def body() -> int:
        from .options import EvalOptions  # heavy
        from .render.dot import graph_printer  # heavy
        from .torch_report import explain_torch  # heavy: torch only, so a picture never imports SymPy

        show = graph_printer(fmt.lower())
        expr, values = expr_and_values(args)
        report = explain_torch(EvalOptions(expr=expr, values=values, const=split_names(const),
                                           grad_output=grad_output, dtype=dtype, seed=seed, output=output,
                                           numeric=False, symbolic=False))
        show(report, max_nodes)
        return ExitCode.OK

    guarded(body, debug, lang=lang)


RUN_HELP = """Run SCRIPT (your own Python code) and explain every backward() it makes.

Unlike EXPR, which is parsed and never executed, SCRIPT is EXECUTED, exactly as `python SCRIPT ARGS` would run it (__name__ == "__main__", sys.argv, the script's folder on sys.path): only run code you trust.

Its own output is left as it is (with --json it goes to stderr). Each backward() is explained after it ran, as eval explains an EXPR; a backward() repeated by a training loop is explained once, then summarised in one line per call. ARGS go to the script; put them after -- if they clash with these options.

\b
Examples:
  gradexplain run train.py
  gradexplain run train.py --json --all | jq .grads
  gradexplain run train.py --brief -- --epochs 3

Exit: the script's own status (and traceback) if it fails; else 0 when every explained backward() agrees, 1 otherwise.
"""


@app.command("run", cls=LocalizedCommand, help=RUN_HELP, context_settings={"allow_interspersed_args": True,
                                                    "ignore_unknown_options": True, "allow_extra_args": True})
def run_command(
    args: List[str] = typer.Argument(..., metavar="SCRIPT [ARGS]...", help="The script (executed), then its arguments."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per backward() on stdout (script output → stderr)."),
    fmt: str = typer.Option("text", "--format", help="text | json | markdown"),
    brief: bool = typer.Option(False, "--brief", help="Only the answer per backward(): x.grad = ... = formula ✓"),
    explain_all: bool = typer.Option(False, "--all", help="Explain every backward() in full (no summaries)."),
    max_explained: int = typer.Option(3, "--max-explained", metavar="N", help="Explain at most N calls in full."),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks of gradexplain itself."),
    lang: Optional[str] = lang_option(),
) -> None:
    def body() -> int:
        from .render.run_text import emit_run  # heavy
        from .run import outcomes, run_script  # heavy

        chosen = resolve_format(fmt, as_json)
        if chosen == "latex":
            raise GradexplainError(Msg("run --format takes text, json or markdown"))
        script = run_script(args[0], list(args[1:]), explain_all=explain_all, max_explained=max_explained,
                            stdout_to_stderr=chosen == "json")
        sys.stdout.flush()
        items = list(outcomes(script.records))
        emit_run(items, chosen, brief, script.failures)
        if script.traceback:
            sys.stdout.flush()
            sys.stderr.write(script.traceback)
        if script.status != 0:
            return script.status
        return 1 if any(getattr(i, "agree", None) is False for i in items) else 0

    guarded(body, debug, lang=lang)


@app.command("ops", cls=LocalizedCommand)
def ops_command(
    as_json: bool = typer.Option(False, "--json", help="The registry as JSON."),
    lang: Optional[str] = lang_option(),
) -> None:
    """List the supported operations with their derivative rules (EXPR formulas over a, b, g, out)."""

    def body() -> int:
        from .render.ops_text import print_ops  # heavy

        print_ops(as_json)
        return ExitCode.OK

    guarded(body, False, lang=lang)


@app.command("samples", cls=LocalizedCommand)
def samples_command(
    name: Optional[str] = typer.Argument(None, metavar="[NAME]", help="A sample to print (e.g. seeds.toml, mlp.sh)."),
    path: bool = typer.Option(False, "--path", help="Print the folder that holds the samples."),
    lang: Optional[str] = lang_option(),
) -> None:
    """List the problem sets and programs shipped with gradexplain, or print one.

    \b
    Examples:
      gradexplain samples
      gradexplain samples seeds.toml > seeds.toml && gradexplain check seeds.toml
      gradexplain check "$(gradexplain samples --path)/matrix.toml"
    """

    def body() -> int:
        from .sample_files import SAMPLES, all_samples, find_sample  # heavy

        if path:
            sys.stdout.write(f"{SAMPLES}\n")
        elif name is None:
            from .render.samples import samples_text  # heavy

            sys.stdout.write(samples_text(all_samples()))
        else:
            sys.stdout.write(find_sample(name).path.read_text(encoding="utf-8"))
        return 0

    guarded(body, False, lang=lang)


def wants_json(argv: list[str]) -> bool:
    """Whether the command line asks for JSON, for a usage error found before the options are parsed."""
    before = argv[:argv.index("--")] if "--" in argv else argv
    pairs = zip(before, before[1:] + [""])
    return "--json" in before or "--format=json" in before or any(a == "--format" and b == "json" for a, b in pairs)


def lang_argument(argv: list[str]) -> str | None:
    """``--lang X`` / ``--lang=X`` anywhere before ``--`` (the last one wins, as click's would)."""
    before = argv[:argv.index("--")] if "--" in argv else argv
    found = None
    for i, arg in enumerate(before):
        if arg == "--lang" and i + 1 < len(before):
            found = before[i + 1]
        elif arg.startswith("--lang="):
            found = arg.split("=", 1)[1]
    return found


def help_texts() -> list[str]:
    """Every help text the CLI shows, as click shows it, for the message catalog (scripts/build_catalogs.py)."""
    return shown_help_texts(typer.main.get_command(app))


def silence_stdout() -> None:
    """The reader closed stdout: point it at /dev/null so later writes and the interpreter's final
    flush stay silent (Python's own advice for SIGPIPE)."""

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test runner's buffer)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)


def main() -> None:
    """Entry point: usage errors become one ``error:`` line too; a closed stdout ends quietly."""

    as_json = wants_json(sys.argv[1:])
    try:
        set_language(resolve_language(lang_argument(sys.argv[1:]), os.environ))
    except GradexplainError as e:
        fail(e.message, as_json=as_json)
        sys.exit(ExitCode.BAD_INPUT)
    try:
        code = app(standalone_mode=False)
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        sys.exit(EXIT_CLOSED_PIPE)
    except click.exceptions.NoArgsIsHelpError as e:  # bare `gradexplain`: the help is the answer
        if e.format_message().strip():  # (rich help has been printed already)
            typer.echo(e.format_message())
        sys.exit(0)
    except click.exceptions.NoSuchOption as e:
        said = usage_message(e)
        if e.option_name and e.option_name[1:2] != "-":
            said = Msg("{message} (an EXPR starting with '-' needs '--' before it: eval -- \"-2*b\" b=6,4)",
                       message=said)
        fail(said, as_json=as_json)
        sys.exit(ExitCode.BAD_INPUT)
    except click.exceptions.UsageError as e:
        fail(usage_message(e), as_json=as_json)
        sys.exit(ExitCode.BAD_INPUT)
    except typer.Abort:  # typer.Exit never gets here: non-standalone mode returns its code
        sys.exit(ExitCode.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
