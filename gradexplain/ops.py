"""The op registry: every operation gradexplain knows, in one place.

Modelled on PyTorch's ``tools/autograd/derivatives.yaml``: each op names its tensor
arguments and static parameters, its torch implementation, and per differentiable argument a
vector-Jacobian rule written *in our own EXPR language* over the argument names, the op's
output ``out`` and the incoming gradient ``g`` (``mul``: ``a: g*b``).  The same rule text is
instantiated by the symbolic engine, printed at each graph node and listed by
``gradexplain ops``.  Elementwise functions carry a SymPy scalar function instead; their rule
is ``g * f'(a)`` with ``f'`` from ``sympy.diff`` (see :func:`elementwise_rule`).

A rule may need the argument shapes (``mean`` divides by the count it reduced over, ``matmul``
follows torch's 1-D promotion), so it is either text or a function of a :class:`RuleContext`
returning text; ``shown`` is then the text ``gradexplain ops`` prints.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

REQUIRED = object()  # marks a static parameter without a default


@dataclass
class RuleContext:
    """What a rule may look at: static params, shapes and dtypes of args and output."""

    params: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, Any]
    out_shape: tuple[int, ...]
    nodes: dict[str, Any] = field(default_factory=dict)  # IR nodes of g, out and the args

    def ndim(self, name: str) -> int:
        return len(self.shapes[name])

    def reduced_dims(self, name: str = "a") -> list[int] | None:
        """Normalised ``dim`` param of a reduction (None = all dims)."""
        dim = self.params.get("dim")
        if dim is None:
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
        return math.prod(shape) if dims is None else math.prod(shape[d] for d in dims)


Rule = "str | Callable[[RuleContext], str | None]"


@dataclass
class OpSpec:
    name: str
    tensor_args: tuple[str, ...]
    params: tuple[tuple[str, Any], ...] = ()
    torch: Callable[..., Any] | None = None
    rules: dict[str, Any] = field(default_factory=dict)
    doc: str = ""
    shown: dict[str, str] = field(default_factory=dict)
    elementwise: bool = False  # broadcasting, elementwise: SymPy may treat it as a scalar function
    sym: Callable[..., Any] | None = None  # SymPy scalar function (elementwise ops)
    obj: Callable[..., Any] | None = None  # implementation over numpy object arrays of SymPy scalars
    method: bool = False  # printed as a method (``x.sum()``); every op with a tensor argument is callable as one
    varargs_param: str | None = None  # printed/parsed as ``zeros(2, 3)`` rather than ``zeros((2, 3))``
    variadic: bool = False  # first argument is a list of tensors (stack, cat)
    optional_args: tuple[str, ...] = ()  # tensor args that may be left out (``linear``'s bias)
    positional_params: tuple[str, ...] = ()
    hidden_params: tuple[str, ...] = ()
    always_printed: tuple[str, ...] = ()  # params printed even at their default value
    constructor: bool = False  # builds a constant tensor from params alone
    user: bool = True  # callable from EXPR by name (internal ops are not)
    # Output shape from argument shapes and params, for ops that can make a tensor larger than their
    # inputs (broadcasting, outer products, constructors): checked against --max-elements before running.
    predict: Callable[[list[tuple[int, ...]], dict[str, Any]], tuple[int, ...]] | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.params)

    @property
    def param_defaults(self) -> dict[str, Any]:
        return {n: d for n, d in self.params if d is not REQUIRED}

    def rule_text(self, arg: str, ctx: RuleContext | None) -> str | None:
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
        if isinstance(rule, str):
            return rule
        if self.elementwise and self.sym is not None and len(self.tensor_args) == 1:  # where's cond: no rule
            return elementwise_rule(self.name, arg)
        return None


REGISTRY: dict[str, OpSpec] = {}
ALIASES = {"maximum": "max", "minimum": "min", "true_divide": "div", "multiply": "mul", "subtract": "sub",
           "divide": "div", "negative": "neg", "absolute": "abs", "concat": "cat", "concatenate": "cat"}


def op(name: str, tensor_args: str, params: str = "", **kw: Any) -> OpSpec:
    """Register an op.  ``params`` is ``"dim=None, keepdim=False"``-style (literal defaults)."""
    parsed: list[tuple[str, Any]] = []
    for part in filter(None, (p.strip() for p in params.split(","))):
        pname, _, default = part.partition("=")
        parsed.append((pname.strip(), REQUIRED if not default else _literal(default.strip())))
    spec = OpSpec(name=name, tensor_args=tuple(a.strip() for a in tensor_args.split(",") if a.strip()),
                  params=tuple(parsed), **kw)
    REGISTRY[name] = spec
    return spec


def _literal(text: str) -> Any:
    named = {"None": None, "True": True, "False": False}
    if text in named:
        return named[text]
    if text.startswith("'"):
        return text.strip("'")
    return float(text) if any(c in text for c in ".e") else int(text)


# ------------------------------------------------------------------------------ helpers


def as_tensor(v: Any) -> torch.Tensor:
    """Python numbers become 0-d tensors of the default dtype (torch functions want tensors)."""
    return v if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=torch.get_default_dtype())


def _obj_np():
    import numpy as np

    return np


def _ufunc(fn: Callable[..., Any], nargs: int) -> Callable[..., Any]:
    """Lift a SymPy scalar function to numpy object arrays, with broadcasting."""

    def apply(*args: Any) -> Any:
        np = _obj_np()
        return np.frompyfunc(fn, nargs, 1)(*args)

    return apply


def _sym(name: str) -> Callable[..., Any]:
    """A SymPy function by name, resolved lazily so importing ops does not import SymPy."""

    def call(*args: Any) -> Any:
        from . import symfuncs

        return getattr(symfuncs, name)(*args)

    call.__name__ = name
    return call


def elementwise_rule(name: str, arg: str = "a") -> str:
    from .symbolic import derived_rule

    return derived_rule(name)


# ------------------------------------------------------------------ elementwise arithmetic

_BINARY_SYM = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
               "pow": operator.pow}
op("add", "a, b", torch=operator.add, rules={"a": "g", "b": "g"}, elementwise=True, sym=operator.add,
   doc="a + b (broadcasting)")
op("sub", "a, b", torch=operator.sub, rules={"a": "g", "b": "-g"}, elementwise=True, sym=operator.sub,
   doc="a - b (broadcasting)")
op("mul", "a, b", torch=operator.mul, rules={"a": "g*b", "b": "g*a"}, elementwise=True, sym=operator.mul,
   doc="a * b elementwise (broadcasting)")
op("div", "a, b", torch=operator.truediv, rules={"a": "g/b", "b": "-g*a/b**2"}, elementwise=True,
   sym=operator.truediv, doc="a / b elementwise (broadcasting)")
op("pow", "a, b", torch=operator.pow, rules={"a": "g*b*a**(b - 1)", "b": "g*a**b*log(a)"}, elementwise=True,
   sym=operator.pow, doc="a ** b elementwise; also a.pow(b)")
op("neg", "a", torch=operator.neg, rules={"a": "-g"}, elementwise=True, sym=operator.neg, doc="-a")

for _name, _doc in [("exp", "e**a"), ("log", "natural logarithm"), ("sqrt", "square root"),
                    ("abs", "|a| (PyTorch: gradient 0 at 0)"), ("sin", "sine"), ("cos", "cosine"),
                    ("tan", "tangent"), ("tanh", "hyperbolic tangent"), ("sigmoid", "1/(1 + exp(-a))"),
                    ("relu", "max(a, 0) (PyTorch: gradient 0 at 0)"), ("sign", "-1, 0 or 1 (gradient 0)")]:
    op(_name, "a", torch=lambda a, fn=getattr(torch, _name): fn(as_tensor(a)), elementwise=True,  # log(2) in formulas
       sym=_sym(_name), doc=_doc)
REGISTRY["sign"].rules = {}
def _heaviside_torch(a: Any, values: Any) -> torch.Tensor:
    """torch.heaviside has no backward, yet gradient formulas (``relu(x).sum()`` → ``heaviside(x, 0)``) must
    read back through eval: the same step built from ``where``, slope 0 in ``a`` and 1 in ``values`` at a == 0."""
    a, values = as_tensor(a), as_tensor(values)
    return torch.where(a == 0, values, torch.sign(a).clamp(min=0))  # sign keeps a's graph (slope 0), as sign(x) does


op("heaviside", "a, values", torch=_heaviside_torch, elementwise=True, sym=_sym("heaviside"),
   rules={"values": "where(a >= 0, where(a <= 0, g, 0), 0)"},
   doc="step function: 0 below 0, `values` at 0, 1 above (gradient 0 in a)")


def _compare(fn: Callable[[Any, Any], Any], sym_name: str, text: str) -> None:
    op(sym_name, "a, b", torch=fn, sym=_sym(sym_name), obj=_ufunc(_sym(sym_name), 2), user=False,
       doc=f"a {text} b (only as the condition of where)")


_compare(operator.gt, "gt", ">")
_compare(operator.ge, "ge", ">=")
_compare(operator.lt, "lt", "<")
_compare(operator.le, "le", "<=")

op("where", "cond, a, b", torch=lambda c, a, b: torch.where(c, as_tensor(a), as_tensor(b)),
   rules={"a": "where(cond, g, 0)", "b": "where(cond, 0, g)"}, elementwise=True, sym=_sym("where"),
   doc="a where cond holds, else b (cond is a comparison)")

# ------------------------------------------------------------------------------ reductions


def _sum_torch(a: Any, dim: Any = None, keepdim: bool = False) -> torch.Tensor:
    a = as_tensor(a)
    return a.sum() if dim is None else a.sum(dim=dim, keepdim=keepdim)


def _mean_torch(a: Any, dim: Any = None, keepdim: bool = False) -> torch.Tensor:
    a = as_tensor(a)
    return a.mean() if dim is None else a.mean(dim=dim, keepdim=keepdim)


def _obj_reduce(fn_name: str) -> Callable[..., Any]:
    def apply(a: Any, dim: Any = None, keepdim: bool = False) -> Any:
        np = _obj_np()
        a = np.asarray(a, dtype=object)
        axis = tuple(dim) if isinstance(dim, (list, tuple)) else dim
        if fn_name == "sum":
            return np.sum(a, axis=axis, keepdims=keepdim)
        count = a.size if axis is None else math.prod(a.shape[d] for d in np.atleast_1d(axis))
        return np.sum(a, axis=axis, keepdims=keepdim) / count

    return apply


op("sum", "a", "dim=None, keepdim=False", torch=_sum_torch, method=True, positional_params=("dim",),
   rules={"a": lambda c: f"g{c.unsqueeze()}*ones_like(a)"}, shown={"a": "g*ones_like(a)  (g unsqueezed along dim)"},
   obj=_obj_reduce("sum"), doc="sum of elements (over dim)")
op("mean", "a", "dim=None, keepdim=False", torch=_mean_torch, method=True, positional_params=("dim",),
   rules={"a": lambda c: f"g{c.unsqueeze()}*ones_like(a)/{c.count()}"},
   shown={"a": "g*ones_like(a)/numel(a)  (numel over dim)"}, obj=_obj_reduce("mean"), doc="mean of elements (over dim)")


def _extreme_torch(which: str) -> Callable[..., Any]:
    full = torch.amax if which == "max" else torch.amin
    pair = torch.maximum if which == "max" else torch.minimum

    def apply(a: Any, b: Any = None, dim: Any = None, keepdim: bool = False) -> torch.Tensor:
        if b is not None:
            return pair(as_tensor(a), as_tensor(b))
        a = as_tensor(a)
        if dim is None:
            return a.max() if which == "max" else a.min()
        return full(a, dim=dim, keepdim=keepdim)

    return apply


def _extreme_rule(which: str, arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        if "b" in c.shapes:  # elementwise maximum(a, b): ties split evenly, as PyTorch does
            first, second = ("a", "b") if arg == "a" else ("b", "a")
            sign = "" if which == "max" else "-"
            return f"g*heaviside({sign}({first} - {second}), 1/2)"
        # The mask compares a with out directly: a difference a - out would be re-associated by
        # SymPy and come out as -1e-16 instead of 0 at the maximum.
        u = c.unsqueeze()
        mask = f"where(a {'>=' if which == 'max' else '<='} out{u}, 1, 0)"
        dims = c.reduced_dims()
        count = f"{mask}.sum()" if dims is None else \
            f"{mask}.sum({dims[0] if len(dims) == 1 else tuple(dims)}, keepdim=True)"
        return f"g{u}*{mask}/{count}"

    return rule


def _obj_extreme(which: str) -> Callable[..., Any]:
    def apply(a: Any, b: Any = None, dim: Any = None, keepdim: bool = False) -> Any:
        import sympy

        np = _obj_np()
        fn = sympy.Max if which == "max" else sympy.Min
        if b is not None:
            return _ufunc(fn, 2)(a, b)
        a = np.asarray(a, dtype=object)
        if dim is None:
            return np.asarray(fn(*a.ravel().tolist()), dtype=object)
        return np.apply_along_axis(lambda v: fn(*v), dim, a) if not keepdim else \
            np.expand_dims(np.apply_along_axis(lambda v: fn(*v), dim, a), dim)

    return apply


for _which in ("max", "min"):
    op(_which, "a, b", "dim=None, keepdim=False", torch=_extreme_torch(_which), method=True,
       optional_args=("b",), positional_params=("dim",),
       rules={"a": _extreme_rule(_which, "a"), "b": _extreme_rule(_which, "b")},
       shown={"a": f"g*where(a {'>=' if _which == 'max' else '<='} out, 1, 0)/count  (ties share g)"},
       obj=_obj_extreme(_which),
       doc=f"{_which}imum: of all elements, along dim (values only), or elementwise {_which}(a, b)")


def _norm_rule(c: RuleContext) -> str:
    p = c.params.get("p", 2)
    u = c.unsqueeze()
    if p == 0:  # counts the nonzero entries: a step function, gradient 0 (as PyTorch)
        return "zeros_like(a)"
    if p == 2:
        return f"g{u}*a/out{u}"
    if p == 1:
        return f"g{u}*sign(a)"
    return f"g{u}*sign(a)*abs(a)**({p} - 1)/out{u}**({p} - 1)"


def _obj_norm(a: Any, p: Any = 2, dim: Any = None, keepdim: bool = False) -> Any:
    import sympy

    s = _obj_reduce("sum")(_ufunc(lambda v: sympy.Abs(v) ** p, 1)(a), dim, keepdim)
    return _ufunc(lambda v: v ** (sympy.S.One / p), 1)(s)


op("norm", "a", "p=2, dim=None, keepdim=False", torch=lambda a, p=2, dim=None, keepdim=False:
   torch.linalg.vector_norm(as_tensor(a), ord=p, dim=dim, keepdim=keepdim),
   rules={"a": _norm_rule}, shown={"a": "g*a/out  (p = 2)"}, obj=_obj_norm, doc="vector p-norm (default 2)")


def _logsumexp_obj(a: Any, dim: Any, keepdim: bool = False) -> Any:
    import sympy

    np = _obj_np()
    s = _obj_reduce("sum")(_ufunc(sympy.exp, 1)(a), dim, keepdim)
    return np.asarray(_ufunc(sympy.log, 1)(s), dtype=object)


op("logsumexp", "a", "dim, keepdim=False", torch=lambda a, dim, keepdim=False: torch.logsumexp(as_tensor(a), dim, keepdim),
   method=True, positional_params=("dim",), rules={"a": lambda c: f"g{c.unsqueeze()}*exp(a - out{c.unsqueeze()})"},
   shown={"a": "g*exp(a - out)"}, obj=_logsumexp_obj, doc="log(sum(exp(a))) along dim, computed stably")

op("numel", "a", torch=lambda a: as_tensor(a).numel(), method=True, obj=lambda a: _obj_np().asarray(a).size,
   doc="number of elements (a constant)")


def _trace_obj(a: Any) -> Any:
    np = _obj_np()
    return np.asarray(np.trace(np.asarray(a, dtype=object)), dtype=object)


op("trace", "a", torch=torch.trace, rules={"a": lambda c: f"g*eye({c.shapes['a'][0]}, {c.shapes['a'][1]})"},
   shown={"a": "g*eye(n, m)"}, obj=_trace_obj, doc="sum of the diagonal of a matrix")

# ------------------------------------------------------------------------ linear algebra


def _matmul_rule(arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        na, nb = c.ndim("a"), c.ndim("b")
        table = {(1, 1): ("g*b", "g*a"), (2, 1): ("outer(g, b)", "a.T @ g"),
                 (1, 2): ("b @ g", "outer(a, g)"), (2, 2): ("g @ b.T", "a.T @ g")}
        if (na, nb) in table:
            return table[(na, nb)][0 if arg == "a" else 1]
        if na >= 2 and nb >= 2:
            return "g @ b.transpose(-2, -1)" if arg == "a" else "a.transpose(-2, -1) @ g"
        raise NotImplementedError(f"symbolic matmul of {na}-D and {nb}-D tensors")

    return rule


def _obj_matmul(a: Any, b: Any) -> Any:
    np = _obj_np()
    return np.asarray(np.matmul(np.asarray(a, dtype=object), np.asarray(b, dtype=object)), dtype=object)


_MATMUL_SHOWN = {"a": "g @ b.T  (1-D: g*b, outer(g, b), b @ g)", "b": "a.T @ g  (1-D: g*a, outer(a, g))"}
op("matmul", "a, b", torch=operator.matmul, rules={"a": _matmul_rule("a"), "b": _matmul_rule("b")},
   shown=_MATMUL_SHOWN, obj=_obj_matmul, doc="a @ b with torch's 1-D promotion rules")
op("mm", "a, b", torch=torch.mm, rules={"a": "g @ b.T", "b": "a.T @ g"}, obj=_obj_matmul,
   doc="matrix @ matrix")
op("mv", "a, b", torch=torch.mv, rules={"a": "outer(g, b)", "b": "a.T @ g"}, obj=_obj_matmul,
   doc="matrix @ vector")
op("dot", "a, b", torch=torch.dot, rules={"a": "g*b", "b": "g*a"}, obj=_obj_matmul,
   doc="inner product of two vectors")
op("outer", "a, b", torch=torch.outer, rules={"a": "g @ b", "b": "g.T @ a"},
   obj=lambda a, b: _obj_np().multiply.outer(_obj_np().asarray(a, dtype=object), _obj_np().asarray(b, dtype=object)),
   doc="outer product a bᵀ of two vectors")


def _linear_rule(arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        if arg == "x":
            return "g @ W"
        if arg == "b":
            return "g"
        if c.ndim("x") == 1:
            return "outer(g, x)"
        if c.ndim("x") == 2:
            return "g.T @ x"
        raise NotImplementedError("symbolic linear with a batch of more than 2 dims")

    return rule


def _obj_linear(x: Any, W: Any, b: Any = None) -> Any:
    np = _obj_np()
    out = np.matmul(np.asarray(x, dtype=object), np.asarray(W, dtype=object).T)
    return np.asarray(out if b is None else out + b, dtype=object)


op("linear", "x, W, b", torch=lambda x, W, b=None: F.linear(x, W, b), optional_args=("b",),
   rules={"x": _linear_rule("x"), "W": _linear_rule("W"), "b": _linear_rule("b")},
   shown={"x": "g @ W", "W": "g.T @ x", "b": "g"}, obj=_obj_linear, doc="x @ W.T + b (a fully connected layer)")


def _t_torch(a: Any, attr: bool = True) -> torch.Tensor:
    a = as_tensor(a)
    return a if a.dim() < 2 else a.t()


op("t", "a", "attr=True", torch=_t_torch, rules={"a": lambda c: "g.T" if c.ndim("a") == 2 else "g"},
   shown={"a": "g.T"}, method=True, hidden_params=("attr",),
   obj=lambda a, attr=True: _obj_np().asarray(a, dtype=object).T, doc="transpose of a matrix (.T, .t())")
op("transpose", "a", "dim0, dim1", torch=lambda a, dim0, dim1: as_tensor(a).transpose(dim0, dim1), method=True,
   positional_params=("dim0", "dim1"), rules={"a": lambda c: f"g.transpose({c.params['dim0']}, {c.params['dim1']})"},
   shown={"a": "g.transpose(dim0, dim1)"}, obj=lambda a, dim0, dim1: _obj_np().swapaxes(_obj_np().asarray(a, dtype=object), dim0, dim1),
   doc="swap two dims")


def _shape_rule(c: RuleContext) -> str:
    return f"g.reshape({tuple(c.shapes['a'])})"


for _name in ("reshape", "view"):
    op(_name, "a", "shape", torch=(lambda name: lambda a, shape: getattr(as_tensor(a), name)(shape))(_name),
       method=True, positional_params=("shape",), varargs_param="shape", rules={"a": _shape_rule},
       shown={"a": "g.reshape(a.shape)"}, obj=lambda a, shape: _obj_np().reshape(_obj_np().asarray(a, dtype=object), shape),
       doc="same elements, another shape")
op("unsqueeze", "a", "dim", torch=lambda a, dim: as_tensor(a).unsqueeze(dim), method=True, positional_params=("dim",),
   rules={"a": lambda c: f"g.squeeze({c.params['dim']})"}, shown={"a": "g.squeeze(dim)"},
   obj=lambda a, dim: _obj_np().expand_dims(_obj_np().asarray(a, dtype=object), dim), doc="insert a dim of size 1")
op("squeeze", "a", "dim=None", torch=lambda a, dim=None: as_tensor(a).squeeze() if dim is None else as_tensor(a).squeeze(dim),
   method=True, positional_params=("dim",), rules={"a": _shape_rule}, shown={"a": "g.reshape(a.shape)"},
   obj=lambda a, dim=None: _obj_np().squeeze(_obj_np().asarray(a, dtype=object), axis=dim) if dim is None or _obj_np().asarray(a).shape[dim] == 1 else _obj_np().asarray(a, dtype=object),
   doc="drop dims of size 1")
op("expand_as", "a, other", torch=lambda a, other: as_tensor(a).expand_as(other), method=True, rules={"a": "g"},
   shown={"a": "g  (summed back over the expanded dims)"},
   obj=lambda a, other: _obj_np().broadcast_to(_obj_np().asarray(a, dtype=object), _obj_np().asarray(other).shape).copy(),
   doc="broadcast a to other's shape")


def _select_key(c: RuleContext, index: Any) -> str:
    dim = c.params.get("dim", 0) % max(len(c.out_shape), 1)
    return ", ".join([":"] * dim + [str(index)])


def _stack_rule(i: int) -> Callable[[RuleContext], str]:
    return lambda c: f"g[{_select_key(c, i)}]"


def _cat_rule(i: int) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        dim = c.params.get("dim", 0) % len(c.out_shape)
        start = sum(c.shapes[f"t{j}"][dim] for j in range(i))
        stop = start + c.shapes[f"t{i}"][dim]
        return f"g[{_select_key(c, f'{start}:{stop}')}]"

    return rule


def _obj_stack(*ts: Any, dim: int = 0) -> Any:
    np = _obj_np()
    return np.stack([np.asarray(t, dtype=object) for t in ts], axis=dim)


def _obj_cat(*ts: Any, dim: int = 0) -> Any:
    np = _obj_np()
    return np.concatenate([np.asarray(t, dtype=object) for t in ts], axis=dim)


def _torch_list(fn: Callable[..., Any]) -> Callable[..., Any]:
    return lambda *ts, dim=0: fn([as_tensor(t) for t in ts], dim=dim)


op("stack", "", "dim=0", torch=_torch_list(torch.stack), variadic=True, obj=_obj_stack,
   shown={"t_i": "g[..., i] along dim"}, doc="stack tensors along a new dim")
op("cat", "", "dim=0", torch=_torch_list(torch.cat), variadic=True, obj=_obj_cat,
   shown={"t_i": "g[..., start_i:end_i] along dim"}, doc="concatenate tensors along dim")


def variadic_rule(name: str, i: int) -> Callable[[RuleContext], str]:
    return _stack_rule(i) if name == "stack" else _cat_rule(i)


# ---------------------------------------------------------------------- indexing


def _index_torch(a: Any, key: tuple) -> torch.Tensor:
    from .ir import key_to_python

    return as_tensor(a)[key_to_python(key)]


def _index_put_torch(base: Any, value: Any, key: tuple, inplace: bool = False) -> torch.Tensor:
    """``base[key] = value``; in place when the program did it in place (CopySlices)."""
    from .ir import key_to_python

    target = base if inplace else as_tensor(base).clone()
    target[key_to_python(key)] = value
    return target


def _obj_index(a: Any, key: tuple) -> Any:
    from .ir import key_to_python

    return _obj_np().asarray(_obj_np().asarray(a, dtype=object)[key_to_python(key)], dtype=object)


def _obj_index_put(base: Any, value: Any, key: tuple) -> Any:
    from .ir import key_to_python

    np = _obj_np()
    out = np.array(base, dtype=object, copy=True)
    value = np.asarray(value, dtype=object)
    out[key_to_python(key)] = value[()] if value.ndim == 0 else value  # a 0-d array would be stored as one element
    return out


def _keyed(op_name: str, *names: str, **extra: Any) -> Callable[[RuleContext], Any]:
    """A rule that is an IR node, not text: index keys have no spelling as a parameter."""
    from .ir import Call, Const

    def rule(c: RuleContext) -> Any:
        args = tuple(Const(0) if n == "0" else c.nodes[n] for n in names)
        return Call(op_name, args, {"key": c.params["key"], **extra})

    return rule


op("index", "a", "key", torch=_index_torch, rules={"a": _keyed("index_grad", "g", "a")}, obj=_obj_index,
   user=False, shown={"a": "zeros_like(a) with g added at [key]"}, doc="a[key]: the selected elements")
op("index_put", "base, value", "key", torch=_index_put_torch, obj=_obj_index_put, user=False,
   rules={"base": _keyed("index_put", "g", "0"), "value": _keyed("index", "g")},
   shown={"base": "g with [key] set to 0", "value": "g[key]"}, doc="base[key] = value (CopySlices in PyTorch)")


def _index_grad_torch(g: Any, a: Any, key: tuple) -> torch.Tensor:
    from .ir import key_to_python

    out = torch.zeros_like(as_tensor(a))
    out[key_to_python(key)] += g
    return out


def _obj_index_grad(g: Any, a: Any, key: tuple) -> Any:
    from .ir import key_to_python

    np = _obj_np()
    out = np.zeros(np.asarray(a).shape, dtype=object)
    out[key_to_python(key)] += g
    return out


op("index_grad", "g, a", "key", torch=_index_grad_torch, obj=_obj_index_grad, user=False,
   doc="zeros shaped like a with g added at key (the gradient of a[key]; no EXPR spelling)")

# ---------------------------------------------------------------- softmax and losses


def _softmax_dim(c: RuleContext) -> int:
    dim = c.params.get("dim")
    if dim is None:
        return 0 if c.ndim("a") in (0, 1, 3) else 1
    return dim


def _obj_softmax(a: Any, dim: Any = None, log: bool = False) -> Any:
    import sympy

    np = _obj_np()
    a = np.asarray(a, dtype=object)
    d = dim if dim is not None else (0 if a.ndim in (0, 1, 3) else 1)
    e = _ufunc(sympy.exp, 1)(a)
    s = np.sum(e, axis=d, keepdims=True)
    return a - _ufunc(sympy.log, 1)(s) if log else e / s


def _softmax_torch(log: bool) -> Callable[..., Any]:
    fn = F.log_softmax if log else F.softmax

    def apply(a: Any, dim: Any = None) -> torch.Tensor:
        a = as_tensor(a)
        return fn(a, dim=dim if dim is not None else (0 if a.dim() in (0, 1, 3) else 1))

    return apply


op("softmax", "a", "dim=None", torch=_softmax_torch(False),
   rules={"a": lambda c: f"out*(g - (g*out).sum({_softmax_dim(c)}, keepdim=True))"},
   shown={"a": "out*(g - (g*out).sum(dim, keepdim=True))"}, obj=_obj_softmax,
   doc="exp(a)/sum(exp(a)) along dim")
op("log_softmax", "a", "dim=None", torch=_softmax_torch(True),
   rules={"a": lambda c: f"g - exp(out)*g.sum({_softmax_dim(c)}, keepdim=True)"},
   shown={"a": "g - exp(out)*g.sum(dim, keepdim=True)"}, obj=lambda a, dim=None: _obj_softmax(a, dim, log=True),
   doc="log(softmax(a)) along dim, computed stably")


def _loss_scale(c: RuleContext, arg_names: tuple[str, str]) -> str:
    """``/n`` for reduction='mean' (n = elements after broadcasting), else nothing."""
    if c.params.get("reduction", "mean") != "mean":
        return ""
    import math as _m

    shape = broadcast_shape(c.shapes[arg_names[0]], c.shapes[arg_names[1]])
    return f"/{_m.prod(shape)}"


def _loss_obj(elementwise: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def apply(a: Any, t: Any, reduction: str = "mean") -> Any:
        np = _obj_np()
        e = np.asarray(elementwise(np.asarray(a, dtype=object), np.asarray(t, dtype=object)), dtype=object)
        if reduction == "none":
            return e
        s = np.asarray(np.sum(e), dtype=object)
        return s / e.size if reduction == "mean" else s

    return apply


op("mse_loss", "a, t", "reduction='mean'", torch=lambda a, t, reduction="mean": F.mse_loss(*torch.broadcast_tensors(as_tensor(a), as_tensor(t)), reduction=reduction),
   rules={"a": lambda c: f"2*g*(a - t){_loss_scale(c, ('a', 't'))}", "t": lambda c: f"-2*g*(a - t){_loss_scale(c, ('a', 't'))}"},
   shown={"a": "2*g*(a - t)/numel(a)", "t": "-2*g*(a - t)/numel(a)"}, obj=_loss_obj(lambda a, t: (a - t) ** 2),
   doc="mean squared error (reduction='mean'|'sum'|'none')")


def _bce_elem(p: Any, t: Any) -> Any:
    return -(_ufunc(_sym("log"), 1)(p) * t + _ufunc(_sym("log"), 1)(1 - p) * (1 - t))


op("binary_cross_entropy", "p, t", "reduction='mean'",
   torch=lambda p, t, reduction="mean": F.binary_cross_entropy(p, t, reduction=reduction),
   rules={"p": lambda c: f"g*(p - t)/(p*(1 - p)){_loss_scale(c, ('p', 't'))}",
          "t": lambda c: f"g*(log(1 - p) - log(p)){_loss_scale(c, ('p', 't'))}"},
   shown={"p": "g*(p - t)/(p*(1 - p))/numel(p)", "t": "g*(log(1 - p) - log(p))/numel(p)"},
   obj=_loss_obj(_bce_elem), doc="-(t*log(p) + (1 - t)*log(1 - p)), p in (0, 1)")


def _ce_rule(arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        dim = 1 if c.ndim("z") >= 2 else 0
        red = c.params.get("reduction", "mean")
        n = c.shapes["z"][0] if dim == 1 else 1
        scale = f"/{n}" if red == "mean" and n != 1 else ""
        g = "g.unsqueeze(1)" if red == "none" and dim == 1 else "g"
        if arg == "z":
            if c.dtypes["target"].is_floating_point:
                return f"{g}*(softmax(z, {dim}) - target){scale}"
            return f"{g}*(softmax(z, {dim}) - one_hot(target, {c.shapes['z'][dim]})){scale}"
        return f"-{g}*log_softmax(z, {dim}){scale}"

    return rule


def _obj_ce(z: Any, target: Any, reduction: str = "mean") -> Any:
    np = _obj_np()
    z = np.asarray(z, dtype=object)
    target = np.asarray(target, dtype=object)
    dim = 1 if z.ndim >= 2 else 0
    logp = _obj_softmax(z, dim, log=True)
    if target.shape == z.shape:
        per = -np.sum(logp * target, axis=dim)
    elif dim == 1:
        per = np.array([-logp[i, int(target[i])] for i in range(z.shape[0])], dtype=object)
    else:
        per = np.asarray(-logp[int(target)], dtype=object)
    per = np.asarray(per, dtype=object)
    if reduction == "none":
        return per
    s = np.asarray(np.sum(per), dtype=object)
    return s / (per.size or 1) if reduction == "mean" else s


op("cross_entropy", "z, target", "reduction='mean'",
   torch=lambda z, target, reduction="mean": F.cross_entropy(z, target, reduction=reduction),
   rules={"z": _ce_rule("z"), "target": _ce_rule("target")},
   shown={"z": "g*(softmax(z, 1) - one_hot(target, C))/N", "target": "-g*log_softmax(z, 1)/N (probability targets)"},
   obj=_obj_ce, doc="softmax cross-entropy of logits z against class indices (or probabilities)")


def _one_hot_obj(t: Any, num_classes: int = -1) -> Any:
    np = _obj_np()
    t = np.asarray(t)
    n = num_classes if num_classes >= 0 else int(t.max()) + 1
    return np.asarray((np.arange(n) == t[..., None]).astype(int), dtype=object)


op("one_hot", "t", "num_classes=-1", torch=lambda t, num_classes=-1: F.one_hot(t, num_classes),
   positional_params=("num_classes",), obj=_one_hot_obj, doc="class indices → 0/1 rows (integer, no gradient)")


def _layer_norm_rule(arg: str) -> Callable[[RuleContext], str]:
    """Closed-form rules with xhat = (x - mean)/sqrt(var + eps) over the normalised (last) dims:
    x: (gw - mean(gw) - xhat*mean(gw*xhat))/sqrt(var + eps) with gw = g*weight; weight: g*xhat;
    bias: g (both summed over the batch dims by the engine's un-broadcast)."""

    def rule(c: RuleContext) -> str:
        shape = c.params["normalized_shape"]
        k = len(shape) if isinstance(shape, (list, tuple)) else 1
        nd = c.ndim("x")
        dims = tuple(range(nd - k, nd))
        d = dims[0] if len(dims) == 1 else dims
        centred = f"(x - x.mean({d}, keepdim=True))"
        std = f"sqrt(({centred}**2).mean({d}, keepdim=True) + {c.params.get('eps', 1e-5)!r})"
        xhat = f"({centred}/{std})"
        if arg == "bias":
            return "g"
        if arg == "weight":
            return f"g*{xhat}"
        gw = "(g*weight)" if "weight" in c.shapes else "g"
        return f"({gw} - {gw}.mean({d}, keepdim=True) - {xhat}*({gw}*{xhat}).mean({d}, keepdim=True))/{std}"

    return rule


def _obj_layer_norm(x: Any, weight: Any = None, bias: Any = None, normalized_shape: Any = None, eps: float = 1e-5) -> Any:
    import sympy

    np = _obj_np()
    x = np.asarray(x, dtype=object)
    k = len(normalized_shape) if isinstance(normalized_shape, (list, tuple)) else 1
    axes = tuple(range(x.ndim - k, x.ndim))
    n = math.prod(x.shape[a] for a in axes)
    mu = np.sum(x, axis=axes, keepdims=True) / n
    var = np.sum((x - mu) ** 2, axis=axes, keepdims=True) / n
    out = (x - mu) / _ufunc(sympy.sqrt, 1)(var + sympy.nsimplify(eps))
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return np.asarray(out, dtype=object)


op("layer_norm", "x, weight, bias", "normalized_shape, eps=1e-05", optional_args=("weight", "bias"),
   torch=lambda x, weight=None, bias=None, normalized_shape=None, eps=1e-5: F.layer_norm(
       x, list(normalized_shape) if isinstance(normalized_shape, (list, tuple)) else [normalized_shape], weight, bias, eps),
   positional_params=("normalized_shape",), obj=_obj_layer_norm,
   rules={a: _layer_norm_rule(a) for a in ("x", "weight", "bias")},
   shown={"x": "(gw - mean(gw) - xhat*mean(gw*xhat))/sqrt(var + eps), gw = g*weight, xhat = (x - mean)/sqrt(var + eps)",
          "weight": "g*xhat  (summed over batch dims)", "bias": "g  (summed over batch dims)"},
   doc="normalise over the last dims, then scale and shift")


def dropout_mask(shape: tuple[int, ...], p: float, seed: int) -> torch.Tensor:
    """The keep-mask dropout draws: 0 or 1/(1-p), reproducible from --seed (torch.manual_seed)
    and the dropout's own ``seed`` (its position in the program)."""
    gen = torch.Generator().manual_seed((torch.initial_seed() * 1_000_003 + seed) % 2**63)
    keep = torch.rand(shape, generator=gen, dtype=torch.float64) >= p
    scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
    return keep.to(torch.get_default_dtype()) * scale


def _dropout_torch(x: Any, p: float = 0.5, training: bool = True, seed: int = 0) -> torch.Tensor:
    x = as_tensor(x)
    if not training or p == 0:
        return F.dropout(x, p, training=False)
    return x * dropout_mask(tuple(x.shape), p, seed).to(x.dtype)


# A dropout's seed is always printed: parsing numbers seed-less dropouts by position, so a formula
# that repeats one dropout would otherwise read back with other masks.
op("dropout", "x", "p=0.5, training=True, seed=0", torch=_dropout_torch, positional_params=("p",), always_printed=("seed",),
   rules={"x": lambda c: "g*dropout(ones_like(x), {p}, training={t}, seed={s})".format(
       p=c.params.get("p", 0.5), t=c.params.get("training", True), s=c.params.get("seed", 0))
       if c.params.get("training", True) else "g"},
   shown={"x": "g*mask/(1 - p)  (the same mask, drawn from --seed)"},
   obj=lambda x, p=0.5, training=True, seed=0: x if not training else
   _obj_np().asarray(x, dtype=object) * _mask_obj(_obj_np().asarray(x).shape, p, seed),
   doc="zero each element with probability p and scale the rest by 1/(1-p) (mask from --seed)")


def _mask_obj(shape: tuple[int, ...], p: float, seed: int) -> Any:
    import sympy

    np = _obj_np()
    keep = (dropout_mask(shape, p, seed) != 0).numpy()
    scale = sympy.Integer(0) if p >= 1 else 1 / (1 - sympy.nsimplify(p))
    return np.where(keep, scale, sympy.Integer(0)).astype(object)


# ------------------------------------------------------------------------- constructors


def _like(fill: Any) -> Callable[..., Any]:
    def apply(a: Any, v: Any = None) -> torch.Tensor:
        a = as_tensor(a)
        value = fill if fill is not None else v
        dtype = a.dtype if a.is_floating_point() else torch.get_default_dtype()
        return torch.full_like(a, float(value) if isinstance(value, (int, float)) else value.item(), dtype=dtype)

    return apply


def _obj_like(fill: Any) -> Callable[..., Any]:
    def apply(a: Any, v: Any = None) -> Any:
        import sympy

        np = _obj_np()
        value = sympy.Integer(fill) if fill is not None else v
        return np.full(np.asarray(a).shape, value, dtype=object)

    return apply


op("zeros_like", "a", torch=_like(0), obj=_obj_like(0), doc="zeros of a's shape (constant)")
op("ones_like", "a", torch=_like(1), obj=_obj_like(1), doc="ones of a's shape (constant)")
op("full_like", "a, v", torch=_like(None), obj=_obj_like(None), doc="a's shape filled with v (constant)")


def _shape_args(shape: Any) -> tuple[int, ...]:
    return tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)


def _obj_const(t: torch.Tensor) -> Any:
    import sympy

    np = _obj_np()
    return np.vectorize(lambda v: sympy.Integer(int(v)) if float(v).is_integer() else sympy.Float(float(v)),
                        otypes=[object])(t.numpy()) if t.numel() else np.zeros(tuple(t.shape), dtype=object)


def constructor(name: str, params: str, fn: Callable[..., torch.Tensor], doc: str, **kw: Any) -> None:
    op(name, "", params, torch=fn, constructor=True, obj=lambda **p: _obj_const(fn(**p)), doc=doc, **kw)


constructor("zeros", "shape", lambda shape: torch.zeros(_shape_args(shape)), "zeros(2, 3): a constant tensor of zeros",
            positional_params=("shape",), varargs_param="shape")
constructor("ones", "shape", lambda shape: torch.ones(_shape_args(shape)), "ones(2, 3): a constant tensor of ones",
            positional_params=("shape",), varargs_param="shape")
constructor("full", "shape, fill_value", lambda shape, fill_value: torch.full(_shape_args(shape), float(fill_value)),
            "full((2, 3), v): a constant tensor filled with v", positional_params=("shape", "fill_value"))
constructor("eye", "n, m=None", lambda n, m=None: torch.eye(n, m if m is not None else n),
            "eye(n): the identity matrix", positional_params=("n", "m"))
constructor("arange", "start, end=None, step=1", lambda start, end=None, step=1:
            torch.arange(start, end, step, dtype=torch.get_default_dtype()) if end is not None
            else torch.arange(start, dtype=torch.get_default_dtype()),
            "arange(n): 0, 1, …, n-1 (floating)", positional_params=("start", "end", "step"))


constructor("rand", "shape", lambda shape: torch.rand(_shape_args(shape)),
            "rand(2, 3): uniform [0, 1) from --seed (NAME=VALUE only)", positional_params=("shape",), varargs_param="shape")
constructor("randn", "shape", lambda shape: torch.randn(_shape_args(shape)),
            "randn(2, 3): standard normal from --seed (NAME=VALUE only)", positional_params=("shape",), varargs_param="shape")
VALUE_ONLY = {"rand", "randn"}  # random values are inputs, never part of an expression


def _tensor_torch(data: Any) -> torch.Tensor:
    def flat(d: Any) -> list[Any]:
        return [y for x in d for y in flat(x)] if isinstance(d, (list, tuple)) else [d]

    values = flat(data)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return torch.tensor(data, dtype=torch.int64)
    return torch.tensor(_float_nested(data), dtype=torch.get_default_dtype())


def _float_nested(d: Any) -> Any:
    return [_float_nested(x) for x in d] if isinstance(d, (list, tuple)) else float(d)


def _obj_tensor(data: Any) -> Any:
    import sympy

    np = _obj_np()

    def conv(d: Any) -> Any:
        if isinstance(d, (list, tuple)):
            return [conv(x) for x in d]
        if hasattr(d, "denominator"):
            return sympy.Rational(d.numerator, d.denominator)
        return sympy.Integer(int(d)) if float(d).is_integer() else sympy.Rational(repr(d))

    arr = np.empty(np.asarray(_float_nested(data)).shape, dtype=object)
    arr[...] = conv(data) if isinstance(data, (list, tuple)) else conv(data)
    return arr


op("tensor", "", "data", torch=_tensor_torch, constructor=True, obj=_obj_tensor,
   doc="tensor([[1, 2], [3, 4]]): a constant (all-integer literals give an integer tensor)")


def _opaque_torch(*tensors: Any, fn: Callable[..., Any], template: Any, index: int | None = None,
                  name: str = "") -> Any:
    """Call a recorded torch function again with new tensors in the slots its tensor arguments held."""
    def fill(item: Any) -> Any:
        if isinstance(item, OpaqueSlot):
            return tensors[item.index]
        if isinstance(item, (list, tuple)) and not isinstance(item, torch.Size):
            return type(item)(fill(i) for i in item)
        return item

    args, kwargs = template
    out = fn(*fill(args), **fill(kwargs))
    return out[index] if index is not None else out


@dataclass(frozen=True)
class OpaqueSlot:
    """Where the i-th tensor argument sits in a recorded call's (args, kwargs)."""

    index: int


# A torch function of the user's own code that the registry does not know (``cumsum``, a custom layer):
# replayed by torch as recorded, with no derivative rule, so the symbolic side has no closed form for it
# and only torch and finite differences speak for its gradient.
op("opaque", "", "fn, template, index=None, name=''", torch=_opaque_torch, variadic=True, user=False,
   hidden_params=("fn", "template", "index", "name"), doc="a recorded torch function outside the registry")


def broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy/PyTorch broadcasting of shapes (torch.broadcast_shapes imports ~0.3 s of torch.fx)."""
    ndim = max((len(s) for s in shapes), default=0)
    out: list[int] = []
    for i in range(ndim):
        sizes = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0} - {1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {', '.join(str(list(s)) for s in shapes)} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _matmul_shape(shapes: list[tuple[int, ...]], params: dict[str, Any]) -> tuple[int, ...]:
    a, b = shapes[0], shapes[1]
    if len(a) < 2 or len(b) < 2:
        return tuple(a[:-1]) + tuple(b[:-2] + b[-1:] if len(b) >= 2 else ())
    return broadcast_shape(a[:-2], b[:-2]) + (a[-2], b[-1])


def _constructor_shape(name: str) -> Callable[[list[tuple[int, ...]], dict[str, Any]], tuple[int, ...]]:
    def predict(shapes: list[tuple[int, ...]], p: dict[str, Any]) -> tuple[int, ...]:
        if name == "eye":
            return (p["n"], p["m"] if p.get("m") is not None else p["n"])
        if name == "arange":
            start, end, step = (0, p["start"], 1) if p.get("end") is None else (p["start"], p["end"], p.get("step", 1))
            return (max(0, math.ceil((end - start) / step)) if step else 0,)
        return _shape_args(p["shape"])

    return predict


def _broadcast_shape(shapes: list[tuple[int, ...]], params: dict[str, Any]) -> tuple[int, ...]:
    return broadcast_shape(*shapes)


for _spec in REGISTRY.values():
    if _spec.elementwise or _spec.name in ("mse_loss", "binary_cross_entropy"):
        _spec.predict = _broadcast_shape
    elif _spec.constructor and _spec.name != "tensor":
        _spec.predict = _constructor_shape(_spec.name)
for _name in ("matmul", "mm", "mv", "dot"):
    REGISTRY[_name].predict = _matmul_shape
REGISTRY["outer"].predict = lambda shapes, p: (math.prod(shapes[0]), math.prod(shapes[1]))
REGISTRY["linear"].predict = lambda shapes, p: _matmul_shape([shapes[0], tuple(reversed(shapes[1]))], p)
REGISTRY["one_hot"].predict = lambda shapes, p: tuple(shapes[0]) + (max(p.get("num_classes", -1), 1),)


def resolve(name: str) -> OpSpec | None:
    spec = REGISTRY.get(ALIASES.get(name, name))
    return spec if spec is not None and spec.user else None
