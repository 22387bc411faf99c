"""Reading a user's file (``check FILE.toml``, ``eval --batch FILE``) with its cost bounded first.

``/dev/zero`` would be read until memory runs out, a FIFO blocks ``open`` forever, and tomllib
spends quadratic time on deeply dotted keys (``a.a.a…`` 10^5 deep: > 30 s, 1.5 GB).  So: regular
files only (opened without blocking, checked with ``fstat``), at most :data:`MAX_FILE_BYTES`, and
TOML nesting (dotted keys, table headers, inline tables and arrays) counted before parsing.
"""
from __future__ import annotations

import os
import stat

from .errors import GradexplainError, LimitError
from .i18n import Msg

MAX_FILE_BYTES = 4 * 2**20  # 4 MiB: a problem set is text written by hand or by a small script
MAX_TOML_NESTING = 100  # as --max-depth for EXPR


def read_regular_file(path: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, else exit 2 with the reason."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block here
    except FileNotFoundError:
        raise GradexplainError(Msg("{path}: no such file", path=path)) from None
    except OSError as e:
        raise GradexplainError(Msg("{path}: cannot read: {reason}", path=path, reason=e.strerror or str(e))) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = Msg("a directory") if stat.S_ISDIR(info.st_mode) else \
                Msg("not a regular file (a device, FIFO or socket)")
            raise GradexplainError(Msg("{path}: {kind}; give a regular file", path=path, kind=kind))
        if info.st_size > max_bytes:
            raise LimitError(Msg("{path}: {size:,} bytes, over the limit of {limit:,} for an input file", path=path,
                                 size=info.st_size, limit=max_bytes))
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)  # the file may have grown since fstat
    except OSError as e:
        raise GradexplainError(Msg("{path}: cannot read: {reason}", path=path, reason=e.strerror or str(e))) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise LimitError(Msg("{path}: over the limit of {limit:,} bytes for an input file", path=path, limit=max_bytes))
    return data


def check_toml_nesting(text: str, path: str, limit: int = MAX_TOML_NESTING) -> None:
    """Refuse TOML nested deeper than ``limit`` before tomllib sees it.  Counted lexically, outside
    strings and comments: the dots of a dotted key or table header plus the open brackets/braces
    around it.  (Dots inside quoted keys count too: the count errs on the side of refusing.)"""
    depth = 0  # open [ and { (inline tables, arrays; header brackets close on their line)
    dots = 0  # dots in the key being read on this line
    quote: str | None = None
    in_value = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote is not None:
            if text.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
            if ch == "\\" and quote in ('"', '"""'):
                i += 2
                continue
            i += 1
            continue
        if ch in "\"'":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            i += len(quote)
            continue
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if ch == "\n":
            dots, in_value = 0, depth > 0
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "=":
            in_value = True
        elif ch == "." and not (in_value and depth == 0) and not (i + 1 < n and text[i + 1].isdigit()):
            dots += 1
        if depth + dots > limit:
            line = text.count("\n", 0, i) + 1
            raise LimitError(Msg("{path}:{line}: TOML nested deeper than the limit of {limit} (dotted keys, tables "
                                 "and arrays together)", path=path, line=line, limit=limit))
        i += 1
