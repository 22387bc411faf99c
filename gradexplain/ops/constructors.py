"""Constants: ``zeros_like ones_like full_like zeros ones full eye arange rand randn tensor`` (no gradient)."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from .spec import In, Shape, ValueSample, as_tensor, obj_np, op, sample


def _like(fill: Any) -> Callable[..., Any]:
    def apply(a: Any, v: Any = None) -> torch.Tensor:
        a = as_tensor(a)
        value = fill if fill is not None else v
        dtype = a.dtype if a.is_floating_point() else torch.get_default_dtype()
        # a tensor fill value goes to torch as it is, so torch's own check fires (a 0-d tensor without grad
        # is a Number to torch; one that requires grad, or has more elements, is refused)
        return torch.full_like(a, float(value) if isinstance(value, (int, float)) else value, dtype=dtype)

    return apply


def _obj_like(fill: Any) -> Callable[..., Any]:
    def apply(a: Any, v: Any = None) -> Any:
        import sympy  # heavy

        np = obj_np()
        value = sympy.Integer(fill) if fill is not None else v
        return np.full(np.asarray(a).shape, value, dtype=object)

    return apply


op("zeros_like", "a", torch=_like(0), obj=_obj_like(0), fill=0, doc="zeros of a's shape (constant)",
   samples=(sample("a*a + zeros_like(a)", lambda a: a * a + torch.zeros_like(a), a=In(3)),),
   value_samples=(ValueSample(("zeros_like(a)", "a=[1, 2]"), [0.0, 0.0]),))
op("ones_like", "a", torch=_like(1), obj=_obj_like(1), fill=1, doc="ones of a's shape (constant)",
   samples=(sample("a + ones_like(a)", lambda a: a + torch.ones_like(a), a=In(3)),),
   value_samples=(ValueSample(("ones_like(a)", "a=[[1, 2]]"), [[1.0, 1.0]]),))
op("full_like", "a, v", torch=_like(None), obj=_obj_like(None), number_args="v", doc="a's shape filled with v (constant)",
   samples=(sample("a * full_like(a, 2.5)", lambda a: a * torch.full_like(a, 2.5), a=In(3)),),
   value_samples=(ValueSample(("full_like(a, 7)", "a=[1, 2]"), [7.0, 7.0]),))


def _shape_args(shape: Any) -> Shape:
    return tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)


def _obj_const(t: torch.Tensor) -> Any:
    import sympy  # heavy

    np = obj_np()
    return np.vectorize(lambda v: sympy.Integer(int(v)) if float(v).is_integer() else sympy.Float(float(v)),
                        otypes=[object])(t.numpy()) if t.numel() else np.zeros(tuple(t.shape), dtype=object)


def _shape_param(shapes: list[Shape], p: dict[str, Any]) -> Shape:
    return _shape_args(p["shape"])


def constructor(name: str, params: str, fn: Callable[..., torch.Tensor], doc: str, **kw: Any) -> None:
    kw.setdefault("predict", _shape_param)
    op(name, "", params, torch=fn, constructor=True, obj=lambda **p: _obj_const(fn(**p)), doc=doc, **kw)


def _arange_shape(shapes: list[Shape], p: dict[str, Any]) -> Shape:
    start, end, step = (0, p["start"], 1) if p.get("end") is None else (p["start"], p["end"], p.get("step", 1))
    return (max(0, math.ceil((end - start) / step)) if step else 0,)


def _seeded(fn: Callable[..., torch.Tensor], *shape: int) -> Callable[[], list[Any]]:
    """What ``--seed 7`` draws: torch.manual_seed(7), then ``fn`` in float64 (computed in the test)."""

    def draw() -> list[Any]:
        torch.manual_seed(7)
        return fn(*shape, dtype=torch.float64).tolist()

    return draw


constructor("zeros", "shape", lambda shape: torch.zeros(_shape_args(shape)), "zeros(2, 3): a constant tensor of zeros",
            positional_params=("shape",), varargs_param="shape",
            samples=(sample("a + zeros(2, 3)", lambda a: a + torch.zeros(2, 3), a=In(3)),),
            value_samples=(ValueSample(("zeros(2, 3)",), [[0.0] * 3] * 2),))
constructor("ones", "shape", lambda shape: torch.ones(_shape_args(shape)), "ones(2, 3): a constant tensor of ones",
            positional_params=("shape",), varargs_param="shape",
            samples=(sample("a * ones(2, 1)", lambda a: a * torch.ones(2, 1), a=In(3)),),
            value_samples=(ValueSample(("ones(3)",), [1.0] * 3),))
constructor("full", "shape, fill_value", lambda shape, fill_value: torch.full(_shape_args(shape), float(fill_value)),
            "full((2, 3), v): a constant tensor filled with v", positional_params=("shape", "fill_value"),
            samples=(sample("a * full((3,), 1.5)", lambda a: a * torch.full((3,), 1.5), a=In(3)),),
            value_samples=(ValueSample(("full((2, 2), -1.5)",), [[-1.5, -1.5], [-1.5, -1.5]]),))
constructor("eye", "n, m=None", lambda n, m=None: torch.eye(n, m if m is not None else n),
            "eye(n): the identity matrix", positional_params=("n", "m"),
            predict=lambda shapes, p: (p["n"], p["m"] if p.get("m") is not None else p["n"]),
            samples=(sample("a @ eye(3)", lambda a: a @ torch.eye(3), a=In(2, 3)),),
            value_samples=(ValueSample(("eye(2, 3)",), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),))
constructor("arange", "start, end=None, step=1", lambda start, end=None, step=1:
            torch.arange(start, end, step, dtype=torch.get_default_dtype()) if end is not None
            else torch.arange(start, dtype=torch.get_default_dtype()),
            "arange(n): 0, 1, …, n-1 (floating)", positional_params=("start", "end", "step"), predict=_arange_shape,
            samples=(sample("a * arange(3)", lambda a: a * torch.arange(3.0), a=In(3)),),
            value_samples=(ValueSample(("arange(1, 7, 2)",), [1.0, 3.0, 5.0]),))
constructor("rand", "shape", lambda shape: torch.rand(_shape_args(shape)),
            "rand(2, 3): uniform [0, 1) from --seed (NAME=VALUE only)", positional_params=("shape",), varargs_param="shape",
            value_samples=(ValueSample(("a*1", "a=rand(2, 3)", "--seed", "7", "--const", "a"),
                                       _seeded(torch.rand, 2, 3), ("rand",)),))
constructor("randn", "shape", lambda shape: torch.randn(_shape_args(shape)),
            "randn(2, 3): standard normal from --seed (NAME=VALUE only)", positional_params=("shape",), varargs_param="shape",
            value_samples=(ValueSample(("a*1", "a=randn(3)", "--seed", "7", "--const", "a"),
                                       _seeded(torch.randn, 3), ("randn",)),))
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
    import sympy  # heavy

    np = obj_np()

    def conv(d: Any) -> Any:
        if isinstance(d, (list, tuple)):
            return [conv(x) for x in d]
        if hasattr(d, "denominator"):
            return sympy.Rational(d.numerator, d.denominator)
        return sympy.Integer(int(d)) if float(d).is_integer() else sympy.Rational(repr(d))

    arr = np.empty(np.asarray(_float_nested(data)).shape, dtype=object)
    arr[...] = conv(data)
    return arr


op("tensor", "", "data", torch=_tensor_torch, constructor=True, obj=_obj_tensor,
   doc="tensor([[1, 2], [3, 4]]): a constant (all-integer literals give an integer tensor)",
   samples=(sample("a * tensor([1.5, -2, 0.25])", lambda a: a * torch.tensor([1.5, -2.0, 0.25]), a=In(3)),),
   value_samples=(ValueSample(("tensor([[1, 2], [3, 4]])",), [[1, 2], [3, 4]]),
                  ValueSample(("tensor([0.5, 2])",), [0.5, 2.0])))
