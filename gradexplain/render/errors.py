"""The ``gradexplain-error/1`` document: what stdout holds under ``--json`` when the input is bad,
so a pipeline reading stdout always gets JSON (the ``error:`` line still goes to stderr)."""
from __future__ import annotations

import json
from typing import Any

ERROR_SCHEMA = "gradexplain-error/1"


def error_dict(message: str, column: int | None = None, source: str | None = None,
               line: int | None = None) -> dict[str, Any]:
    """``column`` is 1-based in ``source`` (the EXPR or VALUE text the caret points into), or None;
    ``line`` is the input line of an ``eval --batch`` problem, and only there."""
    doc: dict[str, Any] = {"schema": ERROR_SCHEMA, "error": message,
                           "column": column + 1 if column is not None else None}
    if source is not None:
        doc["source"] = source
    if line is not None:
        doc["line"] = line
    return doc


def render_error(message: str, column: int | None = None, source: str | None = None,
                 line: int | None = None) -> str:
    return json.dumps(error_dict(message, column, source, line), ensure_ascii=False, separators=(",", ":"))
