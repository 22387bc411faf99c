"""Click's usage errors (``No such option '--foo'.``, ``Missing argument 'FILE.toml'.``) in the
reader's language.

Click writes them in English through ``gettext`` of the process-wide default domain, which can
follow neither ``--lang`` nor our catalog without changing global state for every library in the
process.  So the CLI says them again instead: a message is matched against the English templates
click formats (listed here, translated in ``po/zh/errors.po``), its fields are read back, and it
becomes a :class:`~gradexplain.i18n.Msg` — used only when that Msg's English is exactly click's
text, so a message click words differently in another version keeps click's own words.
"""
from __future__ import annotations

import ast
import re
from functools import lru_cache

import click

from .i18n import Msg, N_

# What click 8 writes for the usage errors people meet (the composite "Missing ..." ones are
# click's "Missing argument" + hint + "."); fields keep click's names and conversions.
TEMPLATES = (
    N_("No such option {name!r}."),
    N_("No such command {name!r}."),
    N_("Did you mean {possibility}?"),
    N_("(Did you mean one of: {possibilities}?)"),
    N_("Option {name!r} requires an argument."),
    N_("Option {name!r} requires {nargs} arguments."),
    N_("Option {name!r} does not take a value."),
    N_("Missing argument {param_hint}."),
    N_("Missing option {param_hint}."),
    N_("Missing parameter {param_hint}."),
    N_("Missing command."),
    N_("Got unexpected extra argument ({args})"),
    N_("Got unexpected extra arguments ({args})"),
    N_("Invalid value for {param_hint}: {message}"),
    N_("Invalid value: {message}"),
    N_("{value!r} is not a valid {number_type}."),
    N_("{value} is not in the range {range}."),
    N_("{value!r} is not one of {choices}."),
    N_("{value!r} is not {choice}."),
    N_("{value!r} is not a valid boolean. Recognized values: {states}"),
)
WORDS = (N_("integer"), N_("float"))  # click's type names, the {number_type} above
FIELD = re.compile(r"\{(\w+)(![rs])?\}")


@lru_cache(maxsize=None)
def pattern(template: str) -> tuple[re.Pattern[str], tuple[tuple[str, str | None], ...]]:
    """A regular expression that reads a template's fields back out of its English text."""
    fields = tuple((m.group(1), m.group(2)) for m in FIELD.finditer(template))
    literal = [re.escape(part) for part in FIELD.split(template)[::3]]
    return re.compile("(.+?)".join(literal), re.DOTALL), fields


def read_back(template: str, text: str) -> dict[str, str] | None:
    """The fields that make ``template`` into ``text``, or None (a ``!r`` field must be a string's repr)."""
    regex, fields = pattern(template)
    found = regex.fullmatch(text)
    if found is None:
        return None
    args: dict[str, str] = {}
    for (name, conversion), value in zip(fields, found.groups()):
        if conversion == "!r":
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                return None
            if not isinstance(value, str):
                return None
        args[name] = said_again(value) if conversion is None else value
    return args


def said_again(text: str) -> str:
    """``text`` as a Msg of one of :data:`TEMPLATES` (its fields said again too), or ``text`` itself."""
    if text in WORDS:
        return Msg(text)
    for template in TEMPLATES:
        args = read_back(template, text)
        if args is not None:
            said = Msg(template, **args)
            if said == text:
                return said
    return text


def usage_message(e: click.UsageError) -> str:
    """Click's message for ``e`` (a Msg when every part of it is one click is known to write)."""
    text = e.format_message()
    head = e.message
    if head and text.startswith(head + " "):  # NoSuchOption/NoSuchCommand: the message, then "Did you mean ...?"
        said: str = Msg("{message} {suggestion}", message=said_again(head), suggestion=said_again(text[len(head) + 1:]))
    else:
        said = said_again(text)
    return said if said == text else text
