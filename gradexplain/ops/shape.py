"""Shapes and views: ``t transpose reshape view unsqueeze squeeze expand_as stack cat``."""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..ir import Call
from .spec import In, Linear, RuleContext, Shape, as_tensor, obj_np, op, sample


def _t_torch(a: Any, attr: bool = True) -> torch.Tensor:
    a = as_tensor(a)
    return a if a.dim() < 2 else a.t()


def _t_batch(node: Call, ks: list[Any], lead: Shape, shape: Callable[[Any], Shape]) -> Any:
    """``.T`` of K swaps its last two dims (the direction's dims lead); a vector's ``.T`` is itself."""
    if len(shape(node.args[0])) < 2:
        return ks[0]
    return Call("transpose", (ks[0],), {"dim0": -2, "dim1": -1}) if lead else Call("t", (ks[0],))


op("t", "a", "attr=True", torch=_t_torch, rules={"a": lambda c: "g.T" if c.ndim("a") == 2 else "g"},
   shown={"a": "g.T"}, method=True, hidden_params=("attr",), linear=Linear("a", batch=_t_batch),
   obj=lambda a, attr=True: obj_np().asarray(a, dtype=object).T, doc="transpose of a matrix (.T, .t())",
   samples=(sample("a.t()", lambda a: a.t(), a=In(2, 3)),
            sample("a.T @ b", lambda a, b: a.T @ b, a=In(2, 3), b=In(2))))
op("transpose", "a", "dim0, dim1", torch=lambda a, dim0, dim1: as_tensor(a).transpose(dim0, dim1), method=True,
   positional_params=("dim0", "dim1"), rules={"a": lambda c: f"g.transpose({c.params['dim0']}, {c.params['dim1']})"},
   shown={"a": "g.transpose(dim0, dim1)"}, linear=Linear("a", batch="dims", dims=("dim0", "dim1")),
   obj=lambda a, dim0, dim1: obj_np().swapaxes(obj_np().asarray(a, dtype=object), dim0, dim1), doc="swap two dims",
   samples=(sample("a.transpose(0, 2)", lambda a: a.transpose(0, 2), a=In(2, 3, 2)),))


def _shape_rule(c: RuleContext) -> str:
    return f"g.reshape({tuple(c.shapes['a'])})"


_RESHAPE = Linear("a", batch="reshape")
op("reshape", "a", "shape", torch=lambda a, shape: as_tensor(a).reshape(shape), method=True,
   positional_params=("shape",), varargs_param="shape", rules={"a": _shape_rule}, linear=_RESHAPE,
   shown={"a": "g.reshape(a.shape)"}, obj=lambda a, shape: obj_np().reshape(obj_np().asarray(a, dtype=object), shape),
   doc="same elements, another shape", samples=(sample("a.reshape(3, 2)", lambda a: a.reshape(3, 2), a=In(2, 3)),))
op("view", "a", "shape", torch=lambda a, shape: as_tensor(a).view(shape), method=True,
   positional_params=("shape",), varargs_param="shape", rules={"a": _shape_rule}, linear=_RESHAPE,
   shown={"a": "g.reshape(a.shape)"}, obj=lambda a, shape: obj_np().reshape(obj_np().asarray(a, dtype=object), shape),
   doc="same elements, another shape", samples=(sample("a.view(-1)", lambda a: a.view(-1), a=In(2, 3)),))
op("unsqueeze", "a", "dim", torch=lambda a, dim: as_tensor(a).unsqueeze(dim), method=True, positional_params=("dim",),
   rules={"a": lambda c: f"g.squeeze({c.params['dim']})"}, shown={"a": "g.squeeze(dim)"}, linear=_RESHAPE,
   obj=lambda a, dim: obj_np().expand_dims(obj_np().asarray(a, dtype=object), dim), doc="insert a dim of size 1",
   samples=(sample("a.unsqueeze(1) * b", lambda a, b: a.unsqueeze(1) * b, a=In(2), b=In(3)),))


def _obj_squeeze(a: Any, dim: Any = None) -> Any:
    np = obj_np()
    if dim is None or np.asarray(a).shape[dim] == 1:
        return np.squeeze(np.asarray(a, dtype=object), axis=dim)
    return np.asarray(a, dtype=object)


op("squeeze", "a", "dim=None", torch=lambda a, dim=None: as_tensor(a).squeeze() if dim is None else as_tensor(a).squeeze(dim),
   method=True, positional_params=("dim",), rules={"a": _shape_rule}, shown={"a": "g.reshape(a.shape)"},
   linear=_RESHAPE, obj=_obj_squeeze, doc="drop dims of size 1",
   samples=(sample("a.squeeze()", lambda a: a.squeeze(), a=In(2, 1, 3)),
            sample("squeeze(a, 1)", lambda a: a.squeeze(1), a=In(2, 1, 3))))
op("expand_as", "a, other", torch=lambda a, other: as_tensor(a).expand_as(other), method=True, rules={"a": "g"},
   shown={"a": "g  (summed back over the expanded dims)"}, linear=Linear("a", batch="broadcast"),
   obj=lambda a, other: obj_np().broadcast_to(obj_np().asarray(a, dtype=object), obj_np().asarray(other).shape).copy(),
   doc="broadcast a to other's shape",
   samples=(sample("a.expand_as(b)", lambda a, b: a.expand_as(b), a=In(3), b=In(2, 3)),))


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
    np = obj_np()
    return np.stack([np.asarray(t, dtype=object) for t in ts], axis=dim)


def _obj_cat(*ts: Any, dim: int = 0) -> Any:
    np = obj_np()
    return np.concatenate([np.asarray(t, dtype=object) for t in ts], axis=dim)


def _torch_list(fn: Callable[..., Any]) -> Callable[..., Any]:
    return lambda *ts, dim=0: fn([as_tensor(t) for t in ts], dim=dim)


op("stack", "", "dim=0", torch=_torch_list(torch.stack), variadic=True, variadic_rule=_stack_rule, obj=_obj_stack,
   shown={"t_i": "g[..., i] along dim"}, linear=Linear("*", joint=True, batch="dims", dims=("dim",), dims_of="out"),
   doc="stack tensors along a new dim",
   samples=(sample("stack([a, a*b], dim=1)", lambda a, b: torch.stack([a, a * b], dim=1), a=In(2, 3), b=In(2, 3)),))
op("cat", "", "dim=0", torch=_torch_list(torch.cat), variadic=True, variadic_rule=_cat_rule, obj=_obj_cat,
   shown={"t_i": "g[..., start_i:end_i] along dim"}, linear=Linear("*", joint=True, batch="dims", dims=("dim",)),
   doc="concatenate tensors along dim",
   samples=(sample("cat([a, b], 0)", lambda a, b: torch.cat([a, b], 0), a=In(2, 3), b=In(1, 3)),
            sample("cat([a, b], dim=1)", lambda a, b: torch.cat([a, b], dim=1), a=In(2, 1), b=In(2, 2)),
            sample("cat([a, 2*a], -1)", lambda a: torch.cat([a, 2 * a], -1), a=In(2, 2))))
