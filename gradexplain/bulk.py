"""Big tensors without big copies: work in pieces, and keep a summary where no one reads the entries.

A 10^7-element float64 tensor is 80 MB.  ``a.double()``, ``(a - b).abs()``, ``a[isfinite(a)]``
each make another one, so a comparison or a summary written naively holds several at once; done
over pieces of :data:`PIECE` elements (views, not copies) the extra memory is a few MB.  A
recorded tensor that no output shows in full (a gradient flowing through one graph node, past
``--max-json-values`` entries) is kept as its :class:`Summary` — what the text view and the JSON
document show of it — so that autograd can free the tensor itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import torch

PIECE = 2**20  # elements per piece (8 MB of float64)
HEAD = 4  # leading entries a summary keeps (what the text view shows)


def pieces(*tensors: torch.Tensor) -> Iterator[tuple[torch.Tensor, ...]]:
    """Matching views of same-shaped tensors, each of about :data:`PIECE` elements or fewer
    (along the leading dims, so an expanded or transposed tensor is never copied whole)."""
    first = tensors[0]
    if first.numel() <= PIECE or first.dim() == 0:
        yield tensors
        return
    if all(t.is_contiguous() for t in tensors):
        flat = [t.view(-1) for t in tensors]
        for i in range(0, first.numel(), PIECE):
            yield tuple(f[i:i + PIECE] for f in flat)
        return
    rows = first.shape[0]
    step = max(1, PIECE // max(1, first.numel() // max(rows, 1)))
    for i in range(0, rows, step):
        if step == 1:
            yield from pieces(*(t[i] for t in tensors))
        else:
            yield from pieces(*(t[i:i + step] for t in tensors))


@dataclass(frozen=True)
class Summary:
    """A tensor too large to keep, as it is shown: shape, first entries, min/max/mean over all
    entries (the text view) and over the finite ones with the count of the others (the JSON
    ``{"summary": true, ...}``).  Looks enough like a tensor for the renderers: ``shape``,
    ``numel()``, ``dim()``, and a product with a number (``2·x.grad``)."""

    shape: torch.Size
    dtype: torch.dtype
    head: tuple[float, ...]
    min: float
    max: float
    mean: float
    finite_min: float | None
    finite_max: float | None
    finite_mean: float | None
    nonfinite: int

    @classmethod
    def of(cls, t: torch.Tensor) -> "Summary":
        """Reductions over the whole tensor (they allocate nothing); only where some entry is not
        finite, the finite statistics again over pieces."""
        import torch  # heavy

        t = t.detach()
        numel = t.numel()
        head = tuple(float(v) for v in _first(t, HEAD).double().tolist())
        if numel == 0:
            return cls(t.shape, t.dtype, head, math.nan, math.nan, math.nan, None, None, None, 0)
        lo, hi = float(t.min()), float(t.max())
        total = float(t.sum(dtype=torch.float64)) if t.dtype != torch.bool else float(t.sum())
        if math.isfinite(lo) and math.isfinite(hi):
            return cls(t.shape, t.dtype, head, lo, hi, total / numel, lo, hi, total / numel, 0)
        f_lo, f_hi, f_total, finite = math.inf, -math.inf, 0.0, 0
        for (p,) in pieces(t):
            p = p.double()
            keep = torch.isfinite(p)
            n = int(keep.sum())
            if n:
                f_lo = min(f_lo, float(torch.where(keep, p, math.inf).min()))
                f_hi = max(f_hi, float(torch.where(keep, p, -math.inf).max()))
                f_total, finite = f_total + float(torch.where(keep, p, 0.0).sum()), finite + n
        return cls(t.shape, t.dtype, head, lo, hi, total / numel,
                   f_lo if finite else None, f_hi if finite else None, f_total / finite if finite else None,
                   numel - finite)

    def numel(self) -> int:
        return math.prod(self.shape)

    def dim(self) -> int:
        return len(self.shape)

    def detach(self) -> "Summary":
        return self

    def __mul__(self, k: float) -> "Summary":
        if not isinstance(k, (int, float)):
            return NotImplemented
        lo, hi = (self.min * k, self.max * k) if k >= 0 else (self.max * k, self.min * k)
        f_lo, f_hi = (self.finite_min, self.finite_max) if k >= 0 else (self.finite_max, self.finite_min)
        scale = (lambda v: None if v is None else v * k)
        return Summary(self.shape, self.dtype, tuple(h * k for h in self.head), lo, hi, self.mean * k,
                       scale(f_lo), scale(f_hi), scale(self.finite_mean), self.nonfinite)

    __rmul__ = __mul__


def _first(t: torch.Tensor, n: int) -> torch.Tensor:
    """The first ``n`` entries in row-major order, without flattening (copying) all of ``t``."""
    while t.dim() > 1 and t.shape[0] > 0:
        row = t[0].numel()
        if row < n:
            t = t[:-(-n // max(row, 1))]
            break
        t = t[0]
    return t.reshape(-1)[:n]

