"""Run IR with torch: for real (autograd), or without autograd (shapes of subexpressions,
evaluating a gradient formula).

One evaluator serves all three, so a gradient formula is computed by exactly the same op
implementations as the forward program it came from.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable

import torch

from .bignum import torch_scalar
from .errors import GradexplainError, LimitError
from .ir import Call, Const, Input, Node, walk
from .printer import to_text
from .limits import DEFAULT, Limits
from .ops import REGISTRY, as_tensor

INPLACE = {"add": operator.iadd, "sub": operator.isub, "mul": operator.imul, "div": operator.itruediv,
           "pow": operator.ipow}
MAX_DIMS = 64  # torch's own limit ("only tensors with up to 64 dims are supported")


def const_value(c: Const) -> int | float:
    """Exact constants as torch takes them: floats past int64 (see :mod:`gradexplain.bignum`)."""
    return torch_scalar(c.value)


def describe(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"shape {list(v.shape)}" + ("" if v.is_floating_point() else f" ({str(v.dtype).replace('torch.', '')})")
    return "a number"


class Evaluator:
    """Evaluate IR nodes against input values, memoised by node identity.

    Before an op that can make a tensor larger than its inputs runs (broadcasting, outer
    products, constructors), its output size is predicted from the argument shapes and checked
    against ``--max-elements``, so a size bomb is refused before anything is allocated.
    """

    def __init__(self, inputs: dict[str, Any], limits: Limits = DEFAULT,
                 on_value: Callable[[Node, Any], None] | None = None):
        self.on_value = on_value  # called with (node, value) as each node is computed
        self.inputs = inputs
        self.limits = limits
        self.memo: dict[int, Any] = {}
        self.alive: list[Node] = []  # memo keys are ids: keep their nodes alive so ids are not reused

    def __call__(self, root: Node) -> Any:
        for node in walk(root, done=self.memo):
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
        self._predict(node, args)
        return self._check(node, self._apply(node, args))

    def _predict(self, node: Call, args: list[Any]) -> None:
        spec = REGISTRY[node.op]
        if spec.predict is None:
            return
        shapes = [tuple(a.shape) if isinstance(a, torch.Tensor) else () for a in args]
        try:
            shape = spec.predict(shapes, node.params)
        except (RuntimeError, ValueError, TypeError, IndexError, KeyError):
            return  # the op itself will report the mismatch
        self._check_size(node, math.prod(shape), shape)

    def _apply(self, node: Call, args: list[Any]) -> Any:
        spec = REGISTRY[node.op]
        try:
            if node.inplace and node.op in INPLACE and isinstance(args[0], torch.Tensor):
                return INPLACE[node.op](args[0], args[1])
            params = dict(node.params)
            if node.op == "setitem":
                params["inplace"] = node.inplace
            result = spec.torch(*args, **params)
        except GradexplainError:
            raise
        except ZeroDivisionError as e:
            result = e
        except TypeError as e:  # a formula's 0-d constant (zeros_like(a) → 0) where torch wants a tensor: index_add
            if not any(isinstance(a, (int, float)) for a in args):
                raise GradexplainError(self._message(node, args, e)) from None
            result = e
        except (RuntimeError, ValueError, IndexError, NotImplementedError, OverflowError, AttributeError) as e:
            raise GradexplainError(self._message(node, args, e)) from None
        if not isinstance(result, (complex, ZeroDivisionError, TypeError)):
            return result
        # Python numbers raise or turn complex where torch gives inf/nan (1/0, 0**-1, (-1)**0.5): do as torch does
        if not any(isinstance(a, (int, float)) for a in args):
            raise GradexplainError(self._message(node, args, ArithmeticError(str(result))))
        return self._apply(node, [as_tensor(a) if isinstance(a, (int, float)) else a for a in args])

    def _message(self, node: Call, args: list[Any], e: Exception) -> str:
        text = node.src or to_text(node)
        shapes = " and ".join(describe(a) for a in args if isinstance(a, torch.Tensor))
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        detail = detail.replace("thesame", "the same")
        where = f"in {text}" + (f" ({shapes})" if shapes else "")
        if "leaf Variable that requires grad" in detail:
            detail += (" — an input that requires grad is a leaf: backward() needs the value it had when it was "
                       "used, and its .grad belongs to that value, so PyTorch refuses to change it in place. "
                       "Change a copy instead (y = x*1; y += 1), or pass --const for an input that needs no gradient")
        return f"{where}: {detail}"

    def _check_size(self, node: Call, numel: int, shape: Any) -> None:
        if numel > self.limits.max_elements:
            raise LimitError(f"{node.src or to_text(node)} would make a tensor of {numel:,} elements "
                             f"(shape {list(shape)}), over the limit of {self.limits.max_elements:,} "
                             "(raise it with --max-elements)")

    def _check(self, node: Call, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            self._check_size(node, value.numel(), value.shape)
            if value.dim() > MAX_DIMS:
                raise LimitError(f"{node.src or to_text(node)} would make a tensor of {value.dim()} dims: torch "
                                 f"supports at most {MAX_DIMS} (most of its kernels refuse more)")
        return value


class Shapes:
    """Shape and dtype of any IR node over the given inputs.

    Found by evaluating (without autograd, memoised) on copies of the real inputs: the meta
    device would avoid the arithmetic but its first use imports ~1 s of torch internals, more
    than the work it saves here.
    """

    def __init__(self, inputs: dict[str, torch.Tensor], limits: Limits = DEFAULT):
        copies = {k: (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}
        self.evaluator = Evaluator(copies, limits)

    def value(self, node: Node) -> Any:
        with torch.no_grad():
            return self.evaluator(node)

    def bind(self, name: str, node: Node) -> None:
        """Let ``Input(name)`` stand for ``node``'s value (a let-binding of a gradient program)."""
        self.evaluator.inputs[name] = self.value(node)

    def shape(self, node: Node) -> tuple[int, ...]:
        v = self.value(node)
        return tuple(v.shape) if isinstance(v, torch.Tensor) else ()

    def dtype(self, node: Node) -> torch.dtype:
        v = self.value(node)
        if isinstance(v, torch.Tensor):
            return v.dtype
        return torch.int64 if isinstance(v, int) else torch.get_default_dtype()

    def numel(self, node: Node) -> int:
        return math.prod(self.shape(node))


def evaluate(node: Node, inputs: dict[str, torch.Tensor], limits: Limits = DEFAULT) -> torch.Tensor:
    """The value of a formula, no autograd, as a tensor."""
    # a formula can hold the program's own in-place nodes (x += 1): they must not change the caller's inputs
    in_place = any(isinstance(n, Call) and n.inplace for n in walk(node))
    with torch.no_grad():
        v = Evaluator({k: (t.detach().clone() if in_place else t.detach()) if isinstance(t, torch.Tensor) else t
                       for k, t in inputs.items()}, limits)(node)
    return v if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=torch.get_default_dtype())
