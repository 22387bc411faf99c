"""Notes for the classic autograd surprises, flagged only where this expression hits them.

Each check looks at the program and the values of the real torch run (the graph_link Trace):
``--const`` inputs that get no ``.grad``, constants built in EXPR that cut the graph, integer
tensors that cannot require grad, and ops evaluated exactly at a point where they are not
differentiable (which subgradient PyTorch picks, and what SymPy's default would say).
"""
from __future__ import annotations

from typing import Iterator

import torch

from .graph_link import Trace
from .i18n import Msg, N_
from .ir import Call, Program, walk
from .ops import REGISTRY
from .phrases import COMMA, joined

WHERE_MAX = 4  # positions listed per note

# op -> (where it is not differentiable, what PyTorch uses, what SymPy's default says)
KINKS = {
    "relu": (N_("relu is not differentiable at 0"), N_("PyTorch uses the subgradient 0 there"),
             N_("SymPy's derivative Heaviside(x) is 1/2 at 0 (gradexplain writes heaviside(x, 0) to match PyTorch)")),
    "abs": (N_("abs is not differentiable at 0"), N_("PyTorch uses the subgradient 0 there (sign(0) = 0)"),
            N_("SymPy's derivative sign(x) is 0 at 0 as well")),
    "sqrt": (N_("sqrt has an infinite slope at 0"), N_("PyTorch's gradient is inf there (inf·0 = nan downstream)"),
             N_("SymPy's 1/(2*sqrt(x)) is zoo (complex infinity) at 0")),
}


def notes(program: Program, trace: Trace, const: set[str]) -> list[str]:
    """Every misconception note that applies to this run, in a stable order."""
    found = list(const_notes(program, const))
    nodes = [n for n in walk([s.node for s in program.statements]) if isinstance(n, Call)]
    found += constant_notes(nodes, trace)
    for node in nodes:
        found += kink_notes(node, trace)
    return found


def const_notes(program: Program, const: set[str]) -> Iterator[str]:
    used = [n for n in program.inputs if n in const]
    if len(used) == 1:
        yield Msg("{name}: --const, so requires_grad=False — PyTorch computes no gradient for it and .grad stays "
                  "None; in the formulas it stays a symbol with a fixed value", name=used[0])
    elif used:
        yield Msg("{names}: --const, so requires_grad=False — PyTorch computes no gradient for them and .grad stays "
                  "None; in the formulas they stay symbols with a fixed value", names=joined(used, COMMA))


def _label(node: Call, trace: Trace) -> str:
    """``b = zeros(1,2)`` for a named constant, else its text."""
    text = node.src or trace.text(node)
    name = trace.names.get(id(node))
    return f"{name} = {text}" if name and name != text else text


def constant_notes(nodes: list[Call], trace: Trace) -> list[str]:
    """Tensors built inside EXPR are constants: the graph (and the gradient) stops there."""
    out = []
    built = [n for n in nodes if REGISTRY[n.op].constructor and isinstance(trace.values.get(id(n)), torch.Tensor)]
    in_graph = {id(a) for c in trace.calls.values() for a in c.args}
    integer = [n for n in built if not trace.values[id(n)].is_floating_point()]
    feeding = [n for n in built if id(n) in in_graph and n not in integer]
    if feeding:
        names = joined(dict.fromkeys(_label(n, trace) for n in feeding), COMMA)
        out.append(Msg("{names}: built inside EXPR, so a constant (requires_grad=False, like a tensor after "
                       ".detach()): no gradient flows into it — its edge in the graph leads to nothing", names=names))
    if integer:
        names = joined(dict.fromkeys(_label(n, trace) for n in integer), COMMA)
        out.append(Msg("{names}: an integer tensor (all-integer literals give int64, as in PyTorch), and integer "
                       "tensors cannot require grad — right for class targets; write 1.0 to get a float. Inputs "
                       "given as NAME=VALUE are always floating, so they can", names=names))
    return out


def _positions(mask: torch.Tensor, name: str) -> str:
    idx = mask.nonzero().tolist()
    shown = [f"{name}[{','.join(map(str, i))}]" if i else name for i in idx[:WHERE_MAX]]
    if len(idx) > WHERE_MAX:
        return Msg("{shown} and {more} more", shown=joined(shown, COMMA), more=len(idx) - WHERE_MAX)
    return joined(shown, COMMA)


def kink_notes(node: Call, trace: Trace) -> list[str]:
    """An op evaluated exactly where it has no derivative, on a value that requires grad."""
    args = [trace.values.get(id(a)) for a in node.args]
    first = args[0] if args else None
    if not isinstance(first, torch.Tensor) or not any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
        return []
    where = node.src or trace.text(node)
    if node.op in KINKS:
        mask = first.detach() == 0
        if not bool(mask.any()):
            return []
        what, torch_says, sympy_says = KINKS[node.op]
        return [Msg("{where}: {what}, and {positions} is exactly 0 — {torch_says}; {sympy_says}", where=where,
                    what=Msg(what), positions=_positions(mask, trace.source(node.args[0])),
                    torch_says=Msg(torch_says), sympy_says=Msg(sympy_says))]
    if node.op in ("max", "min") and len(args) == 2 and node.params.get("dim") is None:
        other = torch.as_tensor(args[1], dtype=first.dtype)
        mask = (first.detach() == other.detach()).expand(torch.broadcast_shapes(first.shape, other.shape))
        if bool(mask.any()):
            return [Msg("{where}: a tie at {positions} — {op}(a, b) is not differentiable where a = b; PyTorch "
                        "splits the gradient evenly (0.5 to each); SymPy's {sympy_op} has no derivative there "
                        "(gradexplain writes heaviside(a - b, 1/2))", where=where, positions=_positions(mask, "out"),
                        op=node.op, sympy_op=node.op.capitalize())]
    if node.op in ("max", "min") and len(args) == 1 and node.params.get("dim") is None and first.numel() > 1:
        extreme = first.detach().max() if node.op == "max" else first.detach().min()
        ties = int((first.detach() == extreme).sum())
        if ties > 1:
            template = (N_("{where}: {ties} entries tie for the maximum — PyTorch splits the gradient evenly "
                           "(1/{ties} to each); a single argmax would give it all to one entry") if node.op == "max"
                        else N_("{where}: {ties} entries tie for the minimum — PyTorch splits the gradient evenly "
                                "(1/{ties} to each); a single argmax would give it all to one entry"))
            return [Msg(template, where=where, ties=ties)]
    return []


def integer_input_note(names: list[str], dtype: str) -> list[str]:
    """Inputs written with integer literals (``x=1,2,3``) are floating by design: say so once."""
    if not names:
        return []
    if len(names) == 1:
        return [Msg("{name} is written with integers but used as {dtype} (every NAME=VALUE input is floating, so "
                    "that it can require grad: torch.tensor([1, 2, 3]) would be int64, and integer tensors cannot "
                    "require grad)", name=names[0], dtype=dtype)]
    return [Msg("{names} are written with integers but used as {dtype} (every NAME=VALUE input is floating, so "
                "that it can require grad: torch.tensor([1, 2, 3]) would be int64, and integer tensors cannot "
                "require grad)", names=joined(names, COMMA), dtype=dtype)]
