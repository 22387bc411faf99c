"""Numbers and tensors as short text, in one place for every message and every renderer.

Two styles: :func:`fmt_value` for displays (``[4, 8, 12]``, big tensors summarised) and
:func:`short` for one-line messages in the contract's compact style (``[[12,194]]``).
"""
from __future__ import annotations

from typing import Any

from .bulk import Summary

SHOW_MAX = 24  # elements printed in full; more are summarised


def number(v: float) -> str:
    """A float for display: integers without ``.0`` (below 1e12), else 6 significant digits."""
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    if float(v).is_integer() and abs(v) < 1e12:
        return str(int(v))
    return f"{v:.6g}"


def fmt_value(v: Any, limit: int = SHOW_MAX) -> str:
    """A tensor (or number) as short text: [4, 8, 12], or a summary for big ones."""
    import torch  # heavy

    if v is None:
        return "—"
    if isinstance(v, Summary) or isinstance(v, torch.Tensor) and v.numel() > limit:
        s = v if isinstance(v, Summary) else Summary.of(v)
        head = ", ".join(number(x) for x in s.head)
        return f"shape {list(s.shape)}: [{head}, …] min {number(s.min)} max {number(s.max)} mean {number(s.mean)}"
    if not isinstance(v, torch.Tensor):
        return number(float(v)) if isinstance(v, (int, float)) else str(v)
    t = v.detach()
    if t.dtype == torch.bool:
        t = t.to(torch.int64)

    def nest(x: Any) -> str:
        return "[" + ", ".join(nest(i) for i in x) + "]" if isinstance(x, list) else number(float(x))

    return nest(t.double().tolist())


def fmt_number(v: float) -> str:
    """A float for a one-line message: integers without ``.0`` (below 1e15), else 6 significant digits."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:.6g}"


def short(t: Any, limit: int = 8) -> str:
    """Compact text of a tensor for a one-line message, as the contract writes it: [[12,194]]."""
    if t.numel() > limit:
        return f"tensor of shape {list(t.shape)}"

    def nest(x: object) -> str:
        return "[" + ",".join(nest(i) for i in x) + "]" if isinstance(x, list) else fmt_number(float(x))

    return nest(t.double().tolist())
