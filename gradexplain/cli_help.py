"""``--help`` in the reader's language: our help texts, and click's and typer's own words around them.

Three kinds of text make a help screen, and each is reached where its library says it may be:

- **Our help texts** (the app's, each command's, each parameter's, and the ``--install-completion``
  / ``--show-completion`` options typer adds) are looked up in the catalog on the click commands
  typer builds for this run (:func:`localize`, called by :meth:`LocalizedGroup.main`).  typer
  builds fresh click objects on every call, so the app's declarations stay English and the
  catalog ids are exactly the texts click shows (:func:`shown_help_texts`).
- **click's words** ("Usage:", the help option's "Show this message and exit.") are marked by
  click with the standard library's *global* gettext, whose language comes from the environment
  only (``LANGUAGE``/``LC_*``) and so cannot follow ``--lang``.  They are said instead through
  click's documented hooks: :meth:`click.Command.format_usage` (``write_usage``'s ``prefix``) and
  :meth:`click.Command.get_help_option`.
- **typer's rich help words** ("Options", "Arguments", "Commands", "[default: …]", "[required]")
  are module constants of ``typer.rich_utils`` (its customisation points, read at each drawing
  but translated by typer only once, at import): they are set from the catalog each time a help
  screen is drawn (:func:`say_rich_words`), so the import stays lazy and the language current.

The commands opt in with ``cls=LocalizedCommand`` (the app with ``cls=LocalizedGroup``), typer's
documented way to give a command its own click class.
"""
from __future__ import annotations

from typing import Any, Iterator

import click
from typer.core import TyperCommand, TyperGroup

from .i18n import N_, _

USAGE = N_("Usage:")
HELP_OPTION = N_("Show this message and exit.")  # click's own text for -h/--help
RICH_WORDS = {  # typer.rich_utils constant → its English text (the help screen's only other words)
    "ARGUMENTS_PANEL_TITLE": N_("Arguments"),
    "OPTIONS_PANEL_TITLE": N_("Options"),
    "COMMANDS_PANEL_TITLE": N_("Commands"),
    "DEFAULT_STRING": N_("[default: {}]"),
    "REQUIRED_LONG_STRING": N_("[required]"),
}


def say_rich_words() -> None:
    """typer's rich help words in the current language (English puts typer's own back)."""
    from typer import rich_utils  # heavy: rich, only when a help screen is drawn

    for name, text in RICH_WORDS.items():
        setattr(rich_utils, name, _(text))


def walk(command: click.Command) -> Iterator[click.Command]:
    """``command`` and, for a group, every command under it."""
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from walk(sub)


def shown_help_texts(command: click.Command) -> list[str]:
    """Every help text of ``command``'s tree as click shows it (for the message catalog)."""
    texts: list[str] = []
    for c in walk(command):
        texts += [c.help or ""] + [getattr(p, "help", None) or "" for p in c.params]
    return [t for t in texts if t]


def localize(command: click.Command) -> None:
    """Put every help text of ``command``'s tree in the current language (fresh objects per run)."""
    for c in walk(command):
        if c.help:
            c.help = _(c.help)
        for p in c.params:
            if getattr(p, "help", None):
                p.help = _(p.help)  # type: ignore[attr-defined]


class LocalizedHelp:
    """click's own help-screen words through our catalog (mixed into typer's command classes)."""

    def format_usage(self: Any, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, " ".join(self.collect_usage_pieces(ctx)), prefix=_(USAGE) + " ")

    def get_help_option(self: Any, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = _(HELP_OPTION)
        return option

    def format_help(self: Any, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        say_rich_words()
        super().format_help(ctx, formatter)  # type: ignore[misc]


class LocalizedCommand(LocalizedHelp, TyperCommand):
    """A command whose help screen is in the reader's language."""


class LocalizedGroup(LocalizedHelp, TyperGroup):
    """The app: localizes the whole command tree once the language is chosen, then runs as typer's group."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        localize(self)
        return super().main(*args, **kwargs)
