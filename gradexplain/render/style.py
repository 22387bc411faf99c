"""Shared pieces of the terminal view: the console every text renderer prints on, verdict marks, and
the list separator of the reader's language."""
from __future__ import annotations

from typing import Iterable

from rich.console import Console
from rich.text import Text

from ..i18n import _


def mark(ok: bool | None) -> Text:
    if ok is None:
        return Text("–", style="yellow")
    return Text("✓", style="bold green") if ok else Text("✗", style="bold red")


def joined(clauses: Iterable[str]) -> str:
    """Clauses one after the other, with the reader's comma (``，`` in Chinese text, ``, `` in English)."""
    return _(", ").join(clauses)


class PipeConsole(Console):
    """rich exits 1 (the "disagree" code) when the reader closes stdout; raise instead, so the
    CLI ends quietly with its own closed-pipe status."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def make_console(record: bool = False) -> Console:
    return PipeConsole(highlight=False, record=record, soft_wrap=False)
