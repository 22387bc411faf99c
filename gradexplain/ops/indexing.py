"""Indexing: ``a[key]`` (basic and advanced: ``C[Xb]``, ``x[range(n), y]``, ``x[x > 0]``), ``base[key] =
value``, ``scatter index_select index_add index_put take_along_dim masked_fill masked_select``
(``gather``/``scatter_add`` live with the reductions, whose max/min gradients use them), the masks they take (``== != & | ~`` next to ``< <= > >=``), and the shape queries
(``x.size(1)``, ``x.shape[0]``, ``len(x)``, ``x.dim()``, ``x.item()``) whose values are static.

``a[key]`` and ``base[key] = value`` are internal ops (EXPR spells them with brackets); their rules are
IR nodes rather than text, since an index key has no spelling as a parameter.  An index tensor in a
key is a :class:`~gradexplain.ir.Slot`: the tensor is one of the call's arguments.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..i18n import Msg
from ..ir import Call, Const, Slice, Slot, key_to_python
from .spec import REGISTRY, In, Linear, RuleContext, Shape, ValueSample, as_tensor, obj_np, op, sample, with_slots

MASK_OPS = ("gt", "ge", "lt", "le", "eq", "ne", "logical_and", "logical_or", "logical_xor", "logical_not")


def _spliced(key: tuple) -> tuple:
    """A key whose entries may be a tuple of index tensors (``g[indices]`` in index_put's rule)."""
    out: list[Any] = []
    for k in key:
        out.extend(k if isinstance(k, tuple) else (k,))
    return tuple(out)


def _index_torch(a: Any, key: tuple) -> torch.Tensor:
    return as_tensor(a)[key_to_python(_spliced(key))]


def _index_put_torch(base: Any, value: Any, key: tuple, inplace: bool = False) -> torch.Tensor:
    """``base[key] = value``; in place when the program did it in place (CopySlices)."""
    target = base if inplace else as_tensor(base).clone()
    target[key_to_python(key)] = value
    return target


def _obj_index(a: Any, key: tuple) -> Any:
    return obj_np().asarray(obj_np().asarray(a, dtype=object)[_index_arrays(_spliced(key))], dtype=object)


def _obj_index_put(base: Any, value: Any, key: tuple) -> Any:
    np = obj_np()
    out = np.array(base, dtype=object, copy=True)
    value = np.asarray(value, dtype=object)
    out[key_to_python(key)] = value[()] if value.ndim == 0 else value  # a 0-d array would be stored as one element
    return out


# ------------------------------------------------------------------ advanced indexing helpers


def _index_arrays(key: tuple) -> tuple:
    """A key for numpy object arrays: index tensors (torch, or SymPy integers) as integer arrays."""
    np = obj_np()

    def conv(k: Any) -> Any:
        if isinstance(k, torch.Tensor):
            return k.numpy()
        if isinstance(k, np.ndarray):
            try:
                if k.dtype == bool or (k.size and isinstance(k.reshape(-1)[0], (bool, np.bool_))):
                    return k.astype(bool)
                return k.astype(int)
            except TypeError:  # symbols: which elements are picked depends on the values
                raise NotImplementedError(Msg("an index or mask that depends on the inputs has no per-element form")) \
                    from None
        return k

    return tuple(conv(k) for k in key_to_python(key))


def _full(k: Any) -> bool:
    return isinstance(k, Slice) and k == Slice()


def _is_mask(node: Any) -> bool:
    return isinstance(node, Call) and node.op in MASK_OPS


def _index_rule(c: RuleContext) -> Any:
    """IndexBackward0: g added into zeros shaped like ``a`` at the key, repeated indices accumulating.

    Written whole-tensor where the key allows it: index tensors in front (``C[Xb]``, ``x[range(n), y]``,
    ``x[idx, :]``) as ``index_put(zeros_like(a), (i, j), g, accumulate=True)``; one index tensor after
    full slices (``x[:, idx]``) as ``zeros_like(a).index_add(d, idx, g)``.  Other keys (ints or partial
    slices next to index tensors) fall back to ``index_grad``, which is written per element."""
    n, g, a = c.nodes["out"], c.nodes["g"], c.nodes["a"]
    key = tuple(c.params["key"])
    tensors = list(n.args[1:])
    positions = [i for i, k in enumerate(key) if isinstance(k, Slot)]
    if not positions:  # a basic key: a view
        text = _basic_key_rule(key, c.shapes["a"])
        return text if text is not None else Call("index_grad", (g, a), {"key": key})
    rest_full = all(_full(k) for i, k in enumerate(key) if i not in positions)
    zeros = Call("zeros_like", (a,))
    if rest_full and positions == list(range(len(positions))):
        return Call("index_put", (zeros, Call("tuple", tuple(tensors)), g), {"accumulate": True})
    if rest_full and len(positions) == 1 and not _is_mask(tensors[0]):
        d = positions[0]
        b = len(c.out_shape) - c.ndim("a") + 1  # the index tensor's dims
        idx, src = tensors[0], g
        if b != 1:
            idx = Call("reshape", (idx,), {"shape": (-1,)})
            src = Call("flatten", (g,), {"start_dim": d, "end_dim": d + b - 1})
        return Call("index_add", (zeros, idx, src), {"dim": d})
    shifted = tuple(Slot(k.index + 1) if isinstance(k, Slot) else k for k in key)
    return Call("index_grad", (g, a, *tensors), {"key": shifted})


def _basic_key_rule(key: tuple, shape: tuple) -> str | None:
    """The gradient of ``a[ints, step-1 slices, None, ...]`` whole-tensor: g with the dropped dims put back
    (``unsqueeze``), the new ones taken out (``squeeze``), and zeros around it (``pad``).  None for other
    steps (written per element)."""
    consumed = sum(1 for k in key if k is not None and k is not Ellipsis)
    full: list[Any] = []
    for k in key:
        full.extend([Slice()] * (len(shape) - consumed) if k is Ellipsis else [k])
    full.extend([Slice()] * (len(shape) - sum(1 for k in full if k is not None)))
    text, pads, dim, squeezed, unsqueezed = "g", [], 0, [], []
    out_pos = 0
    for k in full:
        if k is None:
            squeezed.append(out_pos)
            out_pos += 1
            continue
        n = shape[dim]
        if isinstance(k, int):
            start = k % n if n else 0
            pads.append((start, n - start - 1))
            unsqueezed.append(dim)
        else:
            if k.step not in (None, 1):
                return None
            start, stop, _ = k.to_python().indices(n)
            stop = max(stop, start)
            pads.append((start, n - stop))
            out_pos += 1
        dim += 1
    for p in reversed(squeezed):
        text += f".squeeze({p})"
    for d in unsqueezed:
        text += f".unsqueeze({d})"
    while pads and pads[0] == (0, 0):  # F.pad lists the last dim first: leading unpadded dims need no entry
        pads.pop(0)
    if pads:
        flat = [v for pair in reversed(pads) for v in pair]
        text = f"pad({text}, ({', '.join(map(str, flat))},))"
    return text


def _keyed(op_name: str, *names: str, **extra: Any) -> Callable[[RuleContext], Any]:
    """A rule that is an IR node, not text: index keys have no spelling as a parameter."""

    def rule(c: RuleContext) -> Any:
        args = tuple(Const(0) if n == "0" else c.nodes[n] for n in names)
        return Call(op_name, args, {"key": c.params["key"], **extra})

    return rule


op("index", "a", "key", torch=_index_torch, rules={"a": _index_rule}, obj=_obj_index,
   user=False, shown={"a": "zeros_like(a) with g added at [key]; index tensors: "
                           "index_put(zeros_like(a), (i, j), g, accumulate=True)"},
   linear=Linear("a", batch="key"), doc="a[key]: the selected elements (ints, slices, None, ..., index tensors, masks)",
   samples=(sample("a[:, 1] * a[0]", lambda a: a[:, 1] * a[0], a=In(2, 2)),
            sample("a[:, 1] * 2 + a[0, 0:2]", lambda a: a[:, 1] * 2 + a[0, 0:2], a=In(2, 3)),
            sample("a[tensor([2, 0, 2, 1])] * 3", lambda a: a[torch.tensor([2, 0, 2, 1])] * 3, a=In(3, 2)),
            sample("a[tensor([[0, 1], [1, 1]])] * b", lambda a, b: a[torch.tensor([[0, 1], [1, 1]])] * b,
                   a=In(3, 2), b=In(2, 2, 2)),
            sample("a[range(3), tensor([1, 0, 1])] * 2", lambda a: a[range(3), torch.tensor([1, 0, 1])] * 2, a=In(3, 2)),
            sample("a[:, tensor([1, 1, 0])] - a[..., 0:1]",
                   lambda a: a[:, torch.tensor([1, 1, 0])] - a[..., 0:1], a=In(2, 3)),
            sample("a[:, tensor([[1, 1], [0, 2]])] * b", lambda a, b: a[:, torch.tensor([[1, 1], [0, 2]])] * b,
                   a=In(2, 3), b=In(2, 2, 2)),
            sample("a[a > 0] * 2", lambda a: a[a > 0] * 2, a=In(2, 3, domain="nz")),
            sample("a[None, 1, ...] * a[0, tensor([0, 0])]",
                   lambda a: a[None, 1, ...] * a[0, torch.tensor([0, 0])], a=In(2, 2))))
def _put_ref(a: torch.Tensor) -> torch.Tensor:
    b = torch.zeros(2, 3, dtype=a.dtype)
    b[0, 1:] = a * a
    return b


op("setitem", "base, value", "key", torch=_index_put_torch, obj=_obj_index_put, user=False, printable=False,
   rules={"base": _keyed("setitem", "g", "0"), "value": _keyed("index", "g")},
   linear=Linear("base, value", joint=True, batch=None),
   shown={"base": "g with [key] set to 0", "value": "g[key]"}, doc="base[key] = value (CopySlices in PyTorch)",
   samples=(sample("b = zeros(2, 3); b[0, 1:] = a*a; b", lambda a: _put_ref(a), a=In(2)),))


def _index_grad_torch(g: Any, a: Any, key: tuple) -> torch.Tensor:
    """zeros like a, g added at key; repeated indices accumulate (positions of a's elements, indexed)."""
    a = as_tensor(a)
    where = torch.arange(a.numel()).reshape(a.shape)[key_to_python(key)]
    g = torch.as_tensor(g, dtype=a.dtype).expand(where.shape)
    return torch.zeros(a.numel(), dtype=a.dtype).index_add(0, where.reshape(-1), g.reshape(-1)).reshape(a.shape)


def _obj_index_grad(g: Any, a: Any, key: tuple) -> Any:
    np = obj_np()
    out = np.zeros(np.asarray(a).shape, dtype=object)
    np.add.at(out, _index_arrays(key), np.asarray(g, dtype=object))
    return out


op("index_grad", "g, a", "key", torch=_index_grad_torch, obj=_obj_index_grad, user=False, printable=False,
   linear=Linear("g", batch=None),
   doc="zeros shaped like a with g added at key (the gradient of a[key]; no EXPR spelling)")


# ------------------------------------------------------------------------- tuples of index tensors


op("tuple", "", torch=lambda *ts: tuple(ts), obj=lambda *ts: tuple(ts), user=False, variadic=True,
   doc="(i, j): index tensors for index_put")


def _index_put_values_rule(c: RuleContext) -> Any:
    return Call("index", (c.nodes["g"], c.nodes["indices"]), {"key": (Slot(1),)})


def _index_put_batch(node: Call, ks: list[Any], lead: Shape, shape: Callable[[Any], Shape]) -> Any:
    """index_put indexes a's leading dims: the direction's dims move to the end and back."""
    L = len(lead)
    a, indices, values = node.args[:3]

    def to_end(k: Any, arg: Any) -> Any:
        k = k if k is not None else Call("zeros", (), {"shape": tuple(lead) + shape(arg)})
        nd = len(shape(arg))
        return Call("movedim", (k,), {"source": tuple(range(L)), "destination": tuple(range(nd, nd + L))})

    put = Call("index_put", (to_end(ks[0], a), indices, to_end(ks[2], values)), node.params)
    nd = len(shape(a))
    return Call("movedim", (put,), {"source": tuple(range(nd, nd + L)), "destination": tuple(range(L))})


def _torch_index_put(a: Any, indices: tuple, values: Any, accumulate: bool = False) -> torch.Tensor:
    # a lone tensor goes to torch as it is: torch wants a tuple of tensors and says so
    indices = indices if isinstance(indices, torch.Tensor) else tuple(indices)
    return torch.index_put(as_tensor(a), indices, as_tensor(values), accumulate)


def _obj_index_put_fn(a: Any, indices: tuple, values: Any, accumulate: bool = False) -> Any:
    np = obj_np()
    out = np.array(a, dtype=object, copy=True)
    key = _index_arrays(tuple(indices))
    if accumulate:
        np.add.at(out, key, np.asarray(values, dtype=object))
    else:
        out[key] = values
    return out


op("index_put", "a, indices, values", "accumulate=False", torch=_torch_index_put, obj=_obj_index_put_fn, method=True,
   rules={"a": lambda c: "g" if c.params.get("accumulate") else "index_put(g, indices, zeros_like(values))",
          "values": _index_put_values_rule},
   shown={"a": "g  (accumulate=False: index_put(g, indices, zeros_like(values)))", "values": "g[indices]"},
   linear=Linear("a, values", joint=True, batch=_index_put_batch),
   doc="a with values put (accumulate=True: added) at the index tensors (i, j, ...)",
   samples=(sample("index_put(a, (tensor([0, 2, 0]),), b*b, accumulate=True)",
                   lambda a, b: torch.index_put(a, (torch.tensor([0, 2, 0]),), b * b, True), a=In(3, 2), b=In(3, 2)),
            sample("index_put(a * 2, (tensor([0, 2, 0]),), a[1:], accumulate=True)",
                   lambda a: torch.index_put(a * 2, (torch.tensor([0, 2, 0]),), a[1:], True), a=In(4, 2)),
            sample("a.index_put((tensor([1, 0]), tensor([2, 2])), b)",
                   lambda a, b: a.index_put((torch.tensor([1, 0]), torch.tensor([2, 2])), b), a=In(2, 3), b=In(2))))

# ------------------------------------------------------------------ gather, scatter and relatives


_DIM_FIRST = dict(call_order=("a", "dim", "index", "src"), method=True)

op("scatter", "a, index, src", "dim", torch=lambda a, index, src, dim: torch.scatter(as_tensor(a), dim, index, src),
   rules={"a": lambda c: f"g.scatter({c.params['dim']}, index, zeros_like(src))",
          "src": lambda c: f"g.gather({c.params['dim']}, index)"},
   shown={"a": "g.scatter(dim, index, zeros_like(src))", "src": "g.gather(dim, index)"},
   linear=Linear("a, src", joint=True, batch=None), **_DIM_FIRST, doc="a with src written at index along dim",
   samples=(sample("scatter(a, 1, tensor([[2, 0]]), b)",
                   lambda a, b: torch.scatter(a, 1, torch.tensor([[2, 0]]), b), a=In(2, 3), b=In(1, 2)),))
op("index_select", "a, index", "dim", torch=lambda a, index, dim: torch.index_select(as_tensor(a), dim, index),
   rules={"a": lambda c: f"zeros_like(a).index_add({c.params['dim']}, index, g)"},
   shown={"a": "zeros_like(a).index_add(dim, index, g)"}, linear=Linear("a", batch=None),
   **dict(_DIM_FIRST, call_order=("a", "dim", "index")), doc="a's slices at index along dim (repeats accumulate)",
   samples=(sample("index_select(a, 1, tensor([2, 0, 2]))",
                   lambda a: torch.index_select(a, 1, torch.tensor([2, 0, 2])), a=In(2, 3)),))
op("index_add", "a, index, source", "dim, alpha=1",
   torch=lambda a, index, source, dim, alpha=1: torch.index_add(as_tensor(a), dim, index, source, alpha=alpha),
   rules={"a": "g", "source": lambda c: f"g.index_select({c.params['dim']}, index)"
          + (f"*{c.params['alpha']}" if c.params.get("alpha", 1) != 1 else "")},
   shown={"a": "g", "source": "g.index_select(dim, index)*alpha"}, linear=Linear("a, source", joint=True, batch=None),
   **dict(_DIM_FIRST, call_order=("a", "dim", "index", "source", "alpha")),
   doc="a with source's slices added at index along dim",
   samples=(sample("index_add(a, 0, tensor([1, 1, 0]), b)",
                   lambda a, b: torch.index_add(a, 0, torch.tensor([1, 1, 0]), b), a=In(2, 2), b=In(3, 2)),
            sample("a.index_add(1, tensor([0]), b, alpha=2)",
                   lambda a, b: a.index_add(1, torch.tensor([0]), b, alpha=2), a=In(2, 2), b=In(2, 1))))


def _take_rule(c: RuleContext) -> str:
    dim = c.params.get("dim")
    if dim is None:
        shape = tuple(c.shapes["a"])
        return f"zeros_like(a).reshape(-1).scatter_add(0, indices.reshape(-1), g.reshape(-1)).reshape({shape!r})"
    return f"zeros_like(a).scatter_add({dim}, indices, g)"


op("take_along_dim", "a, indices", "dim=None",
   torch=lambda a, indices, dim=None: torch.take_along_dim(as_tensor(a), indices, dim), method=True,
   positional_params=("dim",), rules={"a": _take_rule}, linear=Linear("a", batch=None),
   shown={"a": "zeros_like(a).scatter_add(dim, indices, g)"}, doc="a's elements at indices along dim (like gather)",
   samples=(sample("take_along_dim(a, tensor([[0], [2]]), 1)",
                   lambda a: torch.take_along_dim(a, torch.tensor([[0], [2]]), 1), a=In(2, 3)),
            sample("a.take_along_dim(tensor([5, 0, 5]))",
                   lambda a: a.take_along_dim(torch.tensor([5, 0, 5])), a=In(2, 3))))

# ------------------------------------------------------------------------------------------ masks


def _mask_op(name: str, fn: Callable[..., Any], infix: str, sym: str | None = None) -> None:
    op(name, "a, b", torch=fn, sym=sym, obj=None, user=False, infix=infix,
       doc=f"a {infix} b (a mask: as the condition of where, masked_fill, masked_select or an index)")


_mask_op("eq", torch.eq, "==", "sympy.Eq")
_mask_op("ne", torch.ne, "!=", "sympy.Ne")
_mask_op("logical_and", torch.logical_and, "&")
_mask_op("logical_or", torch.logical_or, "|")
_mask_op("logical_xor", torch.logical_xor, "^")
op("logical_not", "a", torch=torch.logical_not, user=False, infix="~", doc="~a: a mask negated")

op("masked_fill", "a, mask", "value", torch=lambda a, mask, value: as_tensor(a).masked_fill(mask, value), method=True,
   positional_params=("value",), rules={"a": "g.masked_fill(mask, 0)"}, linear=Linear("a", batch=None),
   doc="a with value where mask holds (mask: a comparison)",
   samples=(sample("masked_fill(a, a > 0.5, 0.0) * 3", lambda a: a.masked_fill(a > 0.5, 0.0) * 3, a=In(2, 3, domain="nz")),
            sample("a.masked_fill((b == 1) | ~(a < 0), -1) * b",
                   lambda a, b: a.masked_fill((b == 1) | ~(a < 0), -1) * b, a=In(2, 2, domain="nz"), b=In(2))))
op("masked_select", "a, mask", torch=lambda a, mask: torch.masked_select(as_tensor(a), mask), method=True,
   rules={"a": "index_put(zeros_like(a), (mask,), g, accumulate=True)"}, linear=Linear("a", batch=None),
   doc="a's elements where mask holds, as a vector",
   samples=(sample("masked_select(a, (a > 0) & (a < 1.5)) * 2",
                   lambda a: torch.masked_select(a, (a > 0) & (a < 1.5)) * 2, a=In(2, 3, domain="nz")),))

# ---------------------------------------------------------------- shape queries: static Python values


def _size_torch(a: Any, dim: int | None = None) -> Any:
    a = as_tensor(a)
    return tuple(a.size()) if dim is None else a.size(dim)


def _obj_size(a: Any, dim: int | None = None) -> Any:
    shape = obj_np().asarray(a).shape
    return tuple(shape) if dim is None else shape[dim]


op("size", "a", "dim=None", torch=_size_torch, obj=_obj_size, method=True, positional_params=("dim",), size_valued=True,
   doc="x.size(d), x.shape[d], len(x): a size (an integer; x.size() all of them)",
   value_samples=(ValueSample(("a.size(1) + len(a) * a.shape[0]", "a=ones(2, 3)", "--const", "a"), 7.0),
                  ValueSample(("a.view(a.size())", "a=[1, 2]", "--const", "a"), [1.0, 2.0])))
op("dim", "a", torch=lambda a: as_tensor(a).dim(), obj=lambda a: obj_np().asarray(a).ndim, method=True, size_valued=True,
   doc="x.dim(), x.ndim: the number of dims",
   value_samples=(ValueSample(("a.dim() * a.ndim", "a=ones(2, 3)", "--const", "a"), 4.0),))
op("item", "a", torch=lambda a: as_tensor(a).item(), method=True,
   obj=lambda a: obj_np().asarray(a, dtype=object).reshape(()), doc="x.item(): a Python number (no gradient through it)",
   samples=(sample("a * b.sum().item()", lambda a, b: a * b.sum().item(), const=("b",), a=In(3), b=In(2)),))


def _range_torch(start: int = 0, end: int | None = None, step: int = 1) -> torch.Tensor:
    return torch.arange(start, end, step)


op("range", "", "start=0, end=None, step=1", torch=_range_torch, constructor=True, user=False,
   predict=lambda shapes, p: (len(range(p.get("start", 0), p["end"], p.get("step", 1))),),
   positional_params=("start", "end", "step"),
   obj=lambda **p: obj_np().asarray(_range_torch(**p).numpy()), doc="range(n) in an index: 0..n-1 as an int64 tensor",
   value_samples=(ValueSample(("a[range(1, 3)] * 1", "a=[5, 6, 7]", "--const", "a"), [6.0, 7.0]),))


# ------------------------------------------------ the same ops over numpy object arrays (per element)


def _ints(index: Any) -> Any:
    return _index_arrays((index,))[0]


def _obj(a: Any) -> Any:
    return obj_np().array(a, dtype=object, copy=True)


def _scatter_positions(index: Any, dim: int) -> tuple:
    """Where each element of ``index`` scatters to: its own position, with ``dim`` replaced by its value."""
    np = obj_np()
    idx = _ints(index)
    pos = list(np.indices(idx.shape))
    pos[dim % max(idx.ndim, 1)] = idx
    return tuple(pos)


def _cut(src: Any, shape: tuple) -> Any:
    return obj_np().asarray(src, dtype=object)[tuple(slice(0, s) for s in shape)]


def _obj_scatter(add: bool) -> Callable[..., Any]:
    def apply(a: Any, index: Any, src: Any, dim: int) -> Any:
        np = obj_np()
        out, pos = _obj(a), _scatter_positions(index, dim)
        values = _cut(src, _ints(index).shape)
        if add:
            np.add.at(out, pos, values)
        else:
            out[pos] = values
        return out

    return apply


def _obj_index_select(a: Any, index: Any, dim: int) -> Any:
    return obj_np().take(_obj(a), _ints(index), axis=dim)


def _obj_index_add(a: Any, index: Any, source: Any, dim: int, alpha: Any = 1) -> Any:
    np = obj_np()
    out = _obj(a)
    np.add.at(np.moveaxis(out, dim, 0), _ints(index), np.moveaxis(np.asarray(source, dtype=object), dim, 0) * alpha)
    return out


def _obj_take_along_dim(a: Any, indices: Any, dim: int | None = None) -> Any:
    np = obj_np()
    if dim is None:
        return _obj(a).reshape(-1)[_ints(indices)]
    return np.take_along_axis(_obj(a), _ints(indices), axis=dim)


def _obj_masked_fill(a: Any, mask: Any, value: Any) -> Any:
    import sympy  # heavy

    np = obj_np()
    pick = np.frompyfunc(lambda m, x: sympy.Piecewise((value, m), (x, True)), 2, 1)
    return pick(np.asarray(mask, dtype=object), _obj(a))


for _name, _fn in (("scatter", _obj_scatter(False)), ("index_select", _obj_index_select), ("index_add", _obj_index_add),
                   ("take_along_dim", _obj_take_along_dim), ("masked_fill", _obj_masked_fill)):
    REGISTRY[_name].obj = with_slots(_fn)
