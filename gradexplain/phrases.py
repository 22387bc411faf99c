"""Sentences built from parts that stay translatable (see :mod:`gradexplain.i18n`).

Joining :class:`~gradexplain.i18n.Msg` parts with ``"; ".join`` or an f-string gives a plain
``str``: the English is right but the templates are lost, so a renderer could not say it in
Chinese.  :func:`joined` nests the parts in a Msg per glue instead (same English, byte for byte),
and :func:`message_of` reads the Msg an exception was raised with (``str(e)`` would drop it).
"""
from __future__ import annotations

from typing import Iterable

from .i18n import Msg, N_

SEMICOLON = N_("{a}; {b}")
COMMA = N_("{a}, {b}")
AND = N_("{a} and {b}")


def joined(parts: Iterable[str], glue: str = SEMICOLON) -> str:
    """``glue.join(parts)`` as nested Msg (``glue`` is a template over ``{a}`` and ``{b}``, marked N_)."""
    items = list(parts)
    if not items:
        return ""
    out = items[0]
    for part in items[1:]:
        out = Msg(glue, a=out, b=part)
    return out


def message_of(error: BaseException) -> str:
    """What ``error`` says, as the Msg it was raised with when it was (else ``str(error)``)."""
    said = getattr(error, "message", None)
    if isinstance(said, Msg):
        return said
    if error.args and isinstance(error.args[0], Msg) and str(error) == error.args[0]:
        return error.args[0]
    return str(error)


def symbolic_reason(why: str) -> str:
    """A ``reason`` field (why ``symbolic`` is null): ``symbolic: <why>``, with ``why`` kept apart."""
    return Msg("symbolic: {why}", why=why)


def reason_detail(reason: str) -> str:
    """The ``why`` of a :func:`symbolic_reason` (what a second derivative says its gradient lacked)."""
    if isinstance(reason, Msg) and reason.template == "symbolic: {why}":
        return reason.args["why"]
    return reason.removeprefix("symbolic: ")
