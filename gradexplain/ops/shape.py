"""Shapes and views: ``t transpose reshape view unsqueeze squeeze expand_as stack cat``."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ..ir import Call
from .spec import In, Linear, Outputs, RuleContext, Shape, as_tensor, obj_np, op, sample


def _t_torch(a: Any, attr: bool = True) -> torch.Tensor:
    a = as_tensor(a)  # x.T is a permute in torch (PermuteBackward0), x.t() is TBackward0
    return a if a.dim() < 2 else a.permute(1, 0) if attr else a.t()


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


def _legacy_empty(shape: Shape) -> bool:
    """torch.cat skips a 1-D tensor with no elements next to tensors of any shape (legacy ``[0]``)."""
    return len(shape) == 1 and shape[0] == 0


def _atleast(shape: Shape, nd: int) -> Shape:
    """torch.atleast_1d / atleast_2d's shape: a 0-d tensor is (1,) or (1, 1), a vector (1, n)."""
    return shape if len(shape) >= nd else (1,) * (nd - len(shape)) + shape


def _joined_dim(shapes: list[Shape], dim: int) -> int:
    """The normalised dim along which cat joins these shapes (legacy empties do not count)."""
    kept = [s for s in shapes if not _legacy_empty(s)]
    return dim % max(len(kept[0]) if kept else 1, 1)


def _part_text(c: RuleContext, i: int, shapes: list[Shape], dim: int) -> str:
    """The slice of g that was tensor i of a concatenation of ``shapes`` (each as cat saw it) along
    ``dim``, reshaped back to tensor i's own shape; a legacy empty (skipped) gets its own empty zeros."""
    if _legacy_empty(shapes[i]):
        return f"zeros_like(t{i})"
    start = sum(s[dim] for s in shapes[:i] if not _legacy_empty(s))
    stop = start + shapes[i][dim]
    part = f"g[{', '.join([':'] * dim + [f'{start}:{stop}'])}]"
    own = c.shapes[f"t{i}"]
    return part if tuple(shapes[i]) == tuple(own) else f"{part}.reshape({tuple(own)})"


def _cat_rule(i: int) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        shapes = _shapes_of(c)
        return _part_text(c, i, shapes, _joined_dim(shapes, c.params.get("dim", 0)))

    return rule


def _shapes_of(c: RuleContext) -> list[Shape]:
    return [c.shapes[f"t{j}"] for j in range(len(c.shapes))]


def _obj_stack(*ts: Any, dim: int = 0) -> Any:
    np = obj_np()
    return np.stack([np.asarray(t, dtype=object) for t in ts], axis=dim)


def _obj_cat(*ts: Any, dim: int = 0) -> Any:
    """np.concatenate with torch's legacy rule: 1-D empties are left out next to other tensors."""
    np = obj_np()
    arrays = [np.asarray(t, dtype=object) for t in ts]
    kept = [a for a in arrays if not _legacy_empty(a.shape)] or arrays[:1]
    return np.concatenate(kept, axis=_joined_dim([a.shape for a in kept], dim))


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


# ------------------------------------------------------------------ permuting, flipping, rolling


def _nd(c: RuleContext) -> int:
    return max(c.ndim("a"), 1)


def _dims(dims: Any, nd: int) -> tuple[int, ...]:
    return tuple(d % nd for d in (dims if isinstance(dims, (tuple, list)) else (dims,)))


def _lead_batch(params: Callable[[dict[str, Any], int, int], dict[str, Any]]) -> Callable[..., Any]:
    """A batching function: the same op on K (the direction's ``L`` dims in front), params from ``params``."""

    def batch(node: Call, ks: list[Any], lead: Shape, shape: Callable[[Any], Shape]) -> Any:
        nd = max(len(shape(node.args[0])), 1)
        return Call(node.op, (ks[0], *node.args[1:]), params(dict(node.params), len(lead), nd))

    return batch


def _permute_inverse(c: RuleContext) -> str:
    dims = _dims(c.params["dims"], _nd(c))
    inverse = sorted(range(len(dims)), key=lambda i: dims[i])
    return f"g.permute({tuple(inverse)!r})"  # (()) for a 0-d a: g.permute() would name no dims


op("permute", "a", "dims", torch=lambda a, dims: as_tensor(a).permute(dims), method=True, positional_params=("dims",),
   varargs_param="dims", rules={"a": _permute_inverse}, shown={"a": "g.permute(inverse of dims)"},
   linear=Linear("a", batch=_lead_batch(lambda p, L, nd: dict(p, dims=tuple(range(L)) + tuple(d + L for d in _dims(p["dims"], nd))))),
   obj=lambda a, dims: obj_np().transpose(obj_np().asarray(a, dtype=object), dims), doc="reorder the dims",
   samples=(sample("a.permute(2, 0, 1) * b", lambda a, b: a.permute(2, 0, 1) * b, a=In(2, 3, 2), b=In(2, 2, 3)),
            sample("torch.permute(a, (1, 0))", lambda a: torch.permute(a, (1, 0)), a=In(2, 3))))
op("movedim", "a", "source, destination", torch=lambda a, source, destination: as_tensor(a).movedim(source, destination),
   method=True, positional_params=("source", "destination"),
   rules={"a": lambda c: f"g.movedim({c.params['destination']}, {c.params['source']})"},
   shown={"a": "g.movedim(destination, source)"}, linear=Linear("a", batch="dims", dims=("source", "destination")),
   obj=lambda a, source, destination: obj_np().moveaxis(obj_np().asarray(a, dtype=object), source, destination),
   doc="move dims to new positions (PermuteBackward0)",
   samples=(sample("a.movedim(0, 2)", lambda a: a.movedim(0, 2), a=In(2, 3, 2)),
            sample("movedim(a, (0, 1), (2, 0))", lambda a: torch.movedim(a, (0, 1), (2, 0)), a=In(2, 3, 2))))
op("flip", "a", "dims", torch=lambda a, dims: as_tensor(a).flip(dims), method=True, positional_params=("dims",),
   varargs_param="dims", rules={"a": lambda c: f"g.flip({_dims(c.params['dims'], _nd(c))})"},
   shown={"a": "g.flip(dims)"}, linear=Linear("a", batch="dims", dims=("dims",)),
   obj=lambda a, dims: obj_np().flip(obj_np().asarray(a, dtype=object), dims), doc="reverse the order along dims",
   samples=(sample("a.flip(0) * b", lambda a, b: a.flip(0) * b, a=In(2, 3), b=In(2, 3)),
            sample("torch.flip(a, (0, -1))", lambda a: torch.flip(a, (0, -1)), a=In(2, 2, 3))))
op("fliplr", "a", torch=lambda a: torch.fliplr(as_tensor(a)), method=True, rules={"a": "g.fliplr()"},
   linear=Linear("a", batch=lambda node, ks, lead, shape: Call("flip", (ks[0],), {"dims": (len(lead) + 1,)})),
   obj=lambda a: obj_np().fliplr(obj_np().asarray(a, dtype=object)), doc="reverse the columns (dim 1)",
   samples=(sample("fliplr(a) * b", lambda a, b: torch.fliplr(a) * b, a=In(2, 3), b=In(3)),))
op("flipud", "a", torch=lambda a: torch.flipud(as_tensor(a)), method=True, rules={"a": "g.flipud()"},
   linear=Linear("a", batch=lambda node, ks, lead, shape: Call("flip", (ks[0],), {"dims": (len(lead),)})),
   obj=lambda a: obj_np().flipud(obj_np().asarray(a, dtype=object)), doc="reverse the rows (dim 0)",
   samples=(sample("flipud(a) * b", lambda a, b: torch.flipud(a) * b, a=In(2, 3), b=In(3)),))


def _neg(v: Any) -> Any:
    return tuple(-x for x in v) if isinstance(v, (tuple, list)) else -v


def _roll_rule(c: RuleContext) -> str:
    dims = c.params.get("dims")
    return f"g.roll({_neg(c.params['shifts'])!r}" + ("" if dims is None else f", {dims!r}") + ")"


def _roll_batch(node: Call, ks: list[Any], lead: Shape, shape: Callable[[Any], Shape]) -> Any:
    nd, L, p = max(len(shape(node.args[0])), 1), len(lead), node.params
    if p.get("dims") is None:  # a roll of the flattened tensor
        flat = Call("reshape", (ks[0],), {"shape": tuple(lead) + (-1,)})
        rolled = Call("roll", (flat,), {"shifts": p["shifts"], "dims": L})
        return Call("reshape", (rolled,), {"shape": tuple(lead) + shape(node.args[0])})
    dims = tuple(d + L for d in _dims(p["dims"], nd))
    return Call("roll", (ks[0],), {"shifts": p["shifts"], "dims": dims if isinstance(p["dims"], (tuple, list)) else dims[0]})


def _obj_roll(a: Any, shifts: Any, dims: Any = None) -> Any:
    np = obj_np()
    return np.roll(np.asarray(a, dtype=object), shifts, axis=dims)


op("roll", "a", "shifts, dims=None", torch=lambda a, shifts, dims=None: torch.roll(as_tensor(a), shifts, dims if dims is not None else ()),
   method=True, positional_params=("shifts", "dims"), rules={"a": _roll_rule}, shown={"a": "g.roll(-shifts, dims)"},
   linear=Linear("a", batch=_roll_batch), obj=_obj_roll, doc="shift elements cyclically along dims (or flattened)",
   samples=(sample("a.roll(1) * b", lambda a, b: a.roll(1) * b, a=In(2, 3), b=In(2, 3)),
            sample("roll(a, (1, -1), (0, 1))", lambda a: torch.roll(a, (1, -1), (0, 1)), a=In(2, 3)),
            sample("a.roll(2, dims=-1)", lambda a: a.roll(2, dims=-1), a=In(2, 3))))

# ------------------------------------------------------------------------------- flatten, expand


op("flatten", "a", "start_dim=0, end_dim=-1", torch=lambda a, start_dim=0, end_dim=-1: as_tensor(a).flatten(start_dim, end_dim),
   method=True, positional_params=("start_dim", "end_dim"), rules={"a": _shape_rule}, shown={"a": "g.reshape(a.shape)"},
   linear=_RESHAPE, obj=lambda a, start_dim=0, end_dim=-1: obj_np().reshape(
       obj_np().asarray(a, dtype=object), tuple(torch.empty(obj_np().asarray(a).shape).flatten(start_dim, end_dim).shape)),
   doc="merge dims start_dim..end_dim into one",
   samples=(sample("a.flatten() * b", lambda a, b: a.flatten() * b, a=In(2, 3), b=In(6)),
            sample("flatten(a, 1)", lambda a: torch.flatten(a, 1), a=In(2, 2, 3))))
op("unflatten", "a", "dim, sizes", torch=lambda a, dim, sizes: as_tensor(a).unflatten(dim, sizes), method=True,
   positional_params=("dim", "sizes"), rules={"a": _shape_rule}, shown={"a": "g.reshape(a.shape)"}, linear=_RESHAPE,
   obj=lambda a, dim, sizes: obj_np().reshape(
       obj_np().asarray(a, dtype=object), tuple(torch.empty(obj_np().asarray(a).shape).unflatten(dim, sizes).shape)),
   doc="split dim into sizes", samples=(sample("a.unflatten(1, (2, 2))", lambda a: a.unflatten(1, (2, 2)), a=In(2, 4)),))


def _expand_shape(shapes: list[Shape], p: dict[str, Any]) -> Shape:
    sizes = tuple(p["size"]) if isinstance(p["size"], (tuple, list)) else (p["size"],)
    src = (1,) * (len(sizes) - len(shapes[0])) + tuple(shapes[0])
    return tuple(s if n == -1 else n for n, s in zip(sizes, src))


op("expand", "a", "size", torch=lambda a, size: as_tensor(a).expand(size), method=True, positional_params=("size",),
   varargs_param="size", rules={"a": "g"}, shown={"a": "g  (summed back over the expanded dims)"},
   linear=Linear("a", batch="broadcast"), predict=_expand_shape,
   obj=lambda a, size: obj_np().broadcast_to(obj_np().asarray(a, dtype=object),
                                             _expand_shape([obj_np().asarray(a).shape], {"size": size})).copy(),
   doc="broadcast to size (-1 keeps a dim)",
   samples=(sample("a.expand(2, 3) * b", lambda a, b: a.expand(2, 3) * b, a=In(3), b=In(2, 3)),
            sample("a.expand(2, -1, 3)", lambda a: a.expand(2, -1, 3), a=In(2, 1))))


def _repeat_shape(shape: Shape, sizes: Any) -> Shape:
    sizes = tuple(sizes) if isinstance(sizes, (tuple, list)) else (sizes,)
    n = max(len(sizes), len(shape))
    return tuple(r * s for r, s in zip((1,) * (n - len(sizes)) + sizes, (1,) * (n - len(shape)) + tuple(shape)))


def _repeat_rule(c: RuleContext) -> str:
    """Each copy's gradient added up: g as (r0, s0, r1, s1, ...), summed over the r's."""
    shape = c.shapes["a"]
    sizes = c.params.get("sizes") if c.params.get("sizes") is not None else c.params["dims"]
    sizes = tuple(sizes) if isinstance(sizes, (tuple, list)) else (sizes,)
    n = max(len(sizes), len(shape))
    sizes = (1,) * (n - len(sizes)) + sizes
    full = (1,) * (n - len(shape)) + tuple(shape)
    split = ", ".join(f"{r}, {s}" for r, s in zip(sizes, full))
    summed = tuple(range(0, 2 * n, 2))
    return f"g.reshape({split}).sum({summed}).reshape({tuple(shape)!r})"


def _repeat_batch(param: str) -> Callable[..., Any]:
    def batch(node: Call, ks: list[Any], lead: Shape, shape: Callable[[Any], Shape]) -> Any:
        s = shape(node.args[0])
        sizes = node.params[param]
        sizes = tuple(sizes) if isinstance(sizes, (tuple, list)) else (sizes,)
        n = max(len(sizes), len(s))
        k = Call("reshape", (ks[0],), {"shape": tuple(lead) + (1,) * (n - len(s)) + tuple(s)})
        return Call("repeat", (k,), {"sizes": (1,) * len(lead) + (1,) * (n - len(sizes)) + sizes})

    return batch


def _obj_tile(a: Any, sizes: Any = None, dims: Any = None) -> Any:
    np = obj_np()
    return np.tile(np.asarray(a, dtype=object), sizes if sizes is not None else dims)


op("repeat", "a", "sizes", torch=lambda a, sizes: as_tensor(a).repeat(sizes), method=True, positional_params=("sizes",),
   varargs_param="sizes", rules={"a": _repeat_rule}, shown={"a": "g.reshape(r0, s0, r1, s1, ...).sum((0, 2, ...))"},
   linear=Linear("a", batch=_repeat_batch("sizes")), obj=_obj_tile,
   predict=lambda shapes, p: _repeat_shape(shapes[0], p["sizes"]),
   doc="tile copies of a (sizes per dim)",
   samples=(sample("a.repeat(2, 1) * b", lambda a, b: a.repeat(2, 1) * b, a=In(2, 3), b=In(4, 3)),
            sample("a.repeat(2, 1, 2)", lambda a: a.repeat(2, 1, 2), a=In(2, 2))))
op("tile", "a", "dims", torch=lambda a, dims: as_tensor(a).tile(dims), method=True, positional_params=("dims",),
   varargs_param="dims", rules={"a": _repeat_rule}, shown={"a": "g.reshape(r0, s0, r1, s1, ...).sum((0, 2, ...))"},
   linear=Linear("a", batch=_repeat_batch("dims")), obj=_obj_tile, doc="tile copies of a (RepeatBackward0)",
   predict=lambda shapes, p: _repeat_shape(shapes[0], p["dims"]),
   samples=(sample("a.tile(2) * b", lambda a, b: a.tile(2) * b, a=In(2, 3), b=In(2, 6)),
            sample("torch.tile(a, (2, 1, 1))", lambda a: torch.tile(a, (2, 1, 1)), a=In(3))))


def _interleave_rule(c: RuleContext) -> str:
    shape, r, dim = c.shapes["a"], c.params["repeats"], c.params.get("dim")
    if dim is None:
        return f"g.reshape(-1, {r}).sum(1).reshape({tuple(shape)!r})"
    d = dim % _nd(c)
    split = ", ".join(map(str, (*shape[:d], shape[d], r, *shape[d + 1:])))
    return f"g.reshape({split}).sum({d + 1})"


def _interleave_batch(node: Call, ks: list[Any], lead: Shape, shape: Callable[[Any], Shape]) -> Any:
    p, L, s = node.params, len(lead), shape(node.args[0])
    if p.get("dim") is None:
        flat = Call("reshape", (ks[0],), {"shape": tuple(lead) + (-1,)})
        return Call("repeat_interleave", (flat,), {"repeats": p["repeats"], "dim": L})
    return Call("repeat_interleave", (ks[0],), {"repeats": p["repeats"], "dim": p["dim"] % max(len(s), 1) + L})


def _interleave_shape(shapes: list[Shape], p: dict[str, Any]) -> Shape:
    shape, dim = list(shapes[0]), p.get("dim")
    if dim is None:
        return (math.prod(shape) * p["repeats"],)
    shape[dim] *= p["repeats"]
    return tuple(shape)


op("repeat_interleave", "a", "repeats, dim=None", predict=_interleave_shape,
   torch=lambda a, repeats, dim=None: as_tensor(a).repeat_interleave(repeats, dim=dim), method=True,
   positional_params=("repeats", "dim"), rules={"a": _interleave_rule}, shown={"a": "g as (..., n, repeats, ...) summed over repeats"},
   linear=Linear("a", batch=_interleave_batch),
   obj=lambda a, repeats, dim=None: obj_np().repeat(obj_np().asarray(a, dtype=object), repeats, axis=dim),
   doc="repeat each element (integer repeats)",
   samples=(sample("a.repeat_interleave(2, dim=0) * b", lambda a, b: a.repeat_interleave(2, dim=0) * b,
                   a=In(2, 3), b=In(4, 3)),
            sample("repeat_interleave(a, 3)", lambda a: torch.repeat_interleave(a, 3), a=In(2, 2))))

# --------------------------------------------------------------------- triangles and diagonals


def _same_on_k(node: Call, ks: list[Any], lead: Shape, shape: Callable[[Any], Shape]) -> Any:
    """An op on the last dims (tril, triu, diag_embed with negative dims): K's leading dims are batch dims."""
    return Call(node.op, (ks[0], *node.args[1:]), node.params)


def _obj_tri(lower: bool) -> Callable[..., Any]:
    def apply(a: Any, diagonal: int = 0) -> Any:
        np = obj_np()
        a = np.asarray(a, dtype=object)
        rows, cols = a.shape[-2:]
        keep = np.tril(np.ones((rows, cols), dtype=bool), diagonal) if lower else np.triu(np.ones((rows, cols), dtype=bool), diagonal)
        return np.where(keep, a, 0).astype(object)

    return apply


def _tri_op(name: str, fn: Callable[..., torch.Tensor], lower: bool) -> None:
    op(name, "a", "diagonal=0", torch=lambda a, diagonal=0: fn(as_tensor(a), diagonal),
       method=True, positional_params=("diagonal",), rules={"a": lambda c: f"g.{name}({c.params.get('diagonal', 0)})"},
       shown={"a": f"g.{name}(diagonal)"}, linear=Linear("a", batch=_same_on_k), obj=_obj_tri(lower),
       doc=f"{'lower' if lower else 'upper'} triangle of the last two dims (others zero)",
       samples=(sample(f"a.{name}() * b", lambda a, b: fn(a) * b, a=In(3, 3), b=In(3, 3)),
                sample(f"torch.{name}(a, -1)", lambda a: fn(a, -1), a=In(2, 3, 4)),
                sample(f"{name}(a, diagonal=1)", lambda a: fn(a, diagonal=1), a=In(3, 2))))


_tri_op("tril", torch.tril, True)
_tri_op("triu", torch.triu, False)


def _obj_diagonal(a: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Any:
    np = obj_np()
    return np.diagonal(np.asarray(a, dtype=object), offset, dim1, dim2).copy()


def _obj_diagonal_scatter(a: Any, src: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Any:
    np = obj_np()
    out = np.array(a, dtype=object, copy=True)
    moved = np.moveaxis(out, (dim1, dim2), (-2, -1))
    rows, cols = moved.shape[-2:]
    i = np.arange(max(0, -offset), min(rows, cols - offset))
    moved[..., i, i + offset] = np.asarray(src, dtype=object)
    return out


_DIAG_DIMS = "offset=0, dim1=0, dim2=1"


def _diag_params(c: RuleContext) -> str:
    p = c.params
    return f"{p.get('offset', 0)}, {p.get('dim1', 0)}, {p.get('dim2', 1)}"


op("diagonal", "a", _DIAG_DIMS, torch=lambda a, offset=0, dim1=0, dim2=1: torch.diagonal(as_tensor(a), offset, dim1, dim2),
   method=True, positional_params=("offset", "dim1", "dim2"),
   rules={"a": lambda c: f"diagonal_scatter(zeros_like(a), g, {_diag_params(c)})"},
   shown={"a": "diagonal_scatter(zeros_like(a), g, offset, dim1, dim2)"},
   linear=Linear("a", batch=_lead_batch(lambda p, L, nd: dict(p, dim1=p.get("dim1", 0) % nd + L,
                                                              dim2=p.get("dim2", 1) % nd + L))), obj=_obj_diagonal,
   doc="the diagonal (offset) of dims dim1, dim2, as the last dim",
   samples=(sample("a.diagonal() * b", lambda a, b: a.diagonal() * b, a=In(3, 3), b=In(3)),
            sample("torch.diagonal(a, 1, 1, 2)", lambda a: torch.diagonal(a, 1, 1, 2), a=In(2, 3, 3))))
op("diagonal_scatter", "a, src", _DIAG_DIMS,
   torch=lambda a, src, offset=0, dim1=0, dim2=1: torch.diagonal_scatter(as_tensor(a), src, offset, dim1, dim2),
   method=True, positional_params=("offset", "dim1", "dim2"),
   rules={"a": lambda c: f"diagonal_scatter(g, zeros_like(src), {_diag_params(c)})",
          "src": lambda c: f"g.diagonal({_diag_params(c)})"},
   shown={"a": "diagonal_scatter(g, zeros_like(src), offset, dim1, dim2)", "src": "g.diagonal(offset, dim1, dim2)"},
   linear=Linear("a, src", joint=True, batch=None), obj=_obj_diagonal_scatter, doc="a with its diagonal set to src",
   samples=(sample("diagonal_scatter(a, b*b)", lambda a, b: torch.diagonal_scatter(a, b * b), a=In(2, 2), b=In(2)),))


def _diag_rule(c: RuleContext) -> str:
    k = c.params.get("diagonal", 0)
    return f"g.diagonal({k})" if c.ndim("a") == 1 else f"diagonal_scatter(zeros_like(a), g, {k})"


def _obj_diag(a: Any, diagonal: int = 0) -> Any:
    np = obj_np()
    a = np.asarray(a, dtype=object)
    if a.ndim == 2:
        return np.diagonal(a, diagonal).copy()
    n = a.shape[0] + abs(diagonal)
    out = np.zeros((n, n), dtype=object)
    i = np.arange(a.shape[0])
    out[i + max(0, -diagonal), i + max(0, diagonal)] = a
    return out


op("diag", "a", "diagonal=0", predict=lambda shapes, p: (shapes[0][0] + abs(p.get("diagonal", 0)),) * 2
   if len(shapes[0]) == 1 else (min(shapes[0]),), torch=lambda a, diagonal=0: torch.diag(as_tensor(a), diagonal), method=True,
   positional_params=("diagonal",), rules={"a": _diag_rule},
   shown={"a": "g.diagonal(k)  (2-D a: diagonal_scatter(zeros_like(a), g, k))"}, linear=Linear("a", batch=None),
   obj=_obj_diag, doc="vector → diagonal matrix, matrix → its diagonal",
   samples=(sample("diag(a) * b", lambda a, b: torch.diag(a) * b, a=In(3), b=In(3, 3)),
            sample("a.diag(1)", lambda a: a.diag(1), a=In(3, 3))))


def _obj_diag_embed(a: Any, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Any:
    np = obj_np()
    a = np.asarray(a, dtype=object)
    n = a.shape[-1] + abs(offset)
    out = np.zeros(a.shape[:-1] + (n, n), dtype=object)
    i = np.arange(a.shape[-1])
    out[..., i + max(0, -offset), i + max(0, offset)] = a
    return np.moveaxis(out, (-2, -1), (dim1, dim2)) if (dim1, dim2) != (-2, -1) else out


op("diag_embed", "a", "offset=0, dim1=-2, dim2=-1",
   predict=lambda shapes, p: (*shapes[0][:-1], shapes[0][-1] + abs(p.get("offset", 0)), shapes[0][-1] + abs(p.get("offset", 0))),
   torch=lambda a, offset=0, dim1=-2, dim2=-1: torch.diag_embed(as_tensor(a), offset, dim1, dim2), method=True,
   positional_params=("offset", "dim1", "dim2"),
   rules={"a": lambda c: f"g.diagonal({c.params.get('offset', 0)}, {c.params.get('dim1', -2)}, {c.params.get('dim2', -1)})"},
   shown={"a": "g.diagonal(offset, dim1, dim2)"}, linear=Linear("a", batch=_same_on_k), obj=_obj_diag_embed,
   doc="the last dim as diagonals of new matrices",
   samples=(sample("diag_embed(a) * b", lambda a, b: torch.diag_embed(a) * b, a=In(2, 3), b=In(3, 3)),
            sample("a.diag_embed(1)", lambda a: a.diag_embed(1), a=In(2))))

# ----------------------------------------------------------------------- narrow, pad, unfold


def _pad_back(c: RuleContext, pads: list[tuple[int, int]]) -> str:
    """g with the padded borders cut off: ``g[:, l:n-r]`` (pads: (left, right) per dim, from the first)."""
    parts = [":" if (l, r) == (0, 0) else f"{l}:{n + l}" for (l, r), n in zip(pads, c.shapes["a"])]
    while parts and parts[-1] == ":":
        parts.pop()
    return f"g[{', '.join(parts)}]" if parts else "g"


def _narrow_rule(c: RuleContext) -> str:
    nd, p = _nd(c), c.params
    d, start, length = p["dim"] % nd, p["start"] % c.shapes["a"][p["dim"] % nd], p["length"]
    n = c.shapes["a"][d]
    pad = [0, 0] * (nd - 1 - d) + [start, n - start - length]
    return f"pad(g, {tuple(pad)})"


op("narrow", "a", "dim, start, length",
   torch=lambda a, dim, start, length: as_tensor(a).narrow(dim, start, length), method=True,
   positional_params=("dim", "start", "length"), rules={"a": _narrow_rule}, shown={"a": "pad(g, (..., start, n - start - length))"},
   linear=Linear("a", batch="dims", dims=("dim",)),
   obj=lambda a, dim, start, length: obj_np().asarray(a, dtype=object)[(slice(None),) * (dim % obj_np().asarray(a).ndim)
                                                                        + (slice(start, start + length),)],
   doc="length elements from start along dim (SliceBackward0)",
   samples=(sample("a.narrow(1, 1, 2) * b", lambda a, b: a.narrow(1, 1, 2) * b, a=In(2, 4), b=In(2, 2)),
            sample("torch.narrow(a, 0, 0, 1)", lambda a: torch.narrow(a, 0, 0, 1), a=In(2, 3))))


def _pads(c: RuleContext) -> list[tuple[int, int]]:
    """Per dim of a, from the first: (before, after), from F.pad's (last_left, last_right, ...)."""
    pad = list(c.params["pad"])
    nd = c.ndim("a")
    out = [(0, 0)] * nd
    for i in range(len(pad) // 2):
        out[nd - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return out


def _source_index(mode: str, n: int, before: int, after: int) -> list[int]:
    """For each position of the padded dim, the element of a it copies (reflect, replicate, circular)."""
    out = []
    for j in range(-before, n + after):
        if mode == "reflect":
            period = 2 * (n - 1)
            k = j % period if period else 0
            out.append(k if k < n else period - k)
        elif mode == "replicate":
            out.append(min(max(j, 0), n - 1))
        else:
            out.append(j % n)
    return out


def _pad_rule(c: RuleContext) -> str:
    mode = c.params.get("mode", "constant")
    pads = _pads(c)
    if mode == "constant":
        return _pad_back(c, pads)
    text, shape = "g", list(c.shapes["a"])
    for d, (before, after) in enumerate(pads):  # each padded dim: add every copy back onto its source
        if (before, after) == (0, 0):
            continue
        n = shape[d]
        target = list(c.out_shape)
        for e in range(d):
            target[e] = shape[e]
        target[d] = n
        index = _source_index(mode, n, before, after)
        text = f"zeros({', '.join(map(str, target))}).index_add({d}, tensor({index}), {text})"
    return text


def _torch_pad(a: Any, pad: Any, mode: str = "constant", value: Any = None) -> torch.Tensor:
    import torch.nn.functional as F  # heavy (already loaded with torch)

    return F.pad(as_tensor(a), tuple(pad), mode=mode, value=value)


def _obj_pad(a: Any, pad: Any, mode: str = "constant", value: Any = None) -> Any:
    np = obj_np()
    a = np.asarray(a, dtype=object)
    nd = a.ndim
    widths = [(0, 0)] * nd
    for i in range(len(pad) // 2):
        widths[nd - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        import sympy  # heavy

        return np.pad(a, widths, mode="constant", constant_values=sympy.Integer(0) if value is None else value)
    out = a
    for d, (before, after) in enumerate(widths):
        if (before, after) != (0, 0):
            out = np.take(out, _source_index(mode, a.shape[d], before, after), axis=d)
    return out


def _pad_batch(node: Call, ks: list[Any], lead: Shape, shape: Callable[[Any], Shape]) -> Any:
    """F.pad pads the last dims: the direction's dims merge into a's first one when that is not padded
    (reflect and friends want a batch dim there), else go in front; the same pad runs, then they split again."""
    a_shape = shape(node.args[0])
    padded_dims = len(node.params["pad"]) // 2
    batch = (-1, *a_shape[1:]) if padded_dims < len(a_shape) else (-1, *a_shape)  # never pad the direction's dims
    merged = Call("reshape", (ks[0],), {"shape": batch})
    padded = Call("pad", (merged,), node.params)
    return Call("reshape", (padded,), {"shape": tuple(lead) + shape(node)})


def _pad_shape(shapes: list[Shape], p: dict[str, Any]) -> Shape:
    shape, pad = list(shapes[0]), list(p["pad"])
    for i in range(len(pad) // 2):
        shape[len(shape) - 1 - i] += pad[2 * i] + pad[2 * i + 1]
    return tuple(shape)


op("pad", "a", "pad, mode='constant', value=None", torch=_torch_pad, positional_params=("pad", "mode", "value"),
   predict=_pad_shape,
   rules={"a": _pad_rule}, shown={"a": "g[l:n+l, ...] (constant); zeros(a.shape).index_add(d, source index, g) (reflect, "
                                       "replicate, circular)"},
   linear=Linear("a", batch=_pad_batch), obj=_obj_pad,
   doc="F.pad: borders (last dim first) filled with value, or reflect/replicate/circular copies",
   samples=(sample("pad(a, (1, 2)) * b", lambda a, b: F_pad(a, (1, 2)) * b, a=In(2, 3), b=In(2, 6)),
            sample("F.pad(a, (0, 1, 1, 0), value=2.5)", lambda a: F_pad(a, (0, 1, 1, 0), value=2.5), a=In(2, 2)),
            sample("F.pad(a, (2, 1), mode='reflect')", lambda a: F_pad(a, (2, 1), mode="reflect"), a=In(1, 2, 4)),
            sample("F.pad(a, (1, 2), 'replicate')", lambda a: F_pad(a, (1, 2), "replicate"), a=In(1, 2, 3)),
            sample("F.pad(a, (1, 1, 2, 0), mode='circular')", lambda a: F_pad(a, (1, 1, 2, 0), mode="circular"),
                   a=In(1, 2, 3)),
            sample("F.pad(a, (1, 1, 1, 1), mode='reflect')", lambda a: F_pad(a, (1, 1, 1, 1), mode="reflect"),
                   a=In(1, 3, 3))))


def F_pad(a: torch.Tensor, pad: tuple, mode: str = "constant", value: Any = None) -> torch.Tensor:
    import torch.nn.functional as F  # heavy

    return F.pad(a, pad, mode=mode, value=value)


def _unfold_rule(c: RuleContext) -> str:
    """Each window's gradient added back at its source positions (a 0-d a is one window of itself)."""
    if not c.ndim("a"):
        return "g.reshape(())"
    p, nd = c.params, _nd(c)
    d, size, step = p["dimension"] % nd, p["size"], p["step"]
    count = c.out_shape[d]
    index = [i * step + j for i in range(count) for j in range(size)]
    return f"zeros_like(a).index_add({d}, tensor({index}), g.movedim(-1, {d + 1}).flatten({d}, {d + 1}))"


def _obj_unfold(a: Any, dimension: int, size: int, step: int) -> Any:
    np = obj_np()
    a = np.asarray(a, dtype=object)
    if not a.ndim:  # torch unfolds a 0-d tensor as one element: one window of size 1
        return a.reshape(1)
    d = dimension % a.ndim
    count = (a.shape[d] - size) // step + 1
    windows = [np.take(a, range(i * step, i * step + size), axis=d) for i in range(count)]
    return np.moveaxis(np.stack(windows, axis=d), d + 1, -1)


op("unfold", "a", "dimension, size, step", torch=lambda a, dimension, size, step: as_tensor(a).unfold(dimension, size, step),
   method=True, positional_params=("dimension", "size", "step"), rules={"a": _unfold_rule},
   shown={"a": "zeros_like(a).index_add(dim, window positions, g with the window dim moved back)"},
   linear=Linear("a", batch=None), obj=_obj_unfold, doc="sliding windows of size along dimension (a new last dim)",
   samples=(sample("a.unfold(1, 2, 1) * b", lambda a, b: a.unfold(1, 2, 1) * b, a=In(2, 4), b=In(2, 3, 2)),
            sample("a.unfold(0, 2, 2)", lambda a: a.unfold(0, 2, 2), a=In(5, 2))))

# ----------------------------------------------------------------- clone, detach, hstack, vstack


op("clone", "a", torch=lambda a: as_tensor(a).clone(), method=True, rules={"a": "g"}, linear=Linear("a", batch="elementwise"),
   obj=lambda a: obj_np().array(a, dtype=object, copy=True), doc="a copy (CloneBackward0)",
   samples=(sample("a.clone() * a", lambda a: a.clone() * a, a=In(2, 3)),
            sample("torch.clone(a) * 2", lambda a: torch.clone(a) * 2, a=In(3))))
op("detach", "a", torch=lambda a: as_tensor(a).detach(), method=True,
   obj=lambda a: obj_np().array(a, dtype=object, copy=True),
   doc="a, cut off the graph: a constant from here on (no grad_fn, no gradient through it)",
   samples=(sample("a.detach() * b", lambda a, b: a.detach() * b, const=("a",), a=In(2, 3), b=In(2, 3)),))


def _hstack_dim(shapes: list[Shape]) -> int:
    """torch.hstack joins along dim 0 when its first tensor is (at least) 1-D, else along dim 1."""
    return 0 if len(_atleast(shapes[0], 1)) == 1 else 1


def _hstack_rule(i: int) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        shapes = [_atleast(s, 1) for s in _shapes_of(c)]
        return _part_text(c, i, shapes, _hstack_dim(shapes))

    return rule


def _vstack_rule(i: int) -> Callable[[RuleContext], str]:
    return lambda c: _part_text(c, i, [_atleast(s, 2) for s in _shapes_of(c)], 0)


def _obj_hstack(*ts: Any) -> Any:
    np = obj_np()
    arrays = [np.atleast_1d(np.asarray(t, dtype=object)) for t in ts]
    return _obj_cat(*arrays, dim=_hstack_dim([a.shape for a in arrays]))


op("hstack", "", torch=lambda *ts: torch.hstack([as_tensor(t) for t in ts]), variadic=True, variadic_rule=_hstack_rule,
   obj=_obj_hstack,
   shown={"t_i": "g[:, start_i:end_i] (1-D: g[start_i:end_i])"}, linear=Linear("*", joint=True, batch=None),
   doc="concatenate along dim 1 (1-D tensors: dim 0)",
   samples=(sample("hstack([a, b*b])", lambda a, b: torch.hstack([a, b * b]), a=In(2, 1), b=In(2, 2)),
            sample("torch.hstack([a, a])", lambda a: torch.hstack([a, a]), a=In(3))))
op("vstack", "", torch=lambda *ts: torch.vstack([as_tensor(t) for t in ts]), variadic=True, variadic_rule=_vstack_rule,
   obj=lambda *ts: obj_np().vstack([obj_np().asarray(t, dtype=object) for t in ts]),
   shown={"t_i": "g[start_i:end_i] (1-D: as a row)"}, linear=Linear("*", joint=True, batch=None),
   doc="stack rows: concatenate along dim 0 (1-D tensors as rows)",
   samples=(sample("vstack([a, b*b])", lambda a, b: torch.vstack([a, b * b]), a=In(3), b=In(2, 3)),))

# ------------------------------------------- split, chunk, unbind: several outputs, one op per index


def _part_bounds(c: RuleContext, sizes: list[int]) -> tuple[int, int, int]:
    """(dim, start, stop) of output ``index`` along dim, from the sizes of all the parts."""
    d = c.params.get("dim", 0) % _nd(c)
    i = c.params["index"]
    return d, sum(sizes[:i]), sum(sizes[:i + 1])


def _pad_along(c: RuleContext, g: str, d: int, start: int, stop: int) -> str:
    """``g`` with zeros around it along dim d, so that it covers start:stop of a's dim d."""
    n = c.shapes["a"][d]
    pad = [0, 0] * (_nd(c) - 1 - d) + [start, n - stop]
    return f"pad({g}, {tuple(pad)})"


def _split_sizes(n: int, size: Any) -> list[int]:
    return list(size) if isinstance(size, (tuple, list)) else [min(size, n - k) for k in range(0, n, size)]


def _split_rule(c: RuleContext) -> str:
    d = c.params.get("dim", 0) % _nd(c)
    d, start, stop = _part_bounds(c, _split_sizes(c.shapes["a"][d], c.params["split_size_or_sections"]))
    return _pad_along(c, "g", d, start, stop)


def _chunk_rule(c: RuleContext) -> str:
    d = c.params.get("dim", 0) % _nd(c)
    n, chunks = c.shapes["a"][d], c.params["chunks"]
    d, start, stop = _part_bounds(c, _split_sizes(n, -(-n // chunks)))
    return _pad_along(c, "g", d, start, stop)


def _unbind_rule(c: RuleContext) -> str:
    d = c.params.get("dim", 0) % _nd(c)
    i = c.params["index"]
    return _pad_along(c, f"g.unsqueeze({d})", d, i, i + 1)


def _part_batch(node: Call, ks: list[Any], lead: Shape, shape: Callable[[Any], Shape]) -> Any:
    nd = max(len(shape(node.args[0])), 1)
    return Call(node.op, (ks[0], *node.args[1:]), dict(node.params, dim=node.params.get("dim", 0) % nd + len(lead)))


def _obj_part(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The same part over object arrays: split the positions of a's elements with torch, then index."""
    def apply(a: Any, index: int, **p: Any) -> Any:
        np = obj_np()
        arr = np.asarray(a, dtype=object)
        where = fn(torch.arange(arr.size).reshape(arr.shape), **p)[index]
        return arr.reshape(-1)[where.numpy()]

    return apply


def _several(name: str, params: str, fn: Callable[..., Any], rule: Callable[[RuleContext], str], shown: str,
             doc: str, samples: tuple, positional: tuple[str, ...]) -> None:
    """An op returning a tuple (owner, never run by itself) and its per-index part (what the IR holds)."""
    part = f"{name}_part"
    op(name, "a", params, torch=lambda a, **p: fn(as_tensor(a), **p), method=True, positional_params=positional,
       outputs=Outputs(each=part), linear=Linear("a", batch=_part_batch), doc=doc, samples=samples)  # its parts' linear
    op(part, "a", params + ", index", torch=lambda a, index, **p: fn(as_tensor(a), **p)[index], user=False,
       output_of=name, positional_params=positional, rules={"a": rule}, shown={"a": shown},
       linear=Linear("a", batch=_part_batch), obj=_obj_part(fn), doc=f"output [index] of {name}")


_several("split", "split_size_or_sections, dim=0",
         lambda a, split_size_or_sections, dim=0: torch.split(a, split_size_or_sections, dim),
         _split_rule, "g padded with zeros to the part's place along dim",
         "pieces of split_size (or the listed sizes) along dim: x.split(2)[1], a, b = x.split([1, 2])",
         (sample("x.split(2)[1] * 3", lambda x: x.split(2)[1] * 3, x=In(5, 2)),
          sample("p, q = a.split([1, 2], dim=1); p * q[:, 1:]", lambda a: a.split([1, 2], dim=1)[0] * a[:, 2:], a=In(2, 3)),
          sample("torch.split(a, 1, -1)[0] * a.split(1, -1)[1]", lambda a: torch.split(a, 1, -1)[0] * a.split(1, -1)[1],
                 a=In(2, 2))),
         ("split_size_or_sections", "dim"))
_several("chunk", "chunks, dim=0", lambda a, chunks, dim=0: torch.chunk(a, chunks, dim), _chunk_rule,
         "g padded with zeros to the chunk's place along dim", "chunks pieces (the last smaller) along dim: x.chunk(3)[1]",
         (sample("x.chunk(3)[1] * 2", lambda x: x.chunk(3)[1] * 2, x=In(5, 2)),
          sample("u, v = torch.chunk(a, 2, dim=1); u * v", lambda a: torch.chunk(a, 2, dim=1)[0] * torch.chunk(a, 2, dim=1)[1], a=In(2, 4))),
         ("chunks", "dim"))
_several("unbind", "dim=0", lambda a, dim=0: torch.unbind(a, dim), _unbind_rule,
         "g.unsqueeze(dim) padded with zeros to its index", "the slices along dim, one per index: x.unbind(1)[0]",
         (sample("a.unbind()[1] * 2", lambda a: a.unbind()[1] * 2, a=In(3, 2)),
          sample("r, s = torch.unbind(a, 1); r * s", lambda a: torch.unbind(a, 1)[0] * torch.unbind(a, 1)[1], a=In(2, 2))),
         ("dim",))
