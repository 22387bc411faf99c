"""``gradexplain run SCRIPT [ARGS...]``: run the user's script as ``python`` would, recorded.

The script is the user's own code and is executed (EXPR never is): ``__name__ == "__main__"``,
``sys.argv`` = ``[SCRIPT, *ARGS]``, the script's folder first on ``sys.path``.  Every
``backward()`` it makes is caught by a :class:`~gradexplain.session.Session`; once the script
has finished, each call is explained in full or summarised, in order (:func:`outcomes`).
"""
from __future__ import annotations

import contextlib
import os
import runpy
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterator

from .errors import GradexplainError
from .i18n import Msg
from .limits import DEFAULT, Limits
from .session import DEFAULT_MAX_EXPLAINED, CallRecord, Session
from .recorded import explain_record, summarise


@dataclass
class ScriptRun:
    """What running the script gave: its exit status, its traceback (if it failed), each backward()."""

    path: str
    status: int  # the script's own exit status (0 when it ran to the end)
    traceback: str | None  # what python would have printed on stderr at the end (a traceback, sys.exit's text)
    records: list[CallRecord] = field(default_factory=list)
    failures: int = 0  # torch calls the recording could not make sense of (the script ran on regardless)


@contextlib.contextmanager
def _as_main(path: str, args: list[str]) -> Iterator[None]:
    """``sys.argv`` and ``sys.path`` as ``python SCRIPT ARGS`` sets them, restored afterwards."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        yield
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


def _exit_status(code: Any) -> tuple[int, str | None]:
    """``sys.exit(code)`` as python ends: an int is the status; anything else is printed, status 1."""
    if code is None:
        return 0, None
    if isinstance(code, int):
        return code, None
    return 1, f"{code}\n"


def _user_traceback(exc: BaseException) -> str:
    """The traceback python would print: from the script's own frames on, ours and runpy's left out."""
    tb = exc.__traceback__
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    ours = (here, "<frozen runpy", runpy.__file__ or "<runpy>")
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(ours):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def run_script(path: str, args: list[str], *, explain_all: bool = False,
               max_explained: int = DEFAULT_MAX_EXPLAINED, stdout_to_stderr: bool = False) -> ScriptRun:
    """Run SCRIPT under a recording session; never raises for the script's own errors."""
    if not os.path.isfile(path):
        raise GradexplainError(Msg("{path}: no such file (gradexplain run takes a Python script)", path=path))
    if max_explained < 0:
        raise GradexplainError(Msg("--max-explained must be 0 or more, not {n}", n=max_explained))
    session = Session(explain_all=explain_all, max_explained=max_explained)
    status, tb = 0, None
    redirect = contextlib.redirect_stdout(sys.stderr) if stdout_to_stderr else contextlib.nullcontext()
    with _as_main(path, args), redirect:
        try:
            with session:
                runpy.run_path(path, run_name="__main__")
        except SystemExit as e:
            status, tb = _exit_status(e.code)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - the script's own failure: reported as python would
            status, tb = 1, _user_traceback(e)
    return ScriptRun(path, status, tb, session.records, session.failures)


@dataclass
class Unexplained:
    """A backward() the pipeline could not explain (the script's own result stands; the reason is shown)."""

    index: int
    line: int | None
    code: str
    error: str


def outcomes(records: list[CallRecord], limits: Limits = DEFAULT) -> Iterator[Any]:
    """Each backward() in order: a Report (explained in full), a Summary (a repeat of a training loop),
    or Unexplained — one call that cannot be explained never hides the others."""
    for record in records:
        if record.frozen is None:
            yield summarise(record)
            continue
        try:
            yield explain_record(record, limits)
        except Exception as e:  # noqa: BLE001 - reported per call, as eval reports bad input
            message = e.message if isinstance(e, GradexplainError) else f"{type(e).__name__}: {e}"
            yield Unexplained(record.index, record.site.line if record.site else None, record.code, message)
