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

from .bulk import pieces


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
    """Do ``a`` and ``b`` agree at tolerance ``tol`` (shapes equal, every entry), and by how much do they differ?
    (Over pieces of the two tensors: a 10^7-entry comparison holds a few MB of temporaries, not 80 MB each.)"""
    if tuple(a.shape) != tuple(b.shape):
        return Comparison(False, math.inf)
    agree, max_diff = True, 0.0
    for pa, pb in pieces(a, b):
        pa, pb = pa.double(), pb.double()
        d = (pa - pb).abs()
        top = float(d.max()) if d.numel() else 0.0
        if math.isfinite(top):  # every entry of both is finite (inf or nan anywhere makes d inf or nan there)
            max_diff = max(max_diff, top)
            if agree and top > tol:  # within tol of each other always agree; else the relative bound decides
                agree = bool((d <= tol * (1 + torch.maximum(pa.abs(), pb.abs()))).all())
            continue
        agree = agree and bool(agreeing_entries(pa, pb, tol).all())
        identical = (torch.isinf(pa) & (pa == pb)) | (torch.isnan(pa) & torch.isnan(pb))
        diff = d[~identical]
        if diff.numel():
            top = float(diff.max())
            max_diff = math.inf if math.isnan(top) else max(max_diff, top)
    return Comparison(agree, max_diff)


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
