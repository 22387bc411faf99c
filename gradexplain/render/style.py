"""Shared pieces of the terminal view: the console every text renderer prints on, verdict marks, the
list separator of the reader's language, and prose that wraps as Chinese text does."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from rich.cells import cell_len, chop_cells, get_character_cell_size
from rich.console import Console, ConsoleOptions
from rich.containers import Lines
from rich.measure import Measurement
from rich.text import Text

from ..i18n import _

OPENING = "（“‘《「『【〔"  # never at the end of a line: it goes with what follows
CLOSING = "）”’》」』】〕，。、：；！？"  # never at the start of a line: it goes with what precedes


def mark(ok: bool | None) -> Text:
    if ok is None:
        return Text("–", style="yellow")
    return Text("✓", style="bold green") if ok else Text("✗", style="bold red")


def joined(clauses: Iterable[str]) -> str:
    """Clauses one after the other, with the reader's comma (``，`` in Chinese text, ``, `` in English)."""
    return _(", ").join(clauses)


def wide(ch: str) -> bool:
    return get_character_cell_size(ch) == 2


def words(text: str) -> list[tuple[int, str]]:
    """``(start, word)`` where a line may break before ``word``: at spaces (as rich breaks), and also
    before each double-width character, except that opening and closing punctuation stay with
    their neighbour.  Each word keeps its trailing spaces, as rich's do."""
    found, i, n = [], 0, len(text)
    while i < n:
        start = i
        while i < n and text[i].isspace():  # only before the first word
            i += 1
        while i < n and text[i] in OPENING:
            i += 1
        if i < n and wide(text[i]):
            i += 1
        else:
            while i < n and not text[i].isspace() and not wide(text[i]):
                i += 1
        while i < n and text[i] in CLOSING:
            i += 1
        while i < n and text[i].isspace():
            i += 1
        found.append((start, text[start:i]))
    return found


def break_offsets(text: str, width: int, fold: bool) -> list[int]:
    """Where to break ``text`` into lines of at most ``width`` cells (rich's greedy fill, over :func:`words`)."""
    breaks: list[int] = []
    offset = 0
    for start, word in words(text):
        length = cell_len(word.rstrip())
        if offset + length <= width:
            offset += cell_len(word)
        elif length > width and fold:
            pieces = chop_cells(word, width)
            for k, piece in enumerate(pieces):
                if start:
                    breaks.append(start)
                start += len(piece)
                offset = cell_len(piece) if k == len(pieces) - 1 else 0
        elif offset and start:
            breaks.append(start)
            offset = cell_len(word)
        else:
            offset = cell_len(word)
    return breaks


def wrap_prose(text: Text, width: int, justify: Any, overflow: Any, console: Console) -> Lines:
    """rich's ``Text.wrap`` with the break points of :func:`words`."""
    lines = Lines()
    for line in text.split(allow_blank=True):
        pieces = line.divide(break_offsets(line.plain, width, fold=overflow == "fold"))
        for piece in pieces:
            piece.rstrip_end(width)
        pieces.justify(console, width, justify=justify, overflow=overflow)
        for piece in pieces:
            piece.truncate(width, overflow=overflow)
        lines.extend(pieces)
    return lines


class Prose:
    """A paragraph that wraps as Chinese is written: rich breaks lines only at spaces, so a Chinese
    clause (which has none) would jump whole to the next line and leave the one before it short.
    Text with no double-width character is printed exactly as rich prints it."""

    def __init__(self, text: str | Text, style: str = ""):
        self.text = text if isinstance(text, Text) else Text(text, style=style)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        text = self.text
        if "\t" in text.plain or text.no_wrap or options.no_wrap or not any(wide(ch) for ch in text.plain):
            yield text
            return
        yield from wrap_prose(text, options.max_width, text.justify or options.justify or "default",
                              text.overflow or options.overflow or "fold", console)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.text)


class PipeConsole(Console):
    """rich exits 1 (the "disagree" code) when the reader closes stdout; raise instead, so the
    CLI ends quietly with its own closed-pipe status."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def make_console(record: bool = False) -> Console:
    return PipeConsole(highlight=False, record=record, soft_wrap=False)
