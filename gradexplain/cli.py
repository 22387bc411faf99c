"""The command line: a thin Typer app over :mod:`gradexplain.explain`.

torch and SymPy are imported inside the commands, so ``--help``, ``--version`` and usage
errors stay instant.  Every failure ends at one boundary (:func:`guarded`): bad input is exit 2
with one ``error:`` line (plus a caret for parse errors), never a traceback (``--debug`` shows it).
"""
from __future__ import annotations

import sys
from typing import Any, Callable, List, Optional

import click  # typer < 0.20 (pinned) runs on click
import typer

from . import __version__
from .errors import ExitCode, GradexplainError
from .limits import Limits

EVAL_HELP = """Explain the gradient of EXPR: PyTorch autograd and SymPy side by side.

EXPR is Python/PyTorch syntax, one expression or statements separated by ';'.
Inputs are NAME=VALUE: 3, 1,2,3, [[1,2],[3,4]], ones(2,5), randn(3), 1/3.

\b
Examples:
  gradexplain eval "2*dot(x,x)" x=1,2,3
  gradexplain eval "y = x*2; z = y*y*3; z.mean()" x=1,2,3 --json | jq .grads.x
  gradexplain eval "z = x*w + b; mse_loss(z, t)" x=5 t=0 w=1 b=3 --const x,t
  gradexplain eval "mm(a, w)" a=[[2,3],[1,2]] w=ones(2,1) -g [[1],[1]]
  gradexplain eval "2*dot(x,x)" x=1,2,3 --expect x=4*x
  gradexplain eval "z = x*w + b; mse_loss(z, t)" x=5 t=0 w=1 b=3 --const x,t --step sgd --lr 0.01 --steps 2
  gradexplain eval --json -- "-2*b" b=6,4     (-- before an EXPR that starts with -)

Exit: 0 agree, 1 disagree or an --expect fails, 2 bad input.
"""

app = typer.Typer(
    name="gradexplain",
    help="A gradient explainer: see why PyTorch's autograd gives the gradient it gives, and prove it right "
    "with SymPy.\n\nExamples (more in `gradexplain eval --help`):\n\n"
    "  gradexplain eval \"2*dot(x,x)\" x=1,2,3\n\n"
    "  gradexplain eval \"z = x*w + b; mse_loss(z, t)\" x=5 t=0 w=1 b=3 --const x,t\n\n"
    "  gradexplain check problems.toml\n\n  gradexplain ops",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gradexplain {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """gradexplain: PyTorch autograd and SymPy, side by side."""


def visible(text: str) -> str:
    """User text inside a message: newlines and control codes (terminal escapes, bidi overrides) escaped."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def fail(message: str, caret: str | None = None) -> None:
    typer.echo(f"error: {visible(message)}", err=True)
    if caret:
        typer.echo(caret, err=True)


def guarded(fn: Callable[[], int], debug: bool) -> None:
    """Run a command body; turn every failure into exit 2 with one ``error:`` line."""
    try:
        code = fn()
    except GradexplainError as e:
        if debug:
            raise
        fail(e.message, e.caret())
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except (RecursionError, MemoryError) as e:
        if debug:
            raise
        fail(f"input too large or too deeply nested ({type(e).__name__})")
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    except Exception as e:  # noqa: BLE001 - the one boundary: never a traceback for users
        if debug:
            raise
        detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
        fail(f"{type(e).__name__}: {detail} (rerun with --debug for the traceback)")
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    raise typer.Exit(code)


def expr_and_values(args: list[str]) -> tuple[str, list[str]]:
    """``EXPR NAME=VALUE...`` as given on the command line (eval, graph)."""
    expr, values = args[0], list(args[1:])
    stray = [v for v in values if "=" not in v]
    if stray:
        raise GradexplainError(f"expected NAME=VALUE after EXPR, got {stray[0]!r} (quote EXPR if it has spaces)")
    return expr, values


def split_names(values: list[str]) -> set[str]:
    return {n.strip() for v in values for n in v.split(",") if n.strip()}


def build_limits(max_elements: int, max_chars: int, max_depth: int, max_statements: int, max_exponent: int,
                 symbolic_timeout: float, max_hessian: int = 10**6) -> Any:
    counts = {"--max-elements": max_elements, "--max-chars": max_chars, "--max-depth": max_depth,
              "--max-statements": max_statements, "--max-exponent": max_exponent, "--max-hessian": max_hessian}
    negative = next((name for name, v in counts.items() if v < 0), None)
    if negative:
        raise GradexplainError(f"{negative} must be 0 or more, not {counts[negative]}")
    if not 0 <= symbolic_timeout <= 10**6:  # NaN fails this too; the interval timer takes no more
        raise GradexplainError(f"--symbolic-timeout must be between 0 (no limit) and 1e6 seconds, "
                               f"not {symbolic_timeout:g}")
    return Limits(max_elements=max_elements, max_chars=max_chars, max_depth=max_depth,
                  max_statements=max_statements, max_exponent=max_exponent, symbolic_timeout=symbolic_timeout,
                  max_hessian=max_hessian)


def resolve_format(fmt: str, as_json: bool) -> str:
    from .render.output import resolve_format as resolve  # heavy: the renderers pull in torch

    return resolve(fmt, as_json)


def emit(result: Any, fmt: str, brief: bool = False) -> None:
    """Write a Report (or a check result) in the chosen format to stdout."""
    from .render.output import emit as write  # heavy

    write(result, fmt, brief)


@app.command("eval", help=EVAL_HELP, context_settings={"allow_interspersed_args": True})
def eval_command(
    args: List[str] = typer.Argument(..., metavar="EXPR [NAME=VALUE]...", help="The expression, then its inputs."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document (schema gradexplain/1) on stdout."),
    fmt: str = typer.Option("text", "--format", help="text | json | markdown | latex"),
    brief: bool = typer.Option(False, "--brief", help="Only the answer: one line per input (torch, formula, ✓)."),
    grad_output: Optional[str] = typer.Option(None, "--grad-output", "-g", metavar="V",
                                              help="backward()'s gradient for a non-scalar output (vJp)."),
    jacobian: bool = typer.Option(False, "--jacobian", help="Also show the full Jacobian."),
    hessian: bool = typer.Option(False, "--hessian", help="Second derivatives: the Hessian block for each pair of "
                                 "inputs (scalar output), torch double backward and SymPy."),
    hvp: List[str] = typer.Option([], "--hvp", metavar="V|NAME=V", help="Hessian-vector product H·v without building "
                                  "the matrix (repeatable: one NAME=V per input)."),
    max_hessian: int = typer.Option(10**6, "--max-hessian", help="Limit on Hessian entries (--hessian)."),
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
) -> None:
    def body() -> int:
        from .explain import EvalOptions, explain  # heavy
        from .train import train_options  # heavy

        chosen = resolve_format(fmt, as_json)
        expr, values = expr_and_values(args)
        opts = EvalOptions(expr=expr, values=values, const=split_names(const), grad_output=grad_output,
                           jacobian=jacobian, expect=list(expect), tol=tol, dtype=dtype, seed=seed, output=output,
                           limits=build_limits(max_elements, max_chars, max_depth, max_statements, max_exponent,
                                               symbolic_timeout, max_hessian),
                           numeric=not no_numeric, hessian=hessian, hvp=list(hvp),
                           train=train_options(step, lr, steps, momentum, nesterov, betas, eps, weight_decay,
                                               no_zero_grad, schedule))
        report = explain(opts)
        emit(report, chosen, brief)
        return report.exit_code

    guarded(body, debug)


@app.command("check")
def check_command(
    file: str = typer.Argument(..., metavar="FILE.toml", help="A problem set: [[problem]] tables."),
    as_json: bool = typer.Option(False, "--json", help="One JSON report (schema gradexplain-check/1)."),
    fmt: str = typer.Option("text", "--format", help="text | json | markdown | latex"),
    tol: Optional[float] = typer.Option(None, "--tol", help="Agreement tolerance."),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks."),
) -> None:
    """Cross-check a problem set: every expected output and gradient, one line per problem.

    \b
    Example:
      gradexplain check problems.toml
      gradexplain check problems.toml --json | jq '.problems[] | select(.passed | not)'
    """

    def body() -> int:
        from .check import run_check  # heavy
        from .render.check_text import check_progress  # heavy

        chosen = resolve_format(fmt, as_json)
        result = run_check(file, tol=tol, progress=check_progress if chosen == "text" and sys.stderr.isatty() else None)
        emit(result, chosen)
        return ExitCode.OK if result.failed == 0 else ExitCode.DISAGREE

    guarded(body, debug)


@app.command("graph", context_settings={"allow_interspersed_args": True})
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

    guarded(body, debug)


@app.command("ops")
def ops_command(
    as_json: bool = typer.Option(False, "--json", help="The registry as JSON."),
) -> None:
    """List the supported operations with their derivative rules (EXPR formulas over a, b, g, out)."""

    def body() -> int:
        from .render.ops_text import print_ops  # heavy

        print_ops(as_json)
        return ExitCode.OK

    guarded(body, False)


def main() -> None:
    """Entry point: usage errors become one ``error:`` line too."""
    try:
        code = app(standalone_mode=False)
    except click.exceptions.NoSuchOption as e:
        hint = " (an EXPR starting with '-' needs '--' before it: eval -- \"-2*b\" b=6,4)" \
            if e.option_name and e.option_name[1:2] != "-" else ""
        fail(f"{e.format_message()}{hint}")
        sys.exit(ExitCode.BAD_INPUT)
    except click.exceptions.UsageError as e:
        fail(e.format_message())
        sys.exit(ExitCode.BAD_INPUT)
    except typer.Abort:  # typer.Exit never gets here: non-standalone mode returns its code
        sys.exit(ExitCode.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
