"""Hard limits on what one run may ask for; each has a CLI option to raise it."""
from __future__ import annotations

from dataclasses import dataclass


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


DEFAULT = Limits()
