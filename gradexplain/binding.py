"""Argument binding: positional and keyword arguments → an op's tensor arguments and static params.

One set of rules serves both readers of a call: the EXPR parser (arguments are AST nodes, turned
into IR by the parser) and the recorder of the user's own code (arguments are the Python values
torch received).  What differs between them — how an argument becomes an IR node or a literal,
what counts as a tensor — is the :class:`Arguments` adapter each passes in; the order in which a
call's pieces are matched is the same for both, so ``F.layer_norm(x, (3,), w, b)`` binds alike
whether it was typed as EXPR or run by a script.
"""
from __future__ import annotations

from typing import Any, Protocol

from .i18n import Msg
from .ir import Const, Node
from .ops import REQUIRED, OpSpec

# keyword spellings PyTorch users write, mapped onto our argument names
KEYWORD_ALIASES = {"input": 0, "other": 1, "target": 1, "tensor": 0, "exponent": 1, "weight": "W", "bias": "b",
                   "axis": "dim", "dims": "dim", "ord": "p", "size": "shape", "value": "fill_value", "end": "end",
                   "keepdims": "keepdim", "axis0": "dim0", "axis1": "dim1", "dim1": "dim0", "dim2": "dim1"}
# tensor arguments that take a boolean mask, so a comparison is allowed there
MASK_ARGS = {("where", "cond"), ("masked_fill", "mask"), ("masked_select", "mask")}
OPTIONAL_REQUIRED = ("softmax", "log_softmax")  # torch lets their dim default (with a warning); so do we


class Arguments(Protocol):
    """How one reader of calls sees an argument (an AST node, or a Python value)."""

    def tensor(self, item: Any, allow_compare: bool = False) -> Node: ...

    def static(self, item: Any, pname: str) -> Any: ...

    def is_static(self, item: Any) -> bool:
        """An integer literal (or tuple of them) where an optional tensor could stand: ``max(x, 1)``."""
        ...

    def is_tensor(self, item: Any) -> bool:
        """Looks like a tensor, for layer_norm's tensors that torch puts after a param."""
        ...

    def elements(self, item: Any) -> list[Any] | None:
        """The items of a list/tuple argument (``stack([a, b])``), None when it is not one."""
        ...

    def is_string(self, item: Any) -> bool:
        """A string literal (einsum's equation leads its tensors: ``einsum("ij,jk->ik", a, b)``)."""
        ...

    def nested(self, item: Any) -> Any: ...

    def error(self, message: str, item: Any = None) -> Exception: ...


def keyword_target(spec: OpSpec, name: str, args: Arguments, item: Any) -> str:
    """The tensor argument or param a keyword names (``input=`` is the first tensor, ``axis=`` is ``dim``)."""
    if name in spec.tensor_args or name in spec.param_names:
        return name
    alias = KEYWORD_ALIASES.get(name)
    if isinstance(alias, int) and alias < len(spec.tensor_args):
        return spec.tensor_args[alias]
    if isinstance(alias, str) and (alias in spec.tensor_args or alias in spec.param_names):
        return alias
    raise args.error(Msg("{op}() has no keyword argument {name!r}", op=spec.name, name=name), item)


def bind(spec: OpSpec, positional: list[Any], keywords: list[tuple[str, Any]], leading: list[Node],
         args: Arguments, call: Any = None) -> tuple[list[Node], dict[str, Any]]:
    """Match a call to ``spec``: the tensor arguments in order (as IR nodes) and the static params.

    ``leading`` holds arguments already read (a method's receiver); ``call`` is what errors point
    at when no single argument is to blame."""
    positional = list(positional)
    tensors, params, nodes = _tensor_arguments(spec, positional, leading, args, call)
    _positional_params(spec, positional, tensors, params, args)
    if positional:
        raise args.error(Msg("{op}() got too many positional arguments", op=spec.name), positional[0])
    _keyword_arguments(spec, keywords, tensors, params, args)
    if not spec.variadic:
        nodes = _ordered_tensors(spec, tensors, args, call)
    _check_required(spec, params, args, call)
    return nodes, params


def _tensor_arguments(spec: OpSpec, positional: list[Any], leading: list[Node], args: Arguments,
                      call: Any) -> tuple[dict[str, Node], dict[str, Any], list[Node]]:
    """Stage 1: the tensors from the front of the positional arguments (consumed from ``positional``)."""
    params: dict[str, Any] = {}
    nodes: list[Node] = list(leading)
    if spec.variadic:
        if leading:
            raise args.error(Msg("{op} takes a list of tensors", op=spec.name), call)
        first = spec.param_names[0] if spec.param_names else None
        if positional and first is not None and args.is_string(positional[0]):  # einsum("ij,jk->ik", a, b)
            params[first] = args.static(positional.pop(0), first)
            if not (len(positional) == 1 and args.elements(positional[0]) is not None):
                nodes = [args.tensor(e) for e in positional]
                positional.clear()
                if not nodes:
                    raise args.error(Msg("{op} of no tensors", op=spec.name), call)
                return {}, params, nodes
        items = args.elements(positional[0]) if positional else None
        if items is None:
            raise args.error(Msg("{op} takes a list: {op}([a, b], dim=0)", op=spec.name), call)
        positional.pop(0)
        nodes = [args.tensor(e) for e in items]
        if not nodes:
            raise args.error(Msg("{op} of an empty list", op=spec.name), call)
        return {}, params, nodes
    if spec.call_order:  # torch's order mixes tensors and params: scatter_add(input, dim, index, src)
        tensors = dict(zip(spec.tensor_args, leading))
        order = [n for n in spec.call_order if n not in spec.tensor_args[:len(leading)]]
        if len(positional) > len(order):
            raise args.error(Msg("{op}() got too many positional arguments", op=spec.name), positional[len(order)])
        for name, item in zip(order, positional):
            if name in spec.tensor_args:
                tensors[name] = args.tensor(item)
            else:
                params[name] = args.static(item, name)
        positional.clear()
        return tensors, params, nodes
    if spec.name == "tensor":
        if len(positional) != 1:
            raise args.error(Msg("tensor takes one nested list: tensor([[1, 2], [3, 4]])"), call)
        params["data"] = args.nested(positional.pop(0))
        return {}, params, nodes
    names = list(spec.tensor_args)
    for name in names[len(nodes):]:
        if not positional:
            break
        if name in spec.optional_args and args.is_static(positional[0]) and not spec.fill_missing:
            break
        nodes.append(args.tensor(positional.pop(0), allow_compare=(spec.name, name) in MASK_ARGS))
    return dict(zip(names, nodes)), params, nodes


def _positional_params(spec: OpSpec, positional: list[Any], tensors: dict[str, Node], params: dict[str, Any],
                       args: Arguments) -> None:
    """Stage 2: the static params that follow, in order (``zeros(2, 3)`` packs them as varargs)."""
    pnames = [p for p in spec.param_names if p not in spec.hidden_params]
    if spec.varargs_param and len(positional) > 1:
        params[spec.varargs_param] = tuple(args.static(p, spec.varargs_param) for p in positional)
        positional.clear()
    for pname in pnames:
        if not positional:
            break
        if pname in params:
            continue
        params[pname] = args.static(positional.pop(0), pname)
        # torch puts layer_norm's optional tensors after a param: F.layer_norm(x, (3,), w, b)
        pending = [n for n in spec.optional_args if n not in tensors]
        while positional and pending and args.is_tensor(positional[0]):
            tensors[pending.pop(0)] = args.tensor(positional.pop(0))


def _keyword_arguments(spec: OpSpec, keywords: list[tuple[str, Any]], tensors: dict[str, Node],
                       params: dict[str, Any], args: Arguments) -> None:
    """Stage 3: keywords, each to a tensor argument or a param (never both, never twice)."""
    for name, item in keywords:
        target = keyword_target(spec, name, args, item)
        if target in spec.tensor_args:
            if target in tensors:
                raise args.error(Msg("{op}() got {name!r} twice", op=spec.name, name=name), item)
            tensors[target] = args.tensor(item, allow_compare=(spec.name, target) in MASK_ARGS)
        else:
            if target in params:
                raise args.error(Msg("{op}() got {name!r} twice", op=spec.name, name=name), item)
            params[target] = args.static(item, target)


def _ordered_tensors(spec: OpSpec, tensors: dict[str, Node], args: Arguments, call: Any) -> list[Node]:
    """Stage 4: the tensor arguments in the registry's order; the required ones all present (a
    skipped one that the registry fills, as ``clamp(x, max=1)``'s ``min``, gets its fill value)."""
    for n in spec.tensor_args:  # clamp(x, max=1): min is -inf
        if n not in tensors and n in spec.fill_missing:
            tensors[n] = Const(spec.fill_missing[n])
    missing = [n for n in spec.tensor_args if n not in tensors and n not in spec.optional_args]
    if missing:
        raise args.error(Msg("{op}() is missing its argument {name!r}", op=spec.name, name=missing[0]), call)
    order = [n for n in spec.tensor_args if n in tensors]
    if order != list(spec.tensor_args[:len(order)]):
        raise args.error(Msg("{op}(): pass optional arguments in order", op=spec.name), call)
    return [tensors[n] for n in order]


def _check_required(spec: OpSpec, params: dict[str, Any], args: Arguments, call: Any) -> None:
    for pname, default in spec.params:
        if pname not in params and default is REQUIRED and spec.name not in OPTIONAL_REQUIRED:
            raise args.error(Msg("{op}() is missing its parameter {name!r}", op=spec.name, name=pname), call)
