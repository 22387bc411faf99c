"""IR → EXPR text, parenthesised by Python's precedence so it parses back the same.

Sits above the op registry: how an op is spelled (infix symbol, method or function, which params
are positional, hidden or always printed) is part of its entry.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any

from .ir import Call, Const, Input, Node, Number, fill_slots, first_slot, key_text, nested_text, number_text
from .ops import REGISTRY

# Python precedence levels, loosest first (a fact of the language, not of any op).
PREC_COMPARE, PREC_ADD, PREC_MUL, PREC_UNARY, PREC_POW, PREC_POSTFIX, PREC_ATOM = 5, 10, 20, 30, 40, 50, 60
PREC_OR, PREC_XOR, PREC_AND = 6, 7, 8  # | ^ &: between comparisons and +
PRECEDENCE = {"+": PREC_ADD, "-": PREC_ADD, "*": PREC_MUL, "/": PREC_MUL, "@": PREC_MUL, "**": PREC_POW,
              ">": PREC_COMPARE, ">=": PREC_COMPARE, "<": PREC_COMPARE, "<=": PREC_COMPARE, "==": PREC_COMPARE,
              "!=": PREC_COMPARE, "|": PREC_OR, "^": PREC_XOR, "&": PREC_AND}


def number_prec(v: Number) -> int:
    text = number_text(v)
    if "/" in text:  # -1/2 is (-1)/2: a division, so 0.5/(-1/2) keeps its brackets
        return PREC_MUL
    if text.startswith("-"):
        return PREC_UNARY
    return PREC_ATOM


class _Shown(str):
    """A computed param's EXPR text (``emb.shape[0]``), printed as it is."""


def param_text(v: Any) -> str:
    if isinstance(v, _Shown):
        return str(v)
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, (list, tuple)):
        inner = ", ".join(param_text(x) for x in v)
        return f"({inner},)" if isinstance(v, tuple) and len(v) == 1 else (f"({inner})" if isinstance(v, tuple) else f"[{inner}]")
    if isinstance(v, (int, float, Fraction)) and not isinstance(v, bool):
        return number_text(v)
    return str(v)


class Printer:
    """IR → EXPR text, parenthesised by Python's precedence so it parses back the same."""

    def __init__(self, names: dict[int, str] | None = None):
        # ``names`` lets a caller print some nodes by a name (graph labels use it).
        self.names = names or {}

    def text(self, node: Node) -> str:
        return self._p(node)[0]

    def _wrap(self, node: Node, min_prec: int, right: bool = False) -> str:
        s, p = self._p(node)
        if p < min_prec or (right and p == min_prec):
            return f"({s})"
        return s

    def _receiver(self, node: Node) -> str:
        """The text before ``.method(...)``: a number in parentheses (``1.sum()`` would not parse)."""
        receiver = self._wrap(node, PREC_POSTFIX)
        return f"({receiver})" if isinstance(node, Const) and not receiver.startswith("(") else receiver

    def _p(self, node: Node) -> tuple[str, int]:
        if id(node) in self.names:
            return self.names[id(node)], PREC_ATOM
        if isinstance(node, Input):
            return node.name, PREC_ATOM
        if isinstance(node, Const):
            return number_text(node.value), number_prec(node.value)
        assert isinstance(node, Call)
        op, args, params = node.op, node.args, node.params
        spec = REGISTRY[op]
        start = first_slot(params)
        if start is not None:  # computed params (sizes, index tensors) print as the expressions they are
            shown = [_Shown(self.text(a)) for a in args]
            params = {k: fill_slots(v, shown) for k, v in params.items()}
            args = args[:start]
        if spec.infix == "~":
            return "~" + self._wrap(args[0], PREC_UNARY), PREC_UNARY
        if op == "tuple":
            return "(" + ", ".join(self.text(a) for a in args) + ("," if len(args) == 1 else "") + ")", PREC_ATOM
        if spec.infix is not None:
            sym = spec.infix
            prec = PRECEDENCE[sym]
            if sym == "**":  # right-associative; a unary minus on the left binds looser
                left = self._wrap(args[0], PREC_POSTFIX)
                right = self._wrap(args[1], PREC_UNARY)
                return f"{left}**{right}", PREC_POW
            left = self._wrap(args[0], prec)
            right = self._wrap(args[1], prec, right=True)
            spaced = f" {sym} " if prec in (PREC_ADD, PREC_COMPARE, PREC_OR, PREC_XOR, PREC_AND) or sym == "@" else sym
            return f"{left}{spaced}{right}", prec
        if op == "neg":
            return "-" + self._wrap(args[0], PREC_UNARY), PREC_UNARY
        if op == "index":
            return f"{self._wrap(args[0], PREC_POSTFIX)}[{key_text(params['key'], str)}]", PREC_POSTFIX
        if op == "t" and params.get("attr", True):
            return f"{self._wrap(args[0], PREC_POSTFIX)}.T", PREC_POSTFIX
        if op == "tensor":
            return f"tensor({nested_text(params['data'])})", PREC_ATOM
        if op == "opaque":  # a recorded torch function outside the registry, shown by its own name
            return f"{params['name']}({', '.join(self.text(a) for a in args)})", PREC_ATOM
        if spec.output_of is not None:  # one output of a call returning several: max(a, 1).indices
            owner = REGISTRY[spec.output_of]
            assert owner.outputs is not None
            shown = {k: v for k, v in params.items() if k != "index" or owner.outputs.names}
            text = self._p(Call(owner.name, args, shown))[0]
            if owner.outputs.names:
                return f"{text}.{owner.outputs.names[owner.outputs.ops.index(op)]}", PREC_POSTFIX
            index = owner.outputs.ops.index(op) if owner.outputs.ops else params["index"]
            return f"{text}[{index}]", PREC_POSTFIX
        if spec.call_order:  # torch's positional order, tensors and params mixed
            values = dict(zip(spec.tensor_args, args), **params)
            texts = [self.text(v) if isinstance(v, Node) else param_text(v) for n in spec.call_order
                     if (v := values.get(n)) is not None or n in values]
            if spec.method:
                return f"{self._receiver(args[0])}.{op}({', '.join(texts[1:])})", PREC_POSTFIX
            return f"{op}({', '.join(texts)})", PREC_POSTFIX
        arg_texts = [self.text(a) for a in args]
        first = spec.param_names[0] if spec.param_names else None
        if spec.variadic and isinstance(spec.param_defaults.get(first), str) and first in params:
            # einsum('ij,jk->ik', a, b): PyTorch's spelling, a leading string then the operands
            rest = [f"{n}={param_text(params[n])}" for n in spec.param_names[1:]
                    if n in params and params[n] != spec.param_defaults.get(n)]
            return f"{op}({', '.join([param_text(params[first]), *arg_texts, *rest])})", PREC_ATOM
        if spec.variadic:
            arg_texts = ["[" + ", ".join(arg_texts) + "]"]
        params = _fill_positional(spec, params)
        for name in spec.param_names:
            if name not in params or name in spec.hidden_params:
                continue
            value = params[name]
            if name == spec.varargs_param and isinstance(value, tuple) and value:  # () is written as ()
                arg_texts.extend(param_text(v) for v in value)
            elif name in spec.positional_params and all(
                    p in params for p in spec.positional_params[:spec.positional_params.index(name)]):
                arg_texts.append(param_text(value))  # positional only after every earlier positional one
            elif value != spec.param_defaults.get(name, object()) or name in spec.always_printed:
                arg_texts.append(f"{name}={param_text(value)}")
        if spec.method and args and not spec.variadic:
            return f"{self._receiver(args[0])}.{op}({', '.join(arg_texts[1:])})", PREC_POSTFIX
        return f"{op}({', '.join(arg_texts)})", PREC_ATOM


def to_text(node: Node) -> str:
    return Printer().text(node)


def _fill_positional(spec: Any, params: dict[str, Any]) -> dict[str, Any]:
    """A positional param printed after earlier ones that are left at their defaults needs them
    written out (``range(end=4)`` is no Python: ``range(0, 4)``); the defaults fill the gaps."""
    present = [i for i, n in enumerate(spec.positional_params) if n in params]
    if not present:
        return params
    filled = dict(params)
    for n in spec.positional_params[:present[-1]]:
        if n not in filled and n in spec.param_defaults:
            filled[n] = spec.param_defaults[n]
    return filled
