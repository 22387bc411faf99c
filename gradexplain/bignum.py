"""Exact numbers past the machine's sizes, converted in one guarded place.

The symbolic side keeps constants exact (``int``, ``Fraction``) however large they grow:
``x*x*1e-20`` has the gradient ``x/50000000000000000000``, ``x**3`` at ``x=1e10`` a value of
``3*10**20``.  Three consumers cannot take such numbers as they are: torch (a Python int past
int64 raises "int too big to convert"), JSON writers (orjson refuses integers past 64 bits) and
Python's own ``str(int)`` (refused past 4,300 digits, CVE-2020-10735).  Every conversion goes
through here: torch gets the nearest float (±inf past float range, as a float literal would),
JSON and formula text get the exact value as text.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

INT64_MAX = 2**63 - 1
DECIMAL_DIGITS_MAX = 4000  # below Python's 4,300-digit int <-> str limit; longer ones are written in hex
_BITS_MAX = int(DECIMAL_DIGITS_MAX * math.log2(10))


def fits_int64(n: int) -> bool:
    return -INT64_MAX - 1 <= n <= INT64_MAX


def to_float(v: Any) -> float:
    """The nearest float: ±inf past float range (as ``1e400`` reads), 0.0 below it."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def torch_scalar(v: Any) -> int | float:
    """A number torch accepts as a scalar: an int within int64 as it is, anything else a float."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and fits_int64(v):
        return v
    return to_float(v)


def int_text(n: int) -> str:
    """Exact text of an integer that Python and EXPR read back: decimal, or hexadecimal (``0x…``)
    past :data:`DECIMAL_DIGITS_MAX` digits, where decimal conversion is refused (and quadratic)."""
    if n.bit_length() <= _BITS_MAX:
        return str(n)
    return ("-" if n < 0 else "") + hex(abs(n))


def rational_text(v: Fraction) -> str:
    """``n/d`` (or ``n``) with both parts as :func:`int_text` writes them."""
    if v.denominator == 1:
        return int_text(v.numerator)
    return f"{int_text(v.numerator)}/{int_text(v.denominator)}"


def json_exact(v: int | Fraction) -> int | str:
    """An exact number for a JSON document: an int when it fits int64 (what JSON readers
    take), else its exact text (``"300000000000000000000"``, ``"1/3"``)."""
    if isinstance(v, Fraction) and v.denominator == 1:
        v = v.numerator
    if isinstance(v, int):
        return v if fits_int64(v) else int_text(v)
    return rational_text(v)
