"""The one format dispatcher: an ``eval`` Report or a ``check`` result, written to stdout as
``text`` (rich), ``json``, ``markdown`` or ``latex``.  The CLI calls only this (and the graph
and ops renderers, which have formats of their own)."""
from __future__ import annotations

import sys

from ..check import CheckResult
from ..errors import GradexplainError
from ..i18n import Msg
from ..report import Report
from . import json, writeup
from .check_text import print_check
from .text import print_report

FORMATS = ("text", "json", "markdown", "latex")


def resolve_format(fmt: str, as_json: bool) -> str:
    """``--format`` (``--json`` wins), validated."""
    fmt = "json" if as_json else fmt.lower()
    if fmt not in FORMATS:
        raise GradexplainError(Msg("--format must be one of {choices}, not {value!r}", choices=", ".join(FORMATS),
                                   value=fmt))
    return fmt


def emit(result: Report | CheckResult, fmt: str, brief: bool = False) -> None:
    """Write ``result`` in format ``fmt`` (one of :data:`FORMATS`) to stdout; ``brief``: the text view's
    answer lines only (``eval --brief``)."""
    if isinstance(result, CheckResult):
        if fmt == "text":
            print_check(result)
            return
        text = json.render_check(result) if fmt == "json" else writeup.render_check(result, fmt)
    else:
        if fmt == "text":
            print_report(result, brief=brief)
            return
        text = json.render(result) if fmt == "json" else writeup.render(result, fmt)
    sys.stdout.write(text + "\n")
