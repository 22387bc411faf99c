"""What a person reads, in their language (standard gettext), while data stays in English.

The pipeline never translates: a sentence it makes is a :class:`Msg`, a ``str`` whose value is
the English text (so JSON, tests and ``==`` see English, byte for byte) that also remembers its
template and arguments.  Renderers say it in the reader's language with :func:`_`, which looks
the *template* up in the catalog and fills in the (themselves translated) arguments.  A constant
text (a section title) is marked ``_("Backward pass")`` where it is shown, or ``N_(...)`` where
it is only defined.

The language is chosen once per command (``--lang``, else ``GRADEXPLAIN_LANG``, then ``LC_ALL``,
``LC_MESSAGES``, ``LANG`` as POSIX orders them) and held in a context variable, so the API and a
notebook can switch it per call without a global.  Catalogs: ``po/<lang>/*.po`` in the
repository, compiled by ``scripts/build_catalogs.py`` into ``gradexplain/locale`` (package data).
"""
from __future__ import annotations

import gettext
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import GradexplainError

DOMAIN = "gradexplain"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "zh")
DEFAULT = "en"
ENVIRONMENT = ("GRADEXPLAIN_LANG", "LC_ALL", "LC_MESSAGES", "LANG")  # first one set wins

_language: ContextVar[str] = ContextVar("gradexplain_language", default=DEFAULT)


class Msg(str):
    """An English sentence that can be said again in another language.

    ``Msg("{name} has no gradient", name="x")`` *is* the string ``"x has no gradient"``; a renderer
    calls ``_(msg)`` to get it in the reader's language.  Arguments that are Msg are translated
    too; any other argument (a value, a formula, an op name) is kept as it is.
    """

    template: str
    args: dict[str, Any]

    def __new__(cls, template: str, /, **args: Any) -> "Msg":
        self = super().__new__(cls, template.format(**args) if args else template)
        self.template = template
        self.args = args
        return self


def N_(text: str) -> str:
    """Mark a constant text for the catalog where it is defined; :func:`_` translates it where shown."""
    return text


def language_of(value: str) -> str | None:
    """``zh``, ``zh_CN.UTF-8``, ``zh-Hans`` → ``zh``; ``en_US.UTF-8``, ``C``, ``POSIX`` → ``en``; else None."""
    code = value.strip().split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    if code in ("c", "posix"):
        return DEFAULT
    return code if code in LANGUAGES else None


def language_from_environment(environ: Mapping[str, str]) -> str:
    """The first of :data:`ENVIRONMENT` that is set decides (as POSIX's LC_ALL > LC_MESSAGES > LANG);
    a language we have no catalog for means English."""
    for key in ENVIRONMENT:
        value = environ.get(key, "")
        if value:
            return language_of(value) or DEFAULT
    return DEFAULT


def resolve_language(option: str | None, environ: Mapping[str, str]) -> str:
    """``--lang`` (validated) if given, else the environment's choice."""
    if option is None:
        return language_from_environment(environ)
    chosen = language_of(option)
    if chosen is None:
        raise GradexplainError(Msg("--lang must be one of {choices}, not {value!r}",
                                   choices=" | ".join(LANGUAGES), value=option))
    return chosen


def current_language() -> str:
    return _language.get()


def set_language(lang: str) -> None:
    """Choose the language for the rest of this context (the CLI: the whole command)."""
    _language.set(lang if lang in LANGUAGES else DEFAULT)


@contextmanager
def language(lang: str) -> Iterator[None]:
    """Render in ``lang`` inside the block (the API's ``lang=``), then back to what it was."""
    token = _language.set(lang if lang in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _language.reset(token)


@lru_cache(maxsize=None)
def catalog(lang: str) -> gettext.NullTranslations:
    """The compiled catalog for ``lang``; English (and a missing file) is the identity."""
    if lang == DEFAULT:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[lang], fallback=True)


def translate(text: str, lang: str) -> str:
    """``text`` in ``lang``: a :class:`Msg` by its template and translated arguments, any other
    string looked up as it is (unknown text comes back unchanged)."""
    if lang == DEFAULT:
        return str(text)
    found = catalog(lang).gettext
    if isinstance(text, Msg):
        if not text.args:
            return found(text.template)
        args = {k: translate(v, lang) if isinstance(v, Msg) else v for k, v in text.args.items()}
        return found(text.template).format(**args)
    return found(str(text)) if text else str(text)


def _(text: str) -> str:
    """``text`` in the current language (see :func:`translate`)."""
    return translate(text, _language.get())
