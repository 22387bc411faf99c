"""Exit codes, and the errors that end a run with exit 2 and one ``error:`` line (plus a caret for parse errors)."""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The contract's exit codes, the only ones a command ends with (130: interrupted)."""

    OK = 0  # evaluated; torch and SymPy agree, every --expect holds
    DISAGREE = 1  # evaluated, but torch and SymPy disagree, or an --expect (a check problem) fails
    BAD_INPUT = 2  # parse error, unknown name, shape mismatch, missing value, limit exceeded
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class GradexplainError(Exception):
    """Bad input.  ``col`` (0-based) and ``line`` (1-based) point into ``source`` for a caret."""

    def __init__(self, message: str, *, col: int | None = None, line: int = 1, source: str | None = None):
        super().__init__(message)
        self.message = message
        self.col = col
        self.line = line
        self.source = source

    def caret(self) -> str | None:
        """The offending source line and a ``^`` under the column, or None."""
        if self.col is None or self.source is None:
            return None
        lines = self.source.splitlines() or [""]
        text = "".join(c if c.isprintable() else "?" for c in lines[min(self.line, len(lines)) - 1])  # one column each
        return f"  {text}\n  {' ' * min(self.col, len(text))}^"


class ParseError(GradexplainError):
    pass


class LimitError(GradexplainError):
    pass


class NameInValue(ParseError):
    """A VALUE mentioned a name: it is a formula, not a value."""
