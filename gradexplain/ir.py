"""The intermediate representation every part of gradexplain shares.

An EXPR is parsed once into a DAG of :class:`Node` objects.  The same DAG is run by torch
(autograd), differentiated by the symbolic engine (whose result is again a DAG of the same
nodes) and printed back as EXPR text by :mod:`gradexplain.printer` (which sits above the op
registry, since spelling an op needs its entry).  Nodes compare by identity, so a
subexpression used twice (``y`` in ``y*y``) is one shared node.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Container, Iterator, Union

from .bignum import int_text, rational_text

Number = Union[int, Fraction, float]


@dataclass(frozen=True)
class Slice:
    """A static ``start:stop:step`` inside an index key."""

    start: int | None = None
    stop: int | None = None
    step: int | None = None

    def to_python(self) -> slice:
        return slice(self.start, self.stop, self.step)

    def text(self) -> str:
        s = f"{'' if self.start is None else self.start}:{'' if self.stop is None else self.stop}"
        return s + (f":{self.step}" if self.step is not None else "")


@dataclass(frozen=True)
class Slot:
    """A static parameter whose value is computed: it stands for the call's argument ``args[index]``.

    ``emb.view(emb.shape[0], -1)`` and ``C[Xb]`` hold a value only known when the program runs (a size,
    an index tensor): the parser appends that expression to the call's arguments, after its tensor
    arguments, and leaves a Slot in the param.  :func:`resolve_slots` puts the values back before the
    op's implementation runs, so an entry's ``torch``/``obj`` functions see plain values."""

    index: int


# An index key: a tuple of int | Slice | None (newaxis) | Ellipsis | Slot (an index tensor).
IndexKey = tuple


def key_to_python(key: IndexKey) -> tuple:
    return tuple(k.to_python() if isinstance(k, Slice) else k for k in key)


def key_text(key: IndexKey, slot_text: Any = None) -> str:
    def part(k: Any) -> str:
        if k is None:
            return "None"
        if k is Ellipsis:
            return "..."
        if isinstance(k, Slice):
            return k.text()
        if isinstance(k, Slot):
            return slot_text(k) if slot_text is not None else f"<argument {k.index}>"
        return str(k)

    return ", ".join(part(k) for k in key)


def has_slots(value: Any) -> bool:
    if isinstance(value, Slot):
        return True
    if isinstance(value, (tuple, list)):
        return any(has_slots(v) for v in value)
    if isinstance(value, dict):
        return any(has_slots(v) for v in value.values())
    return False


def fill_slots(value: Any, args: Any) -> Any:
    """``value`` with each Slot replaced by ``args[slot.index]``."""
    if isinstance(value, Slot):
        return args[value.index]
    if isinstance(value, tuple):
        return tuple(fill_slots(v, args) for v in value)
    if isinstance(value, list):
        return [fill_slots(v, args) for v in value]
    return value


def first_slot(params: dict[str, Any]) -> int | None:
    """Index of the first argument that a Slot refers to (slot arguments come last)."""
    found: list[int] = []

    def visit(v: Any) -> None:
        if isinstance(v, Slot):
            found.append(v.index)
        elif isinstance(v, (tuple, list)):
            for x in v:
                visit(x)

    for v in params.values():
        visit(v)
    return min(found) if found else None


def resolve_slots(args: tuple | list, params: dict[str, Any]) -> tuple[list, dict[str, Any]]:
    """The op's own arguments and its params with computed values filled in."""
    start = first_slot(params)
    if start is None:
        return list(args), params
    return list(args[:start]), {k: fill_slots(v, args) for k, v in params.items()}


class Node:
    """Base class: identity equality, so shared subexpressions stay shared."""

    __slots__ = ()

    def children(self) -> tuple["Node", ...]:
        return ()


@dataclass(eq=False)
class Input(Node):
    """A NAME=VALUE input (or, inside a rule template, one of the rule's variables)."""

    name: str


@dataclass(eq=False)
class Const(Node):
    """A scalar number written in EXPR (kept exact: ints and Fractions)."""

    value: Number


@dataclass(eq=False)
class Call(Node):
    """One operation of the registry applied to tensor arguments.

    ``params`` are the static (non-tensor) arguments: ``dim``, ``keepdim``, index keys,
    shapes, ``reduction``...  ``src`` is the piece of the user's EXPR the node came from
    (for graph labels); ``inplace`` marks PyTorch in-place semantics (``y += x``,
    ``b[0] = e``) that the autograd run honours and functional evaluation ignores.
    """

    op: str
    args: tuple[Node, ...]
    params: dict[str, Any] = field(default_factory=dict)
    src: str | None = None
    inplace: bool = False
    # an operator spelled as torch's function (``torch.sub(a, b)``, not ``a - b``): on two Python numbers
    # the function gives a tensor, the operator a number
    function: bool = False

    def children(self) -> tuple[Node, ...]:
        return self.args


@dataclass
class Statement:
    """One statement of an EXPR program, in order: ``name = node``."""

    name: str
    node: Node
    src: str


@dataclass
class Program:
    statements: list[Statement]
    output: int  # index into statements
    inputs: list[str]  # names used but not assigned, in order of first use
    text: str = ""

    @property
    def output_node(self) -> Node:
        return self.statements[self.output].node

    @property
    def in_place(self) -> bool:
        """Whether any statement changes a tensor in place (``y += x``, ``b[0] = e``): then the
        inputs must be copied before each run, since a view of an input may be what changes."""
        return any(isinstance(n, Call) and n.inplace for n in walk([s.node for s in self.statements]))


def walk(roots: Node | list[Node], done: Container[int] = ()) -> Iterator[Node]:
    """Every node reachable from ``roots``, children before parents, each once.

    Nodes whose id is in ``done`` (a memo of earlier work) are neither yielded nor entered, so
    repeated walks over a growing DAG cost only the new part."""
    seen: set[int] = set()
    stack: list[tuple[Node, bool]] = [(r, False) for r in reversed(roots if isinstance(roots, list) else [roots])
                                      if id(r) not in done]
    while stack:
        node, expanded = stack.pop()
        if id(node) in seen:
            continue
        if expanded:
            seen.add(id(node))
            yield node
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(node.children()) if id(c) not in seen and id(c) not in done)


def inputs_of(root: Node) -> set[str]:
    return {n.name for n in walk(root) if isinstance(n, Input)}


def substitute(root: Node, mapping: dict[str, Node]) -> Node:
    """Replace ``Input`` nodes by name (instantiating a rule template)."""
    memo: dict[int, Node] = {}
    for n in walk(root):
        if isinstance(n, Input):
            memo[id(n)] = mapping.get(n.name, n)
        elif isinstance(n, Call):
            args = tuple(memo[id(a)] for a in n.args)
            memo[id(n)] = n if all(a is b for a, b in zip(args, n.args)) else Call(n.op, args, n.params)
        else:
            memo[id(n)] = n
    return memo[id(root)]


# ------------------------------------------------------------- literals as EXPR text


def number_text(v: Number) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return int_text(v)
    if isinstance(v, Fraction):
        return rational_text(v)
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def nested_text(data: Any) -> str:
    if isinstance(data, (list, tuple)):
        return "[" + ", ".join(nested_text(d) for d in data) + "]"
    return number_text(data)
