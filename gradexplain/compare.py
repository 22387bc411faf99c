"""The one comparison behind every verdict: torch vs SymPy, ``--expect``, finite differences,
Hessians, training steps and ``check``'s expected outputs.

Two numbers agree when ``|a - b| <= tol * (1 + max(|a|, |b|))`` (the contract), and two tensors
when their shapes are equal and every entry agrees.  IEEE values are exact, never "within
tolerance": the bound is only used where both sides are finite (an infinite side would make it
infinite and let anything pass), an infinity equals only the same infinity, and NaN agrees only
with NaN.
"""
from __future__ import annotations

import math
from typing import Iterable, NamedTuple

import torch


class Comparison(NamedTuple):
    """Whether two tensors agree, and the largest ``|a - b|`` (inf for a shape mismatch or a
    non-finite disagreement; 0 when every entry is equal, NaN or infinite alike)."""

    agree: bool
    max_abs_diff: float


def agreeing_entries(a: torch.Tensor, b: torch.Tensor, tol: float) -> torch.Tensor:
    """Entrywise agreement (a bool tensor) of two tensors of the same shape."""
    a, b = a.double(), b.double()
    finite = torch.isfinite(a) & torch.isfinite(b)
    bound = tol * (1 + torch.maximum(a.abs(), b.abs()))
    within = finite & ((a - b).abs() <= bound)
    same_inf = torch.isinf(a) & (a == b)  # equal and infinite: +inf with +inf, -inf with -inf
    both_nan = torch.isnan(a) & torch.isnan(b)
    return within | same_inf | both_nan


def compare(a: torch.Tensor, b: torch.Tensor, tol: float) -> Comparison:
    """Do ``a`` and ``b`` agree at tolerance ``tol`` (shapes equal, every entry), and by how much do they differ?"""
    if tuple(a.shape) != tuple(b.shape):
        return Comparison(False, math.inf)
    a, b = a.double(), b.double()
    ok = agreeing_entries(a, b, tol)
    identical = (torch.isinf(a) & (a == b)) | (torch.isnan(a) & torch.isnan(b))
    diff = (a - b).abs()[~identical]
    max_diff = float(diff.max()) if diff.numel() else 0.0
    return Comparison(bool(ok.all()), max_diff if not math.isnan(max_diff) else math.inf)


def agrees(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    """``compare(a, b, tol).agree``."""
    return compare(a, b, tol).agree


def all_agree(flags: Iterable[bool | None]) -> bool | None:
    """Combine verdicts: False if any is False, else None (undecided) if any is None, else True."""
    flags = list(flags)
    if any(f is False for f in flags):
        return False
    if any(f is None for f in flags):
        return None
    return True
