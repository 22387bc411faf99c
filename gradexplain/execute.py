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
from .i18n import Msg
from .ir import Call, Const, Input, Node, first_slot, resolve_slots, walk
from .phrases import AND, joined, message_of
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
        if v.is_floating_point():
            return Msg("shape {shape}", shape=list(v.shape))
        return Msg("shape {shape} ({dtype})", shape=list(v.shape), dtype=str(v.dtype).replace("torch.", ""))
    return Msg("a number")


def first_line(e: Exception) -> str:
    """An exception's message for one line: its first line (a Msg of ours kept whole, so it can be
    said in the reader's language), else its type's name."""
    said = message_of(e)
    if isinstance(said, Msg) and "\n" not in said:
        return said
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def arg_text(node: Node) -> str:
    return node.src if isinstance(node, Call) and node.src else to_text(node)


class Evaluator:
    """Evaluate IR nodes against input values, memoised by node identity.

    Before an op that can make a tensor larger than its inputs runs (broadcasting, outer
    products, constructors), its output size is predicted from the argument shapes and checked
    against ``--max-elements``, so a size bomb is refused before anything is allocated.
    """

    def __init__(self, inputs: dict[str, Any], limits: Limits = DEFAULT,
                 on_value: Callable[[Node, Any], None] | None = None, uses: dict[int, int] | None = None,
                 as_torch: bool = False):
        self.on_value = on_value  # called with (node, value) as each node is computed
        # the user's own program: Python values are refused where torch refuses them (gradient
        # formulas, evaluated without it, may apply an op to a size: log(x.numel()))
        self.as_torch = as_torch
        self.inputs = inputs
        self.limits = limits
        self.memo: dict[int, Any] = {}
        self.alive: list[Node] = []  # memo keys are ids: keep their nodes alive so ids are not reused
        # uses: id(node) → how many consumers will still read it; a value is let go when that reaches 0
        # (a run that needs only its output, not a memo of every intermediate: see autograd.run_output)
        self.uses = uses

    def __call__(self, root: Node) -> Any:
        for node in walk(root, done=self.memo):
            if id(node) not in self.memo:
                self.memo[id(node)] = value = self._eval(node)
                self.alive.append(node)
                if self.on_value is not None:
                    self.on_value(node, value)
                if self.uses is not None:
                    self._release(node)
        return self.memo[id(root)]

    def _release(self, node: Node) -> None:
        assert self.uses is not None
        for child in node.children():
            self.uses[id(child)] -= 1
            if self.uses[id(child)] == 0:
                self.memo[id(child)] = None  # kept as a key (done), its value gone

    def _eval(self, node: Node) -> Any:
        if isinstance(node, Input):
            if node.name not in self.inputs:
                raise GradexplainError(Msg("no value for {name!r}: give it as {name}=VALUE", name=node.name))
            return self.inputs[node.name]
        if isinstance(node, Const):
            return const_value(node)
        assert isinstance(node, Call)
        args = [self.memo[id(a)] for a in node.args]
        if self.as_torch:
            self._refuse_python_values(node, args)
        self._predict(node, args)
        return self._check(node, self._apply(node, args))

    def _refuse_python_values(self, node: Call, args: list[Any]) -> None:
        """Sizes and numbers read off a tensor (``x.size()``, ``x.numel()``, ``x.sum().item()``) are Python
        values in PyTorch, not tensors: torch takes them as shapes (``view(x.size())``, a param) and
        numbers as operands (``x.numel() * x``), but refuses a torch.Size where a tensor goes and a number
        as the tensor an op works on (``x.size().sum()``, ``exp(x.numel())``).  gradexplain refuses them
        there too, rather than making a tensor torch never would.  A constant (``exp(-1/2)`` in a
        gradient formula) is not read off a tensor and stays a convenience."""
        start = first_slot(node.params)
        own = node.args if start is None else node.args[:start]  # slot arguments fill params
        for i, (arg, value) in enumerate(zip(own, args)):
            # (a tuple of tensors, index_put's indices, is a tensor argument as torch has it)
            if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
                raise GradexplainError(Msg("in {expr}: {arg} is a torch.Size (a tuple of ints), not a tensor, "
                                           "and PyTorch takes no torch.Size where a tensor goes",
                                           expr=node.src or to_text(node), arg=arg_text(arg)))
            spec = REGISTRY[node.op]
            name = spec.tensor_args[i] if i < len(spec.tensor_args) and not spec.variadic else None
            if isinstance(value, (int, float)) and spec.number_args != "*" and name not in spec.number_args \
                    and any(isinstance(self.memo.get(id(n)), torch.Tensor) for n in walk(arg)):
                raise GradexplainError(Msg("in {expr}: {arg} is a Python number read off a tensor, not a tensor, "
                                           "and PyTorch's {op}() takes a tensor there",
                                           expr=node.src or to_text(node), arg=arg_text(arg), op=node.op))

    def _predict(self, node: Call, args: list[Any]) -> None:
        spec = REGISTRY[node.op]
        if spec.predict is None:
            return
        own, params = resolve_slots(args, node.params)  # a size read off a tensor: zeros(x.size())
        shapes = [tuple(a.shape) if isinstance(a, torch.Tensor) else () for a in own]
        try:
            shape = tuple(int(d) for d in spec.predict(shapes, params))
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
            if node.function and isinstance(result, (int, float)) and not isinstance(result, bool):
                result = torch.tensor(result)  # torch.sub(1, 1) is tensor(0); 1 - 1 is 0
        except GradexplainError:
            raise
        except ZeroDivisionError as e:
            result = e
        except TypeError as e:  # a formula's 0-d constant (zeros_like(a) → 0) where torch wants a tensor: index_add
            # (the user's own program gets torch's answer: gaussian_nll_loss refuses an int var)
            if self.as_torch or not any(isinstance(a, (int, float)) for a in args):
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
        """``in EXPR (shapes): <what torch or the op said>``; torch's own words stay as torch wrote them."""
        text = node.src or to_text(node)
        shapes = [describe(a) for a in args if isinstance(a, torch.Tensor)]
        detail = first_line(e)
        if not isinstance(detail, Msg):
            detail = detail.replace("thesame", "the same")
        where = Msg("in {expr} ({shapes})", expr=text, shapes=joined(shapes, AND)) if shapes else \
            Msg("in {expr}", expr=text)
        if "leaf Variable that requires grad" in detail:
            detail = Msg("{reason} — an input that requires grad is a leaf: backward() needs the value it had when "
                         "it was used, and its .grad belongs to that value, so PyTorch refuses to change it in "
                         "place. Change a copy instead (y = x*1; y += 1), or pass --const for an input that needs "
                         "no gradient", reason=detail)
        return Msg("{where}: {detail}", where=where, detail=detail)

    def _check_size(self, node: Call, numel: int, shape: Any) -> None:
        if numel > self.limits.max_elements:
            raise LimitError(Msg("{expr} would make a tensor of {numel:,} elements (shape {shape}), over the limit "
                                 "of {limit:,} (raise it with --max-elements)", expr=node.src or to_text(node),
                                 numel=numel, shape=list(shape), limit=self.limits.max_elements))

    def _check(self, node: Call, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            self._check_size(node, value.numel(), value.shape)
            if value.dim() > MAX_DIMS:
                raise LimitError(Msg("{expr} would make a tensor of {dims} dims: torch supports at most {most} "
                                     "(most of its kernels refuse more)", expr=node.src or to_text(node),
                                     dims=value.dim(), most=MAX_DIMS))
        return value


STAND_IN_ABOVE = 2**20  # elements: a larger value in the shape pass is kept as a meta tensor (shape, no data)


def _stand_in(v: Any) -> Any:
    """A big tensor as the shape pass keeps it: on the meta device, shape and dtype without data."""
    if isinstance(v, torch.Tensor) and v.numel() > STAND_IN_ABOVE and v.device.type != "meta":
        return torch.empty(v.shape, dtype=v.dtype, device="meta")
    return v


class _ShapeEvaluator(Evaluator):
    """The shape pass: big values are meta stand-ins (what torch's shape functions compute on), so
    a program over 10^7-element tensors costs no memory here; an op that cannot run on meta (a
    data-dependent one, a check that reads values) is computed for real from the real inputs, once."""

    def __init__(self, real: dict[str, Any], limits: Limits):
        super().__init__({k: _stand_in(v) for k, v in real.items()}, limits)
        self.real = real
        self.bound: dict[str, Node] = {}  # let-bindings, in order (Shapes.bind)

    def _eval(self, node: Node) -> Any:
        if not (isinstance(node, Call) and any(_is_meta(self.memo.get(id(a))) for a in node.args)):
            try:
                return _stand_in(super()._eval(node))
            except LimitError:
                raise
            except GradexplainError:
                shape_only = self._on_meta(node)
                if shape_only is None:
                    raise
                return shape_only
        try:
            return _stand_in(super()._eval(node))
        except LimitError:
            raise
        except (GradexplainError, RuntimeError, NotImplementedError, TypeError, ValueError, AssertionError):
            return _stand_in(self._for_real(node))  # (torch's meta checks raise AssertionError)

    def _on_meta(self, node: Call) -> Any:
        """A value-dependent refusal (``inv`` of a singular matrix in a gradient formula) does not
        decide a shape: the op on meta stand-ins of its arguments, or None if it fails there too."""
        def meta(v: Any) -> Any:
            return torch.empty(v.shape, dtype=v.dtype, device="meta") if isinstance(v, torch.Tensor) else v

        try:
            result = self._apply(node, [meta(self.memo[id(a)]) for a in node.args])
        except Exception:  # noqa: BLE001 - a probe: torch's meta checks raise AssertionError too; the first error stands
            return None
        return result if _is_meta(result) else None

    def _for_real(self, node: Node) -> Any:
        """``node`` over the real inputs (and real let-bindings), in a throwaway evaluator."""
        in_place = any(isinstance(n, Call) and n.inplace for n in walk(node)) or \
            any(isinstance(n, Call) and n.inplace for b in self.bound.values() for n in walk(b))
        real = Evaluator({k: v.clone() if in_place and isinstance(v, torch.Tensor) else v
                          for k, v in self.real.items()}, self.limits)
        for name, bound in self.bound.items():
            real.inputs[name] = real(bound)
        return real(node)


def _is_meta(v: Any) -> bool:
    return isinstance(v, torch.Tensor) and v.device.type == "meta"


class Shapes:
    """Shape and dtype of any IR node over the given inputs.

    Found by evaluating (without autograd, memoised) on copies of the real inputs, except that a
    value of more than :data:`STAND_IN_ABOVE` elements is kept as a meta tensor: the meta device's
    first use imports ~1 s of torch internals, more than the arithmetic of small programs costs,
    but for big ones it is the difference between no memory and a copy of every intermediate.
    """

    def __init__(self, inputs: dict[str, torch.Tensor], limits: Limits = DEFAULT):
        copies = {k: (v.detach().clone() if isinstance(v, torch.Tensor) and v.numel() <= STAND_IN_ABOVE
                      else v.detach() if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}
        self.evaluator = _ShapeEvaluator(copies, limits)

    def value(self, node: Node) -> Any:
        """The node's value, or a meta stand-in (shape and dtype only) for a big one."""
        with torch.no_grad():
            return self.evaluator(node)

    def bind(self, name: str, node: Node) -> None:
        """Let ``Input(name)`` stand for ``node``'s value (a let-binding of a gradient program)."""
        self.evaluator.inputs[name] = self.value(node)
        self.evaluator.bound[name] = node

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


def use_counts(roots: list[Node]) -> dict[int, int]:
    """id(node) → how many times it will be read: once per consumer edge, and once more for each
    root (whose value the caller reads) — the ``uses`` of an :class:`Evaluator` that lets go of
    intermediates."""
    uses: dict[int, int] = {}
    nodes = list(walk(roots))
    for n in nodes:
        uses.setdefault(id(n), 0)
        for child in n.children():
            uses[id(child)] = uses.get(id(child), 0) + 1
    for r in roots:
        uses[id(r)] += 1
    return uses


def evaluate(node: Node, inputs: dict[str, torch.Tensor], limits: Limits = DEFAULT) -> torch.Tensor:
    """The value of a formula, no autograd, as a tensor."""
    # a formula can hold the program's own in-place nodes (x += 1): they must not change the caller's inputs
    in_place = any(isinstance(n, Call) and n.inplace for n in walk(node))
    uses = use_counts([node])  # each intermediate let go after its last use: a formula over 10^7 entries
    with torch.no_grad():       # holds a few tensors at a time, not one per subexpression
        v = Evaluator({k: (t.detach().clone() if in_place else t.detach()) if isinstance(t, torch.Tensor) else t
                       for k, t in inputs.items()}, limits, uses=uses)(node)
    return v if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=torch.get_default_dtype())
