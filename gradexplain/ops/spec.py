"""What an entry of the op registry holds (:class:`OpSpec`), and the registry itself.

Imports nothing above :mod:`gradexplain.ir`: SymPy is reached lazily through :meth:`OpSpec.scalar`
(only the symbolic engine calls it), so listing or parsing ops never imports SymPy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Union

import torch

from ..i18n import Msg
from ..ir import resolve_slots

REQUIRED = object()  # marks a static parameter without a default

Shape = tuple[int, ...]


@dataclass
class RuleContext:
    """What a rule may look at: static params, shapes and dtypes of args and output."""

    params: dict[str, Any]
    shapes: dict[str, Shape]
    dtypes: dict[str, Any]
    out_shape: Shape
    nodes: dict[str, Any] = field(default_factory=dict)  # IR nodes of g, out and the args

    def ndim(self, name: str) -> int:
        return len(self.shapes[name])

    def reduced_dims(self, name: str = "a") -> list[int] | None:
        """Normalised ``dim`` param of a reduction (None = all dims)."""
        dim = self.params.get("dim")
        if dim is None or dim == ():  # torch reads an empty dim tuple as every dim (x.sum(()))
            return None
        nd = max(self.ndim(name), 1)
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        return sorted(d % nd for d in dims)

    def unsqueeze(self, name: str = "a") -> str:
        """Text that puts reduced dims back: ``.unsqueeze(1)`` unless keepdim / full reduction."""
        dims = self.reduced_dims(name)
        if dims is None or self.params.get("keepdim") or self.ndim(name) == 0 or not self.out_shape:
            return ""  # nothing to put back: g already broadcasts against the argument
        return "".join(f".unsqueeze({d})" for d in dims)

    def count(self, name: str = "a") -> int:
        dims = self.reduced_dims(name)
        shape = self.shapes[name]
        if dims is None or not shape:  # a 0-d tensor reduced along dim 0 or -1 (as torch allows) counts 1
            return math.prod(shape)
        return math.prod(shape[d] for d in dims)


# A VJP rule: EXPR text over the argument names, ``out`` and ``g``; or, where it depends on shapes or
# params, a function of the RuleContext returning that text (or an IR node, for index keys).
RuleFn = Callable[[RuleContext], Any]


@dataclass(frozen=True)
class Sample:
    """One test input of an op (PyTorch's OpInfo sample inputs), checked torch vs symbolic vs gradcheck.

    ``expr`` uses the op; ``ref`` is the same computation in plain torch, taking the inputs in the
    order of ``inputs`` (the expected values come from it, never from gradexplain); ``inputs`` maps
    each name to ``(shape, domain)`` (domains: ``any`` [-2, 2], ``pos`` [0.5, 2], ``nz`` |v| >= 0.2,
    ``prob`` (0, 1), ``small`` [-1, 1]); ``const`` names inputs that do not require grad.
    """

    expr: str
    ref: Callable[..., Any]
    inputs: dict[str, tuple[Shape, str]]
    const: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValueSample:
    """A forward-only sample for an op without a gradient: CLI arguments of ``eval`` and the output
    value, computed by hand or by plain torch (``expected`` may be a function, called in the test).
    ``value_ops`` are ops that occur only inside NAME=VALUE texts (``x=rand(2, 3)``)."""

    args: tuple[str, ...]
    expected: Any
    value_ops: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kink:
    """A point where the op is not differentiable, and the gradient torch uses there.

    ``at`` gives input values (NAME -> EXPR value text) for the op's sample number ``sample``; the
    test checks that torch, the symbolic formula and plain torch agree there.  ``note`` says the
    convention."""

    note: str
    at: dict[str, str] = field(default_factory=dict)
    sample: int = 0


def In(*shape: int, domain: str = "any") -> tuple[Shape, str]:
    """An input of a sample: its shape and value domain."""
    return shape, domain


def sample(expr: str, ref: Callable[..., Any], const: tuple[str, ...] = (), **inputs: tuple[Shape, str]) -> Sample:
    return Sample(expr, ref, inputs, const)


@dataclass(frozen=True)
class Linear:
    """How an op is linear, for second derivatives (JAX's ``deflinear``).

    :class:`gradexplain.hessian.LinearMap` reads off the matrix ``K`` of a formula that is linear in
    a direction ``v``: each node's ``K`` has the direction's dims in front of the node's own.  An op
    that is linear in ``args`` maps the ``K`` of those args to its own ``K`` by being applied to them
    with that leading batch of dims (``batch`` says how):

    - ``"elementwise"``: broadcasting does it (each ``K`` reshaped to lead + 1s + shape);
    - ``"dims"``: the op itself, with its dim-valued params ``dims`` shifted past the lead (``None``
      = every dim of the argument);
    - ``"reshape"``: the op only reshapes: ``K.reshape(lead + out.shape)``;
    - ``"key"``: an index key, with full slices for the lead dims in front;
    - ``"broadcast"``: the op only broadcasts: ``K`` broadcast to lead + out.shape;
    - a function ``(node, ks, lead, shape) -> Node`` for anything else (``matmul``'s 1-D promotion);
    - ``None``: linear, but no batched form: the Hessian is written per element.

    ``dims_of``: whether the ``dims`` count the argument's dims (``sum``) or the output's (``stack``).

    ``joint``: linear in all of ``args`` together (``add``: K_a + K_b; an argument that does not depend
    on ``v`` counts as zero).  Otherwise linear in each one with the others fixed (``mul``,
    ``matmul``): only one of them may depend on ``v``.  ``args="*"``: every argument (``stack``).
    """

    args: tuple[str, ...] | str
    joint: bool = False
    batch: Union[str, Callable[..., Any], None] = "elementwise"
    dims: tuple[str, ...] = ()
    dims_of: str = "arg"

    def __post_init__(self) -> None:
        if isinstance(self.args, str) and self.args != "*":  # "a, b" as op() writes tensor args
            object.__setattr__(self, "args", tuple(a.strip() for a in self.args.split(",") if a.strip()))

    def covers(self, arg: str) -> bool:
        return self.args == "*" or arg in self.args


@dataclass(frozen=True)
class Outputs:
    """An op that returns several tensors (torch's tuples and named tuples: ``max(x, dim)``, ``split``).

    The IR has no tuple values, so each output is a single-output op over the same torch call
    (``max_values`` runs ``torch.max(a, dim).values``, whose ``grad_fn`` is ``MaxBackward0``), and the
    parser maps ``.values``, ``[0]`` and ``v, i = ...`` onto them.  Either ``ops`` names the op of each
    position (``names`` their named-tuple fields), or ``each`` is one op for every position, told which
    by its ``index`` param: its number of outputs may depend on shapes (``split``, ``chunk``).  ``when``
    (params, number of tensor args) says whether a call returns several at all (``max(x)`` does not).
    The per-output ops name their owner in ``output_of``, so a formula prints ``max(a, 1).indices``.
    """

    ops: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    each: str | None = None
    when: Callable[[dict[str, Any], int], bool] | None = None

    def applies(self, params: dict[str, Any], nargs: int) -> bool:
        return self.when is None or self.when(params, nargs)

    @property
    def count(self) -> int | None:
        """The number of outputs, None when shapes decide it."""
        return len(self.ops) if self.ops else None

    def part(self, i: int) -> tuple[str, dict[str, Any]]:
        """The op of output ``i`` and the params it adds to the owner's."""
        return (self.ops[i], {}) if self.ops else (str(self.each), {"index": i})


NONLINEAR = Linear(())  # declared: linear in no argument (exp, softmax): no closed-form second-order map


@dataclass
class OpSpec:
    """Everything about one op.  See the package docstring for how to write one."""

    name: str
    tensor_args: tuple[str, ...]
    params: tuple[tuple[str, Any], ...] = ()
    torch: Callable[..., Any] | None = None
    rules: dict[str, Any] = field(default_factory=dict)  # arg -> EXPR text or RuleFn
    doc: str = ""
    shown: dict[str, str] = field(default_factory=dict)  # rule text `gradexplain ops` prints for a RuleFn
    elementwise: bool = False  # broadcasting, elementwise: SymPy may treat it as a scalar function
    # SymPy scalar function (elementwise ops): the name of a function in gradexplain.symfuncs (or, with a
    # ``sympy.`` prefix, in sympy), or a function of SymPy scalars.
    sym: Union[str, Callable[..., Any], None] = None
    sym_also: tuple[str, ...] = ()  # other SymPy functions that read back as this op ("sympy.sign")
    obj: Callable[..., Any] | None = None  # implementation over numpy object arrays of SymPy scalars
    method: bool = False  # printed as a method (``x.sum()``); every op with a tensor argument is callable as one
    varargs_param: str | None = None  # printed/parsed as ``zeros(2, 3)`` rather than ``zeros((2, 3))``
    variadic: bool = False  # first argument is a list of tensors (stack, cat)
    variadic_rule: Callable[[int], RuleFn] | None = None  # the rule for list element i (variadic ops)
    optional_args: tuple[str, ...] = ()  # tensor args that may be left out (``linear``'s bias)
    positional_params: tuple[str, ...] = ()
    hidden_params: tuple[str, ...] = ()
    always_printed: tuple[str, ...] = ()  # params printed even at their default value
    constructor: bool = False  # builds a constant tensor from params alone
    user: bool = True  # callable from EXPR by name (internal ops are not)
    size_valued: bool = False  # gives a Python int from shapes (x.size(0), len(x)): usable as a static param
    printable: bool = True  # has an EXPR spelling (index_grad has none: formulas using it go per element)
    infix: str | None = None  # printed as ``a + b``
    fill: int | None = None  # a constant of its argument's shape filled with this (ones_like: 1)
    # Output shape from argument shapes and params, for ops that can make a tensor larger than their
    # inputs (broadcasting, outer products, constructors): checked against --max-elements before running.
    predict: Callable[[list[Shape], dict[str, Any]], Shape] | None = None
    linear: Linear | None = None  # second-order declaration (elementwise ops: checked against SymPy)
    outputs: Outputs | None = None  # returns several tensors: how the parser maps them onto single-output ops
    output_of: str | None = None  # this op is one output of that op (printed as ``max(a, 1).indices``)
    string_values: tuple[str, ...] = ()  # strings its p/ord/approximate param accepts ('fro', 'nuc', 'tanh')
    # tensor args that may be left out before one given later, filled with this constant (clamp's min: -inf)
    fill_missing: dict[str, float] = field(default_factory=dict)
    # torch's positional order where params sit between tensor args (scatter_add(input, dim, index, src))
    call_order: tuple[str, ...] = ()
    kinks: tuple[Kink, ...] = ()  # non-differentiable points and torch's convention there
    samples: tuple[Sample, ...] = ()
    value_samples: tuple[ValueSample, ...] = ()
    reductions: tuple[str, ...] = ("mean", "sum", "none")  # the reduction= values a loss accepts
    # tensor args torch also takes as a Python number (``2 * x``, ``torch.pow(2, x)``, ``clamp(x, max=n)``;
    # "*": every one): elsewhere a number read off a tensor (``exp(x.numel())``) is refused, as torch does
    number_args: tuple[str, ...] | str = ()

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.params)

    @property
    def param_defaults(self) -> dict[str, Any]:
        return {n: d for n, d in self.params if d is not REQUIRED}

    def rule_text(self, arg: str, ctx: RuleContext | None) -> Any:
        rule = self.rules.get(arg)
        if rule is None:
            return None
        if isinstance(rule, str):
            return rule
        return rule(ctx) if ctx is not None else self.shown.get(arg)

    def shown_rule(self, arg: str) -> str | None:
        if arg in self.shown:
            return self.shown[arg]
        rule = self.rules.get(arg)
        return rule if isinstance(rule, str) else None

    def scalar(self, *args: Any, **params: Any) -> Any:
        """The op on SymPy scalars (elementwise ops only); static params (``beta``) as keywords."""
        fn = sympy_function(self.sym) if isinstance(self.sym, str) else self.sym
        assert fn is not None, f"{self.name} has no SymPy scalar function"
        return fn(*args, **params)


def sympy_function(name: str) -> Callable[..., Any]:
    """A SymPy function by name: gradexplain.symfuncs's (PyTorch conventions) or, ``sympy.NAME``, SymPy's."""
    if name.startswith("sympy."):
        import sympy  # heavy

        return getattr(sympy, name.removeprefix("sympy."))
    from .. import symfuncs  # heavy: imports SymPy

    return getattr(symfuncs, name)


REGISTRY: dict[str, OpSpec] = {}
ALIASES = {"clip": "clamp", "vector_norm": "norm", "true_divide": "div", "multiply": "mul", "subtract": "sub",
           "divide": "div", "negative": "neg", "absolute": "abs", "concat": "cat", "concatenate": "cat",
           "swapaxes": "transpose", "swapdims": "transpose"}


def op(name: str, tensor_args: str, params: str = "", **kw: Any) -> OpSpec:
    """Register an op.  ``params`` is ``"dim=None, keepdim=False"``-style (literal defaults)."""
    parsed: list[tuple[str, Any]] = []
    for part in filter(None, (p.strip() for p in params.split(","))):
        pname, _, default = part.partition("=")
        parsed.append((pname.strip(), REQUIRED if not default else _literal(default.strip())))
    spec = OpSpec(name=name, tensor_args=tuple(a.strip() for a in tensor_args.split(",") if a.strip()),
                  params=tuple(parsed), **kw)
    if spec.elementwise and spec.predict is None:
        spec.predict = broadcast_predict
    if spec.infix not in (None, "@"):
        spec.number_args = "*"  # a Python operator takes a number on either side (2 * x, n > 0)
    if isinstance(spec.number_args, str) and spec.number_args != "*":  # "min, max" as op() writes tensor args
        spec.number_args = tuple(a.strip() for a in spec.number_args.split(",") if a.strip())
    spec.torch, spec.obj = with_slots(spec.torch), with_slots(spec.obj)
    assert name not in REGISTRY, f"op {name} registered twice"
    REGISTRY[name] = spec
    return spec


def with_slots(fn: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """An implementation that accepts computed params (:class:`~gradexplain.ir.Slot`): sizes and index
    tensors are filled in from the trailing arguments before ``fn`` runs."""
    if fn is None:
        return None

    def call(*args: Any, **params: Any) -> Any:
        own, filled = resolve_slots(args, params)
        return fn(*own, **filled)

    call.__wrapped__ = fn  # type: ignore[attr-defined]
    return call


def _literal(text: str) -> Any:
    named = {"None": None, "True": True, "False": False}
    if text in named:
        return named[text]
    if text.startswith("'"):
        return text.strip("'")
    return float(text) if any(c in text for c in ".e") else int(text)


def resolve(name: str) -> OpSpec | None:
    spec = REGISTRY.get(ALIASES.get(name, name))
    return spec if spec is not None and spec.user else None


# ------------------------------------------------------------------------------ helpers for entries


def as_tensor(v: Any) -> torch.Tensor:
    """Python numbers become 0-d tensors of the default dtype (torch functions want tensors)."""
    return v if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=torch.get_default_dtype())


def obj_np() -> Any:
    import numpy as np  # heavy

    return np


def ufunc(fn: Callable[..., Any], nargs: int) -> Callable[..., Any]:
    """Lift a SymPy scalar function to numpy object arrays, with broadcasting."""

    def apply(*args: Any) -> Any:
        return obj_np().frompyfunc(fn, nargs, 1)(*args)

    return apply


def lazy_sym(name: str) -> Callable[..., Any]:
    """:func:`sympy_function` resolved at call time (for ``obj`` implementations)."""

    def call(*args: Any) -> Any:
        return sympy_function(name)(*args)

    call.__name__ = name
    return call


def broadcast_shape(*shapes: Shape) -> Shape:
    """NumPy/PyTorch broadcasting of shapes (torch.broadcast_shapes imports ~0.3 s of torch.fx)."""
    ndim = max((len(s) for s in shapes), default=0)
    out: list[int] = []
    for i in range(ndim):
        sizes = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0} - {1}
        if len(sizes) > 1:
            raise ValueError(Msg("shapes {shapes} do not broadcast", shapes=", ".join(str(list(s)) for s in shapes)))
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def broadcast_predict(shapes: list[Shape], params: dict[str, Any]) -> Shape:
    return broadcast_shape(*shapes)
