"""Indexing: ``a[key]`` and ``base[key] = value`` (internal ops: EXPR spells them with brackets).

Their rules are IR nodes rather than text, since an index key has no spelling as a parameter.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..ir import Call, Const, key_to_python
from .spec import In, Linear, RuleContext, as_tensor, obj_np, op, sample


def _index_torch(a: Any, key: tuple) -> torch.Tensor:
    return as_tensor(a)[key_to_python(key)]


def _index_put_torch(base: Any, value: Any, key: tuple, inplace: bool = False) -> torch.Tensor:
    """``base[key] = value``; in place when the program did it in place (CopySlices)."""
    target = base if inplace else as_tensor(base).clone()
    target[key_to_python(key)] = value
    return target


def _obj_index(a: Any, key: tuple) -> Any:
    return obj_np().asarray(obj_np().asarray(a, dtype=object)[key_to_python(key)], dtype=object)


def _obj_index_put(base: Any, value: Any, key: tuple) -> Any:
    np = obj_np()
    out = np.array(base, dtype=object, copy=True)
    value = np.asarray(value, dtype=object)
    out[key_to_python(key)] = value[()] if value.ndim == 0 else value  # a 0-d array would be stored as one element
    return out


def _keyed(op_name: str, *names: str, **extra: Any) -> Callable[[RuleContext], Any]:
    """A rule that is an IR node, not text: index keys have no spelling as a parameter."""

    def rule(c: RuleContext) -> Any:
        args = tuple(Const(0) if n == "0" else c.nodes[n] for n in names)
        return Call(op_name, args, {"key": c.params["key"], **extra})

    return rule


op("index", "a", "key", torch=_index_torch, rules={"a": _keyed("index_grad", "g", "a")}, obj=_obj_index,
   user=False, shown={"a": "zeros_like(a) with g added at [key]"}, linear=Linear("a", batch="key"),
   doc="a[key]: the selected elements",
   samples=(sample("a[:, 1] * a[0]", lambda a: a[:, 1] * a[0], a=In(2, 2)),
            sample("a[:, 1] * 2 + a[0, 0:2]", lambda a: a[:, 1] * 2 + a[0, 0:2], a=In(2, 3))))
def _put_ref(a: torch.Tensor) -> torch.Tensor:
    b = torch.zeros(2, 3, dtype=a.dtype)
    b[0, 1:] = a * a
    return b


op("index_put", "base, value", "key", torch=_index_put_torch, obj=_obj_index_put, user=False, printable=False,
   rules={"base": _keyed("index_put", "g", "0"), "value": _keyed("index", "g")},
   linear=Linear("base, value", joint=True, batch=None),
   shown={"base": "g with [key] set to 0", "value": "g[key]"}, doc="base[key] = value (CopySlices in PyTorch)",
   samples=(sample("b = zeros(2, 3); b[0, 1:] = a*a; b", lambda a: _put_ref(a), a=In(2)),))


def _index_grad_torch(g: Any, a: Any, key: tuple) -> torch.Tensor:
    out = torch.zeros_like(as_tensor(a))
    out[key_to_python(key)] += g
    return out


def _obj_index_grad(g: Any, a: Any, key: tuple) -> Any:
    np = obj_np()
    out = np.zeros(np.asarray(a).shape, dtype=object)
    out[key_to_python(key)] += g
    return out


op("index_grad", "g, a", "key", torch=_index_grad_torch, obj=_obj_index_grad, user=False, printable=False,
   linear=Linear("g", batch=None),
   doc="zeros shaped like a with g added at key (the gradient of a[key]; no EXPR spelling)")
