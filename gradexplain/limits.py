"""Hard limits on what one run may ask for; each has a CLI option to raise it."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class Limits:
    max_elements: int = 10**7  # per tensor (--max-elements)
    max_chars: int = 10_000  # EXPR length (--max-chars)
    max_depth: int = 100  # expression nesting (--max-depth)
    max_statements: int = 200  # (--max-statements)
    max_exponent: int = 10**4  # integer powers of constants, 9**9**9 (--max-exponent)
    symbolic_timeout: float = 10.0  # seconds of SymPy work (--symbolic-timeout)
    max_per_element: int = 4096  # entries of a per-element formula or symbolic Jacobian
    max_hessian: int = 10**6  # Hessian entries (--max-hessian)
    # costs that grow with the work rather than with one tensor, predicted before the work:
    max_jacobian: int = 2**26  # elements touched by all the passes that build one Jacobian (--max-jacobian)
    max_numeric: int = 2**26  # elements touched by per-entry finite differences (--max-numeric)
    max_step_record: int = 2**25  # numbers --step records over all steps (--max-step-record)
    max_json_values: int = 10**6  # entries of one tensor written out in a document (--max-json-values)
    max_json_total: int = 4 * 10**6  # tensor entries one document writes in full (--max-json-total)
    max_memory: int = 768  # MiB of tensors the torch run may hold at once, predicted from shapes (--max-memory)


DEFAULT = Limits()


_run: tuple[float, float] | None = None  # (monotonic end, seconds) of the enclosing run_budget


@contextmanager
def run_budget(seconds: float) -> Iterator[None]:
    """One symbolic budget for a whole run (gradients, Jacobians, --expect, exact values), so that
    ``--symbolic-timeout`` bounds the run's SymPy time, not each step's.  0 means no limit."""
    global _run
    outer, _run = _run, ((time.monotonic() + seconds, seconds) if seconds > 0 else None)
    try:
        yield
    finally:
        _run = outer


def run_left() -> tuple[float, float] | None:
    """(seconds left, seconds in all) of the enclosing :func:`run_budget`, or None outside one."""
    return None if _run is None else (_run[0] - time.monotonic(), _run[1])
