"""Shared pieces of the terminal view: the console every text renderer prints on, and verdict marks."""
from __future__ import annotations

from rich.console import Console
from rich.text import Text


def mark(ok: bool | None) -> Text:
    if ok is None:
        return Text("–", style="yellow")
    return Text("✓", style="bold green") if ok else Text("✗", style="bold red")


class PipeConsole(Console):
    """rich exits 1 (the "disagree" code) when the reader closes stdout; raise instead, so the
    CLI ends quietly with its own closed-pipe status."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def make_console(record: bool = False) -> Console:
    return PipeConsole(highlight=False, record=record, soft_wrap=False)
