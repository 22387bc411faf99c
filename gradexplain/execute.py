"""Run IR with torch: for real (autograd), on the ``meta`` device (shapes and size limits
before any real work), or without autograd (evaluating a gradient formula).

One evaluator serves all three, so a gradient formula is computed by exactly the same op
implementations as the forward program it came from.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable

import torch

from .errors import GradexplainError, LimitError
from .ir import Call, Const, Input, Node, to_text, walk
from .limits import DEFAULT, Limits
from .ops import REGISTRY

INPLACE = {"add": operator.iadd, "sub": operator.isub, "mul": operator.imul, "div": operator.itruediv,
           "pow": operator.ipow}


def const_value(c: Const) -> int | float:
    v = c.value
    return v if isinstance(v, int) else float(v)


def describe(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"shape {list(v.shape)}" + ("" if v.is_floating_point() else f" ({str(v.dtype).replace('torch.', '')})")
    return "a number"


class Evaluator:
    """Evaluate IR nodes against input values, memoised by node identity.

    ``meta=True`` evaluates on the meta device: no data, just shapes and dtypes, and every
    result's size is checked against the element limit *before* anything real is allocated.
    Constant subtrees are still computed for real there (after a meta check of their size),
    because some ops need values to know a shape (``one_hot`` of class indices).
    """

    def __init__(self, inputs: dict[str, Any], limits: Limits = DEFAULT, meta: bool = False,
                 on_value: Callable[[Node, Any], None] | None = None):
        self.on_value = on_value  # called with (node, value) as each node is computed
        self.inputs = inputs
        self.limits = limits
        self.meta = meta
        self.memo: dict[int, Any] = {}
        self.alive: list[Node] = []  # memo keys are ids: keep their nodes alive so ids are not reused

    def __call__(self, root: Node) -> Any:
        for node in walk(root):
            if id(node) not in self.memo:
                self.memo[id(node)] = value = self._eval(node)
                self.alive.append(node)
                if self.on_value is not None:
                    self.on_value(node, value)
        return self.memo[id(root)]

    def _eval(self, node: Node) -> Any:
        if isinstance(node, Input):
            if node.name not in self.inputs:
                raise GradexplainError(f"no value for {node.name!r}: give it as {node.name}=VALUE")
            return self.inputs[node.name]
        if isinstance(node, Const):
            return const_value(node)
        assert isinstance(node, Call)
        args = [self.memo[id(a)] for a in node.args]
        if self.meta:
            if any(isinstance(a, torch.Tensor) and a.is_meta for a in args):
                args = [a.to("meta") if isinstance(a, torch.Tensor) else a for a in args]
                return self._check(node, self._apply(node, args))
            with torch.device("meta"):  # a constant: check its size before making it for real
                self._check(node, self._apply(node, args))
            return self._apply(node, args)
        return self._check(node, self._apply(node, args))

    def _apply(self, node: Call, args: list[Any]) -> Any:
        spec = REGISTRY[node.op]
        try:
            if node.inplace and node.op in INPLACE and isinstance(args[0], torch.Tensor):
                return INPLACE[node.op](args[0], args[1])
            params = dict(node.params)
            if node.op == "index_put":
                params["inplace"] = node.inplace
            return spec.torch(*args, **params)
        except GradexplainError:
            raise
        except (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError, OverflowError) as e:
            raise GradexplainError(self._message(node, args, e)) from None

    def _message(self, node: Call, args: list[Any], e: Exception) -> str:
        text = node.src or to_text(node)
        shapes = " and ".join(describe(a) for a in args if isinstance(a, torch.Tensor))
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        detail = detail.replace("thesame", "the same")
        where = f"in {text}" + (f" ({shapes})" if shapes else "")
        if "leaf Variable that requires grad" in detail:
            detail += " — an input that requires grad cannot be changed in place; copy it first (y = x*1)"
        return f"{where}: {detail}"

    def _check(self, node: Call, value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.numel() > self.limits.max_elements:
            raise LimitError(f"{node.src or to_text(node)} would make a tensor of {value.numel():,} elements "
                             f"(shape {list(value.shape)}), over the limit of {self.limits.max_elements:,} "
                             "(raise it with --max-elements)")
        return value


def meta_inputs(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.detach().to("meta") if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}


class Shapes:
    """Shape and dtype of any IR node over the given inputs, from a meta evaluation."""

    def __init__(self, inputs: dict[str, torch.Tensor], limits: Limits = DEFAULT):
        self.evaluator = Evaluator(meta_inputs(inputs), limits, meta=True)

    def shape(self, node: Node) -> tuple[int, ...]:
        v = self.evaluator(node)
        return tuple(v.shape) if isinstance(v, torch.Tensor) else ()

    def dtype(self, node: Node) -> torch.dtype:
        v = self.evaluator(node)
        if isinstance(v, torch.Tensor):
            return v.dtype
        return torch.int64 if isinstance(v, int) else torch.get_default_dtype()

    def numel(self, node: Node) -> int:
        return math.prod(self.shape(node))


def evaluate(node: Node, inputs: dict[str, torch.Tensor], limits: Limits = DEFAULT) -> torch.Tensor:
    """The value of a formula, no autograd, as a tensor."""
    with torch.no_grad():
        v = Evaluator({k: t.detach() if isinstance(t, torch.Tensor) else t for k, t in inputs.items()}, limits)(node)
    return v if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=torch.get_default_dtype())
