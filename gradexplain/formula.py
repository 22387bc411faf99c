"""The one way back from a gradient formula's EXPR text to a runnable IR.

The symbolic side writes its answers as EXPR text (``grads.NAME.symbolic.expr``, Jacobians, Hessian
blocks) so that ``eval`` can read them back; the pipeline reads that text back too (exact values,
Jacobian and Hessian values, ``--expect`` proofs, training steps, second derivatives).  That text
is ours, not the user's: its length grows with the user's program (a per-element ``stack([...])``
of a 100-character EXPR is easily longer than 100 characters), so the limits that guard user text
(``--max-chars``, ``--max-statements``) do not apply to it.  Nesting stays capped for the
parser's own sake (Python's recursion), at least as deep as the user's ``--max-depth`` allows.
"""
from __future__ import annotations

import sys
from dataclasses import replace

from .ir import Node
from .limits import DEFAULT, Limits
from .parse import parse_expression

FORMULA_DEPTH = 500  # nesting of our own formulas: far above what 200 bracket levels and Python's recursion allow


def formula_limits(limits: Limits = DEFAULT) -> Limits:
    """``limits`` for reading our own formula text: no length or statement cap, a generous depth."""
    return replace(limits, max_chars=sys.maxsize, max_statements=sys.maxsize,
                   max_depth=max(limits.max_depth, FORMULA_DEPTH))


def read_formula(text: str, limits: Limits = DEFAULT) -> Node:
    """A formula the symbolic side wrote (EXPR text) as IR; a LimitError only for nesting Python cannot parse."""
    return parse_expression(text, formula_limits(limits))
