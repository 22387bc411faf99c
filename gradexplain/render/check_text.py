"""The terminal view of ``gradexplain check``: one line per problem, a summary, and the progress bar."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..check import CheckResult
from ..i18n import Msg, _
from ..sanitize import visible  # names and messages are the file's text: never raw to the terminal
from .style import Prose, make_console

SHOWN_FAILURES = 2  # per problem in the text view; JSON has them all


@contextmanager
def check_progress(total: int) -> Iterator[Callable[[str], None]]:
    """A transient progress bar on stderr; the value is called with each problem's name as it starts."""
    columns = (TextColumn(_("checking")), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns, transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("", total=total)
        started = False

        def starting(name: str) -> None:
            nonlocal started
            if started:
                progress.advance(task)
            started = True
            progress.update(task, description=name)

        yield starting


def print_check(result: CheckResult, console: Console | None = None) -> None:
    """One line per problem (✓, ? for passed-with-warnings, ✗ with its first failures), then a summary."""
    console = console or make_console()
    for p in result.problems:
        if not p.passed:
            line = Text("✗ ", style="bold red").append(visible(p.name))
            shown = "; ".join(visible(_(f)) for f in p.failures[:SHOWN_FAILURES])
            more = _(Msg(" (+{n} more)", n=len(p.failures) - SHOWN_FAILURES)) if len(p.failures) > SHOWN_FAILURES else ""
            line.append(f": {shown}{more}", style="red")
        elif p.warnings:
            line = Text("? ", style="bold yellow").append(visible(p.name)).append(
                ": " + "; ".join(visible(_(w)) for w in p.warnings), style="yellow")
        else:
            line = Text("✓ ", style="bold green").append(visible(p.name))
        console.print(Prose(line))
    summary = _(Msg("{passed} passed, {failed} failed", passed=result.passed, failed=result.failed))
    warned = sum(1 for p in result.problems if p.passed and p.warnings)
    if warned:
        summary += _(Msg(" ({n} passed with warnings: see the ? lines)", n=warned))
    if result.failed:
        summary += _(Msg(" — failed: {names}", names=", ".join(visible(p.name) for p in result.problems if not p.passed)))
    console.print(Prose(summary, style="bold green" if result.failed == 0 else "bold red"))
