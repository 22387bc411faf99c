"""``NAME=VALUE`` arguments: ``3``, ``1,2,3``, ``[[1,2],[3,4]]``, ``ones(2,5)``, ``randn(3)``, ``1/3``.

A value is parsed by the same safe parser as EXPR, with names forbidden, and evaluated by the
same torch evaluator (which refuses oversized tensors before making them).  Literal numbers stay exact
(``1/3`` is a Fraction) so the symbolic side can compute with them exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from fractions import Fraction
from typing import Any

import torch

from .bignum import to_float
from .errors import GradexplainError
from .i18n import Msg
from .execute import Evaluator
from .ir import Call, Const, Node
from .limits import DEFAULT, Limits
from .parse import parse_expression


@dataclass
class Value:
    tensor: torch.Tensor
    exact: Any | None  # nested lists of int/Fraction when every entry is known exactly
    text: str
    integers: bool = False  # written with integer literals only (``1,2,3``), yet floating like every input

    def literal(self) -> Node:
        """The value as an EXPR constant node (exact where possible), e.g. a grad-output seed."""
        if self.tensor.dim() == 0:
            return Const(self.exact if self.exact is not None else float(self.tensor))
        data = self.exact if self.exact is not None else self.tensor.tolist()
        return Call("tensor", (), {"data": _as_float_literals(data)})


def _as_float_literals(data: Any) -> Any:
    """Integers printed as 1.0 inside tensor([...]) so the literal is floating, like the input."""
    if isinstance(data, list):
        return [_as_float_literals(d) for d in data]
    return float(data) if isinstance(data, int) else data


def split_assignment(arg: str) -> tuple[str, str]:
    name, sep, text = arg.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or name.startswith("_"):
        raise GradexplainError(Msg("expected NAME=VALUE, got {arg!r}", arg=arg))
    if not name.isascii():  # EXPR is ASCII, so a look-alike letter (Cyrillic х) could never be used
        raise GradexplainError(Msg("{name}: NAME must be plain ASCII (a look-alike letter?)", name=ascii(name)))
    if not text.strip():
        raise GradexplainError(Msg("{name}= has no value", name=name))
    return name, text.strip()


def _exact(node: Node, tensor: torch.Tensor) -> Any | None:
    if isinstance(node, Const) and isinstance(node.value, (int, Fraction)):
        return node.value
    if isinstance(node, Const) and isinstance(node.value, float) and math.isfinite(node.value):
        return _decimal(node.value)  # x=0.5 as written is exactly 1/2
    if isinstance(node, Call) and node.op == "tensor":
        data = node.params["data"]
        if all(isinstance(v, (int, Fraction)) or (isinstance(v, float) and v == v and abs(v) != float("inf"))
               for v in _flatten(data)):
            return _decimal(data)  # 0.5 as written is exactly 1/2
        return None
    if tensor.numel() <= 10_000 and tensor.is_floating_point() and torch.isfinite(tensor).all() \
            and bool((tensor == tensor.round()).all()):
        return tensor.to(torch.int64).tolist()
    return None


def _decimal(d: Any) -> Any:
    if isinstance(d, list):
        return [_decimal(x) for x in d]
    if isinstance(d, float):
        f = Fraction(repr(d))
        return f.numerator if f.denominator == 1 else f
    return d


def _flatten(d: Any) -> list[Any]:
    return [y for x in d for y in _flatten(x)] if isinstance(d, list) else [d]


def _integer_literals(node: Node) -> bool:
    """``3``, ``1,2,3``, ``[[2,4]]``: what ``torch.tensor`` would make an integer tensor of."""
    if isinstance(node, Const):
        return type(node.value) is int
    if isinstance(node, Call) and node.op == "tensor":
        entries = _flatten(node.params["data"])
        return bool(entries) and all(type(v) is int for v in entries)
    return False


def clip(text: str, most: int = 60) -> str:
    """A VALUE as quoted in a message: a 4,000-digit number is not repeated in full."""
    return text if len(text) <= most else f"{text[:most // 2]}…{text[-10:]} ({len(text):,} characters)"


def parse_value(text: str, limits: Limits = DEFAULT, dtype: torch.dtype | None = None) -> Value:
    """A VALUE as a floating tensor of ``dtype`` (default: torch's default dtype).

    Except one spelled ``tensor([...])`` with integer literals only: that is an int64 tensor, as in
    EXPR and in PyTorch (class targets, index tensors: ``Yb=tensor([1, 0, 2])``); it cannot require grad."""
    node = parse_expression(text, limits, allow_names=False)
    if isinstance(node, Const) and isinstance(node.value, (int, Fraction)) and math.isinf(to_float(node.value)):
        # an exact number written out (10**400) is not the float literal 1e400: float() refuses it too
        raise GradexplainError(Msg("{value} is too large for a floating-point number", value=clip(text)))
    with torch.no_grad():
        raw = Evaluator({}, limits)(node)
    try:
        tensor = raw if isinstance(raw, torch.Tensor) else torch.tensor(float(raw))
    except OverflowError:
        raise GradexplainError(Msg("{value} is too large for a floating-point number", value=clip(text))) from None
    if not (is_integer_literal(node) and not tensor.is_floating_point()):
        tensor = tensor.to(dtype or torch.get_default_dtype())
    return Value(tensor, _exact(node, tensor), text, _integer_literals(node) and tensor.is_floating_point())


def is_integer_literal(node: Node) -> bool:
    """``tensor([1, 0, 2])``: an integer tensor written as such (a plain ``1,0,2`` stays floating)."""
    return isinstance(node, Call) and node.op == "tensor" and (node.src or "").startswith(("tensor", "torch.tensor"))
