"""Record the user's own torch code as the IR ``eval`` builds.

A :class:`Recorder` (a ``torch.overrides.TorchFunctionMode``) sees every torch call the code makes —
operators arrive as ``TensorBase.mul``, ``__rsub__``, ``__setitem__``, ``nn.Module`` layers as the
functional calls they make (``linear``, ``layer_norm``, ``dropout``), ``Tensor.backward`` itself.
Each call whose result requires grad becomes one IR :class:`~gradexplain.ir.Call` of the registry
op it is (found by the function's name, Python's operator protocol and the registry's aliases, its
arguments bound by :func:`gradexplain.binding.bind`), or an ``opaque`` call that torch replays as
recorded.  Tensors that are not results of recorded calls are leaves (they require grad) or
constants.  Nothing is computed twice and nothing the code computes is changed: the mode calls each
function with the arguments it was given and returns what it returned.

:func:`freeze` turns what a ``backward()`` reaches into a :class:`Frozen` program: plain IR with
the user's names, one statement per source line, the values of leaves and constants as they are
at that moment, so it can be explained after the script has moved on.
"""
from __future__ import annotations

import ast
import functools
import inspect
import linecache
import os
import sys
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.overrides import TorchFunctionMode

from .binding import bind
from .i18n import Msg
from .ir import Call, Const, Input, Node, Program, Slice, Statement, key_text, walk
from .printer import Printer
from .ops import ALIASES, REGISTRY, OpaqueSlot, OpSpec
from .parse import ATTRIBUTE_OPS
from .binding import KEYWORD_ALIASES

LITERAL_MAX = 16  # unnamed constants up to this many elements are written by value: tensor([1.0, 2.0])
_INTERNAL_DIRS = tuple(os.path.dirname(m.__file__) + os.sep for m in (torch,)) + (os.path.dirname(__file__) + os.sep,)


class Unbindable(Exception):
    """A call the registry cannot express (an argument it does not model): it is recorded opaque."""


@dataclass(frozen=True)
class Site:
    """Where in the user's code a call was made: the innermost frame outside torch and gradexplain."""

    file: str
    line: int

    @property
    def code(self) -> str:
        return linecache.getline(self.file, self.line).strip()


@dataclass(eq=False)
class RecordedInput(Input):
    """A tensor the recording did not compute: a leaf (requires grad) or a constant (its value at use)."""

    kind: str = "leaf"  # leaf | const | unrecorded (requires grad, history made outside the recording)
    ref: Any = None  # weakref to a leaf
    tensor: Any = None  # a constant itself, held as long as the calls that read it (as autograd holds saved tensors)
    version: int = 0  # the tensor's _version when it was used
    snapshot: Any = None  # its value, cloned before an in-place change (or made by the recorder: a dropout mask)
    hint: str | None = None  # a name to use when the scope has none (dropout_mask)


@dataclass(eq=False)
class RecordedCall(Call):
    seq: int = 0
    site: Site | None = None
    ref: Any = None  # a call whose result needs no grad (x**2 of a constant x): weakref to that result
    version: int = 0  # the result's _version then (an in-place change later makes it another value)


def target(node: RecordedInput) -> torch.Tensor | None:
    """The tensor a recorded input stands for (None: a leaf that is gone)."""
    if node.tensor is not None:
        return node.tensor
    return node.ref() if node.ref is not None else None


@functools.lru_cache(maxsize=4096)
def _is_internal(filename: str) -> bool:
    """torch's, gradexplain's and the interpreter's own frames: never the user's line."""
    return filename.startswith(_INTERNAL_DIRS) or filename.startswith("<frozen")


def user_frame(depth: int = 2) -> Any:
    """The innermost frame of the user's own code (TorchLens does the same)."""
    frame = sys._getframe(depth)
    while frame is not None and _is_internal(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


def site_of(frame: Any) -> Site | None:
    return Site(frame.f_code.co_filename, frame.f_lineno) if frame is not None else None


# ------------------------------------------------------------------------------ which op a call is


@dataclass(frozen=True)
class CallKind:
    spec: OpSpec | None  # None: opaque
    name: str  # the function's own name (for opaque calls and notes)
    reflected: bool = False  # __rsub__(x, 3) is 3 - x
    inplace: bool = False  # add_, __setitem__: the first argument changes
    subscript: str | None = None  # "get" or "set": Python's subscription protocol
    dropout: bool = False
    backward: str | None = None  # "backward" | "autograd.backward" | "autograd.grad"


SUBSCRIPT = {"__getitem__": "get", "__setitem__": "set"}


def _registry_op(name: str) -> OpSpec | None:
    spec = REGISTRY.get(ALIASES.get(name, name))
    return spec if spec is not None and spec.user and not spec.constructor else None


@functools.lru_cache(maxsize=2048)
def classify(func: Any) -> CallKind | None:
    """What a torch function is to the recording (None: it makes nothing to record)."""
    name = getattr(func, "__name__", "") or ""
    module = getattr(func, "__module__", "") or ""
    if name == "backward":
        return CallKind(None, name, backward="autograd.backward" if module == "torch.autograd" else "backward")
    if name == "grad" and module == "torch.autograd":
        return CallKind(None, name, backward="autograd.grad")
    if name in SUBSCRIPT:
        return CallKind(REGISTRY["index" if name == "__getitem__" else "setitem"], name,
                        inplace=name == "__setitem__", subscript=SUBSCRIPT[name])
    if name == "dropout":
        return CallKind(REGISTRY["dropout"], name, dropout=True)
    if name.startswith("__") and name.endswith("__"):
        inner = name[2:-2]
        if inner.startswith("r") and _registry_op(inner[1:]):
            return CallKind(_registry_op(inner[1:]), name, reflected=True)
        if inner.startswith("i") and _registry_op(inner[1:]):
            return CallKind(_registry_op(inner[1:]), name, inplace=True)
        if inner in ("repr", "format", "len", "bool", "float", "int", "index", "hash", "iter", "contains",
                     "array", "deepcopy", "reduce_ex", "setstate"):
            return None
        return CallKind(_registry_op(inner), name)
    if name.endswith("_") and not name.endswith("__"):
        return CallKind(_registry_op(name[:-1]), name, inplace=True)
    return CallKind(_registry_op(name), name)


def attribute_kind(func: Any) -> CallKind | None:
    """Property reads (``x.T``, ``x.grad``) arrive as a getset descriptor's ``__get__``."""
    owner = getattr(func, "__self__", None)
    attr = getattr(owner, "__name__", None)
    if attr in ATTRIBUTE_OPS:
        return CallKind(REGISTRY[ATTRIBUTE_OPS[attr]], attr)
    return None


# ------------------------------------------------------------------------------ the tape


class Tape:
    """Tensor → the IR node that computed it, for as long as the tensor lives."""

    def __init__(self) -> None:
        self.nodes: dict[int, tuple[Any, Node]] = {}
        self.consts: dict[int, list[Any]] = {}  # id(tensor) → weakrefs to the constants read from it
        self.seq = 0

    def _forget(self, key: int, ref: Any) -> None:
        entry = self.nodes.get(key)
        if entry is not None and entry[0] is ref:
            del self.nodes[key]

    def remember(self, tensor: torch.Tensor, node: Node) -> None:
        key = id(tensor)
        ref = weakref.ref(tensor, lambda r, key=key: self._forget(key, r))
        self.nodes[key] = (ref, node)

    def lookup(self, tensor: torch.Tensor) -> Node | None:
        entry = self.nodes.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            return None
        node = entry[1]
        if isinstance(node, RecordedCall) and node.ref is not None and node.version != tensor._version:
            return None  # a constant result changed in place since: from now on it is another value
        return node

    def node_of(self, tensor: torch.Tensor) -> Node:
        node = self.lookup(tensor)
        if node is not None:
            return node
        if not tensor.requires_grad:
            return self._constant(tensor)
        if not tensor.is_leaf:  # its history was made where the recording cannot see (a custom autograd.Function)
            return RecordedInput(f"#{id(tensor)}", kind="unrecorded", tensor=tensor, version=tensor._version)
        node = RecordedInput(f"#{id(tensor)}", kind="leaf", ref=weakref.ref(tensor), version=tensor._version)
        self.remember(tensor, node)
        return node

    def _constant(self, tensor: torch.Tensor) -> RecordedInput:
        node = RecordedInput(f"#{id(tensor)}", kind="const", tensor=tensor, version=tensor._version)
        key = id(tensor)

        def gone(ref: Any, key: int = key) -> None:
            refs = self.consts.get(key)
            if refs is not None:
                refs[:] = [r for r in refs if r is not ref]
                if not refs:
                    del self.consts[key]

        self.consts.setdefault(key, []).append(weakref.ref(node, gone))
        return node

    def before_change(self, tensor: Any) -> None:
        """An in-place call is about to change ``tensor``: a constant read from it keeps its value."""
        if not isinstance(tensor, torch.Tensor):
            return
        for ref in self.consts.get(id(tensor), ()):
            node = ref()
            if node is not None and node.tensor is tensor and node.snapshot is None \
                    and node.version == tensor._version:
                node.snapshot = tensor.detach().clone()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class _ValueArguments:
    """:class:`gradexplain.binding.Arguments` over the Python values torch received."""

    def __init__(self, tape: Tape, first: Node | None = None, first_tensor: Any = None):
        self.tape = tape
        self.first, self.first_tensor = first, first_tensor  # the receiver's node, read before an in-place change

    def tensor(self, item: Any, allow_compare: bool = False) -> Node:
        if isinstance(item, torch.Tensor):
            if self.first is not None and self.first_tensor is item:
                return self.first
            return self.tape.node_of(item)
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            return Const(item)
        raise Unbindable(f"argument of type {type(item).__name__}")

    def static(self, item: Any, pname: str) -> Any:
        if isinstance(item, torch.Size):
            return tuple(item)
        if isinstance(item, (bool, int, float, str)) or item is None:
            return item
        if isinstance(item, (tuple, list)) and all(isinstance(i, int) and not isinstance(i, bool) for i in item):
            return tuple(item)
        raise Unbindable(f"{pname} of type {type(item).__name__}")

    def is_static(self, item: Any) -> bool:
        if isinstance(item, (tuple, list, torch.Size)):
            return all(isinstance(i, int) and not isinstance(i, bool) for i in item)
        return isinstance(item, int) and not isinstance(item, bool)

    def is_tensor(self, item: Any) -> bool:
        return isinstance(item, torch.Tensor)

    def elements(self, item: Any) -> list[Any] | None:
        return list(item) if isinstance(item, (list, tuple)) else None

    def is_string(self, item: Any) -> bool:
        return isinstance(item, str)

    def nested(self, item: Any) -> Any:
        raise Unbindable("a tensor literal")

    def error(self, message: str, item: Any = None) -> Exception:
        return Unbindable(message)


@functools.lru_cache(maxsize=1024)
def _defaults(func: Any) -> dict[str, Any] | None:
    try:
        return {k: p.default for k, p in inspect.signature(func).parameters.items()
                if p.default is not inspect.Parameter.empty}
    except (TypeError, ValueError):
        return None


def _modelled_kwargs(func: Any, spec: OpSpec, kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    """Keywords the registry models; the others must be at their defaults (``inplace=False``)."""
    defaults = _defaults(func)
    kept = []
    for name, value in kwargs.items():
        if value is None:
            continue  # an optional argument left out (weight=None, dim=None)
        known = name in spec.tensor_args or name in spec.param_names or name in KEYWORD_ALIASES
        if known:
            kept.append((name, value))
        elif (defaults is not None and name in defaults and _same(defaults[name], value)) or value is False:
            continue
        else:
            raise Unbindable(f"{name}={value!r}")
    return kept


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001 - a default that does not compare: not the same
        return False


def _index_key(key: Any) -> tuple:
    parts = key if isinstance(key, tuple) else (key,)
    out: list[Any] = []
    for part in parts:
        if isinstance(part, slice) and all(b is None or (isinstance(b, int) and not isinstance(b, bool))
                                           for b in (part.start, part.stop, part.step)):
            out.append(Slice(part.start, part.stop, part.step))
        elif part is None or (isinstance(part, int) and not isinstance(part, bool)):
            out.append(part)
        else:
            raise Unbindable(f"index {type(part).__name__}")
    return tuple(out)


def _opaque(func: Any, kind: CallKind, args: tuple, kwargs: dict[str, Any], tape: Tape, first: Node | None,
            index: int | None) -> Call:
    """The call as recorded: its tensors become arguments, everything else stays in a template."""
    tensors: list[Node] = []

    def slot(item: Any) -> Any:
        if isinstance(item, torch.Tensor):
            tensors.append(first if (first is not None and not tensors and item is args[0]) else tape.node_of(item))
            return OpaqueSlot(len(tensors) - 1)
        if isinstance(item, (list, tuple)) and not isinstance(item, torch.Size):
            return type(item)(slot(i) for i in item)
        return item

    template = (tuple(slot(a) for a in args), {k: slot(v) for k, v in kwargs.items()})
    name = kind.name.strip("_") or "call"
    return Call("opaque", tuple(tensors), {"fn": func, "template": template, "index": index, "name": name})


def bind_call(kind: CallKind, func: Any, args: tuple, kwargs: dict[str, Any], tape: Tape,
              first: Node | None) -> Call:
    """The registry call this torch call is (raises :class:`Unbindable` when the registry cannot say it)."""
    spec = kind.spec
    if spec is None:
        raise Unbindable(kind.name)
    values = _ValueArguments(tape, first, args[0] if args else None)
    if kind.subscript == "get":
        return Call("index", (values.tensor(args[0]),), {"key": _index_key(args[1])})
    if kind.subscript == "set":
        return Call("setitem", (values.tensor(args[0]), values.tensor(args[2])), {"key": _index_key(args[1])},
                    inplace=True)
    positional = list(args)
    while positional and positional[-1] is None:
        positional.pop()
    if kind.reflected and len(positional) == 2:
        positional.reverse()
    if kind.dropout:
        positional, kwargs = positional[:1], {}
    nodes, params = bind(spec, positional, _modelled_kwargs(func, spec, kwargs), [], values)
    if kind.inplace and spec.name not in ("add", "sub", "mul", "div", "pow"):
        raise Unbindable(f"in-place {kind.name}")
    return Call(spec.name, tuple(nodes), params, inplace=kind.inplace)


# ------------------------------------------------------------------------------ the mode


class Recorder(TorchFunctionMode):
    """Sees every torch call; records those whose results require grad; hands backward() to ``on_backward``.

    ``on_backward(kind, func, args, kwargs, frame)`` must call ``func(*args, **kwargs)`` and return its result;
    ``on_inplace(tensor, kind)`` hears of every in-place call before it runs (``x.grad.zero_()``)."""

    def __init__(self, tape: Tape, on_backward: Callable[..., Any],
                 on_inplace: Callable[[Any, CallKind], None] | None = None):
        super().__init__()
        self.tape = tape
        self.on_backward = on_backward
        self.on_inplace = on_inplace

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        try:
            kind, first = self._before(func, args)
        except Exception:  # noqa: BLE001 - the user's code runs on, whatever the recording makes of it
            self.failures += 1
            kind, first = None, None
        if kind is None:
            return func(*args, **kwargs)
        if kind.backward:
            return self.on_backward(kind.backward, func, args, kwargs, user_frame())
        if kind.dropout:
            return self._dropout(func, kind, args, kwargs)
        result = func(*args, **kwargs)
        try:
            self._record(func, kind, args, kwargs, result, first)
        except Exception:  # noqa: BLE001 - as above: a call the recording misses is noted, never raised
            self.failures += 1
        return result

    failures = 0  # calls the recording could not make sense of (reported with the explanations)

    def _before(self, func: Any, args: tuple) -> tuple[CallKind | None, Node | None]:
        try:
            kind = classify(func)
        except TypeError:  # unhashable: a bound method-wrapper (a property read)
            kind = attribute_kind(func)
        if kind is not None and kind.name == "__get__":
            kind = attribute_kind(func)
        first = None
        if kind is not None and kind.inplace and args and isinstance(args[0], torch.Tensor):
            if self.on_inplace is not None:
                self.on_inplace(args[0], kind)
            first = self.tape.node_of(args[0]) if (args[0].requires_grad or kind.subscript) else None
            self.tape.before_change(args[0])  # after node_of: the constant it may have just made is kept too
        return kind, first

    def _record(self, func: Any, kind: CallKind, args: tuple, kwargs: dict[str, Any], result: Any,
                first: Node | None) -> None:
        if kind.inplace:
            outputs = [args[0]] if args and isinstance(args[0], torch.Tensor) else []
        else:
            outputs = list(result) if isinstance(result, (tuple, list)) else [result]
        wanted = [i for i, o in enumerate(outputs) if isinstance(o, torch.Tensor) and o.requires_grad
                  and o.grad_fn is not None and not any(o is a for a in args)]
        if kind.inplace:
            wanted = [0] if outputs and outputs[0].requires_grad and outputs[0].grad_fn is not None else []
        if not wanted:
            self._record_constant(func, kind, args, kwargs, result)
            return
        site = site_of(user_frame(3))
        several = not kind.inplace and isinstance(result, (tuple, list))
        node: Call | None = None
        if not several:
            try:
                node = bind_call(kind, func, args, kwargs, self.tape, first)
            except Unbindable:
                node = None
        for i in wanted:
            call = node if node is not None else _opaque(func, kind, args, kwargs, self.tape, first,
                                                         i if several else None)
            recorded = RecordedCall(call.op, call.args, call.params, inplace=call.inplace, seq=self.tape.next_seq(),
                                    site=site)
            self.tape.remember(outputs[i], recorded)

    def _record_constant(self, func: Any, kind: CallKind, args: tuple, kwargs: dict[str, Any], result: Any) -> None:
        """A registry op on constants in grad mode (``x ** 2`` of data): recorded too, so formulas say
        ``c*x**2`` rather than naming an anonymous constant; under no_grad (optimizer steps) nothing is."""
        if kind.spec is None or kind.inplace or kind.dropout or not torch.is_grad_enabled() \
                or not isinstance(result, torch.Tensor) or result.requires_grad or not result.is_floating_point() \
                or not any(isinstance(a, torch.Tensor) for a in args) or any(result is a for a in args):
            return
        try:
            call = bind_call(kind, func, args, kwargs, self.tape, None)
        except Unbindable:
            return
        self.tape.remember(result, RecordedCall(call.op, call.args, call.params, seq=self.tape.next_seq(),
                                                site=site_of(user_frame(3)), ref=weakref.ref(result),
                                                version=result._version))

    def _dropout(self, func: Any, kind: CallKind, args: tuple, kwargs: dict[str, Any]) -> Any:
        """Dropout draws from torch's generator: replaying the draw on ones gives the very mask it used."""
        before = torch.get_rng_state()
        result = func(*args, **kwargs)
        try:
            self._dropout_mask(func, args, kwargs, result, before)
        except Exception:  # noqa: BLE001 - the user's result stands; only the recording lacks this step
            self.failures += 1
        return result

    def _dropout_mask(self, func: Any, args: tuple, kwargs: dict[str, Any], result: Any, before: Any) -> None:
        x = args[0] if args else kwargs.get("input")
        if not (isinstance(result, torch.Tensor) and result.requires_grad and result.grad_fn is not None
                and isinstance(x, torch.Tensor)) or result is x:
            return
        after = torch.get_rng_state()
        torch.set_rng_state(before)
        try:
            with torch.no_grad():
                mask = func(torch.ones_like(x), *args[1:], **dict(kwargs, inplace=False) if "inplace" in kwargs
                            else kwargs)
        finally:
            torch.set_rng_state(after)
        mask_node = RecordedInput(f"#mask{id(mask)}", kind="const", snapshot=mask, hint="dropout_mask")
        node = RecordedCall("mul", (self.tape.node_of(x), mask_node), seq=self.tape.next_seq(),
                            site=site_of(user_frame(2)))
        self.tape.remember(result, node)


# ------------------------------------------------------------------------------ naming


def scope_names(frame: Any) -> dict[int, str]:
    """id(tensor) → the name the user sees it by in ``frame``: a variable, else MODULEVAR.PARAM."""
    names: dict[int, str] = {}
    if frame is None:
        return names
    modules: list[tuple[str, torch.nn.Module]] = []
    for scope in (frame.f_locals, frame.f_globals):
        for key, value in list(scope.items()):
            if key.startswith("_"):
                continue
            if isinstance(value, torch.Tensor):
                names.setdefault(id(value), key)
            elif isinstance(value, torch.nn.Module):
                modules.append((key, value))
    for key, module in modules:
        for pname, p in module.named_parameters():
            names.setdefault(id(p), f"{key}.{pname}")
        for bname, b in module.named_buffers():
            names.setdefault(id(b), f"{key}.{bname}")
    return names


@functools.lru_cache(maxsize=64)
def _statements_of(filename: str) -> list[tuple[int, int, str | None]]:
    """(first line, last line, assigned name) of each statement of a source file."""
    text = "".join(linecache.getlines(filename))
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Expr)):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            out.append((node.lineno, node.end_lineno or node.lineno, _target_name(targets[-1]) if targets else None))
    return out


def _target_name(target: ast.expr) -> str | None:
    while isinstance(target, ast.Subscript):
        target = target.value
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, (ast.Tuple, ast.List)) and target.elts:
        return _target_name(target.elts[0])
    return None


def assigned_name(site: Site | None) -> str | None:
    """The variable the statement at ``site`` assigns (``z`` for ``z = y * y * 3``)."""
    if site is None:
        return None
    best = None
    for first, last, name in _statements_of(site.file):
        if first <= site.line <= last and (best is None or last - first < best[1] - best[0]):
            best = (first, last, name)
    return best[2] if best else None


def identifier(name: str, taken: set[str]) -> str:
    """An EXPR-safe identifier for a user-facing name (``model.fc1.weight`` → ``model_fc1_weight``)."""
    base = "".join(c if c.isalnum() or c == "_" else "_" for c in name).strip("_") or "v"
    if base[0].isdigit() or base in ("torch", "F", "nn", "functional", "inf", "nan", "math"):
        base = f"v_{base}"
    candidate, i = base, 2
    while candidate in taken:
        candidate, i = f"{base}{i}", i + 1
    taken.add(candidate)
    return candidate


# ------------------------------------------------------------------------------ freezing a program


@dataclass
class Frozen:
    """What one backward() reached, frozen at that moment: plain IR, names, values."""

    program: Program
    values: dict[str, torch.Tensor]  # internal name → value (leaves requiring grad, constants)
    const: set[str]  # internal names of constants
    display: dict[str, str]  # internal name → the name the user sees
    tensors: dict[str, torch.Tensor]  # internal name → the user's own leaf tensor (its .grad)
    sources: list[Site | None]  # per statement
    opaque: list[str] = field(default_factory=list)  # "cumsum (line 12)"
    notes: list[str] = field(default_factory=list)


def structure(root: Node) -> tuple:
    """What makes two backward() graphs "the same" for a training loop: the ops, in order, and their lines."""
    calls = [n for n in walk(root) if isinstance(n, RecordedCall)]
    calls.sort(key=lambda c: c.seq)
    return tuple((c.op, c.site.line if c.site else 0) for c in calls)


def _const_value(node: RecordedInput) -> torch.Tensor | None:
    if node.snapshot is not None:
        return node.snapshot
    t = target(node)
    return t.detach().clone() if t is not None else None


def _named_constant(node: Node, names: dict[int, str]) -> torch.Tensor | None:
    """A recorded constant result the user has a name for (``y = torch.sin(x)``): it is read as ``y``."""
    if isinstance(node, RecordedCall) and node.ref is not None:
        t = node.ref()
        if t is not None and id(t) in names and t._version == node.version:
            return t
    return None


def _walk_until(roots: list[Node], stop: Callable[[Node], bool]) -> list[Node]:
    """Children before parents, each once; below a ``stop`` node nothing is visited."""
    seen: set[int] = set()
    order: list[Node] = []
    stack: list[tuple[Node, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in seen:
            continue
        if expanded or stop(node):
            seen.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(node.children()) if id(c) not in seen)
    return order


def freeze(roots: list[Node], names: dict[int, str], output_name: str | None = None) -> Frozen:
    """Plain IR for what ``roots`` reach (the last root is the output), named as the user sees it
    (``output_name`` overrides what the output's line assigns: a function's result is its own)."""
    taken: set[str] = set()
    memo: dict[int, Node] = {}
    values: dict[str, torch.Tensor] = {}
    display: dict[str, str] = {}
    tensors: dict[str, torch.Tensor] = {}
    const: set[str] = set()
    counters = {"leaf": 0, "const": 0}
    notes: list[str] = []
    opaque: list[str] = []

    def name_input(display_name: str) -> str:
        internal = identifier(display_name, taken)
        display[internal] = display_name
        return internal

    constants: dict[tuple[int, int], str] = {}  # (id, version) of a constant → its input's name
    inputs_by_tensor: dict[int, str] = {}  # id of a leaf → its input's name

    def constant(tensor: torch.Tensor | None, value: torch.Tensor, version: int, hint: str | None) -> Node:
        key = (id(tensor), version) if tensor is not None else None
        if key is not None and key in constants:
            return Input(constants[key])
        user_name = names.get(id(tensor)) if tensor is not None else None
        if user_name is None and hint is None and value.numel() <= LITERAL_MAX:
            return _literal(value)
        if user_name is None:
            user_name = hint or f"const{counters['const']}"
            counters["const"] += 1
        internal = name_input(user_name)
        values[internal] = value
        const.add(internal)
        if key is not None:
            constants[key] = internal
        return Input(internal)

    def convert_input(node: RecordedInput) -> Node:
        tensor = target(node)
        user_name = names.get(id(tensor)) if tensor is not None else None
        if node.kind == "const":
            value = _const_value(node)
            if value is None:
                raise RuntimeError("a constant of the recording is gone")
            return constant(tensor, value, node.version, node.hint)
        if tensor is None:
            raise RuntimeError("a leaf of the recording is gone")
        if id(tensor) in inputs_by_tensor:
            return Input(inputs_by_tensor[id(tensor)])
        if user_name is None:
            user_name = f"leaf{counters['leaf']}"
            counters["leaf"] += 1
        internal = name_input(user_name)
        inputs_by_tensor[id(tensor)] = internal
        values[internal] = tensor.detach().clone().requires_grad_(True)
        if node.kind == "unrecorded":
            made_by = type(tensor.grad_fn).__name__ if tensor.grad_fn is not None else Msg("code outside torch")
            notes.append(Msg("{name}: made by {made_by}, a step the recording cannot see (a custom "
                             "autograd.Function, or code run before the recording), so it is treated as an input "
                             "here and the gradient does not flow past it", name=user_name, made_by=made_by))
        else:
            tensors[internal] = tensor
        return Input(internal)

    order = _walk_until(list(roots), lambda n: _named_constant(n, names) is not None)
    calls: list[RecordedCall] = []
    for n in order:
        named = _named_constant(n, names)
        if named is not None:
            memo[id(n)] = constant(named, named.detach().clone(), n.version, None)
        elif isinstance(n, RecordedInput):
            memo[id(n)] = convert_input(n)
        elif isinstance(n, Call):
            args = tuple(memo[id(a)] for a in n.args)
            memo[id(n)] = Call(n.op, args, n.params, inplace=n.inplace)
            if isinstance(n, RecordedCall):
                calls.append(n)
            if n.op == "opaque":
                site = n.site if isinstance(n, RecordedCall) else None
                opaque.append(Msg("{name} (line {line})", name=n.params["name"], line=site.line) if site else
                              f"{n.params['name']}")
        else:
            memo[id(n)] = n
    calls.sort(key=lambda c: c.seq)
    statements, sources = _statements(calls, memo, roots[-1])
    if output_name is not None:
        statements[-1].name = output_name
    inputs = [n.name for n in walk([s.node for s in statements]) if isinstance(n, Input)]
    program = Program(statements, len(statements) - 1, list(dict.fromkeys(inputs)))
    program.text = program_text(program)
    return Frozen(program, values, const, display, tensors, sources, list(dict.fromkeys(opaque)), notes)


def _literal(value: torch.Tensor) -> Node:
    if value.dim() == 0:
        v = value.item()
        return Const(int(v) if isinstance(v, bool) else v)
    data = value.tolist()
    return Call("tensor", (), {"data": data})


def _statements(calls: list[RecordedCall], memo: dict[int, Node], root: Node) -> tuple[list[Statement], list[Site | None]]:
    """One statement per run of calls from the same source line, named after what the line assigns."""
    groups: list[list[RecordedCall]] = []
    for call in calls:
        if groups and groups[-1][-1].site == call.site:
            groups[-1].append(call)
        else:
            groups.append([call])
    statements: list[Statement] = []
    sources: list[Site | None] = []
    names: dict[int, str] = {}
    for i, group in enumerate(groups):
        last = group[-1]
        node = memo[id(last)]
        name = assigned_name(last.site) or ("out" if last is root else f"expr{i + 1}")
        for c in group:
            memo_node = memo[id(c)]
            if isinstance(memo_node, Call):
                memo_node.src = _step_text(memo_node, Printer(names))
        statements.append(Statement(name, node, node.src or ""))
        sources.append(last.site)
        names[id(node)] = name
    if not statements or memo[id(root)] is not statements[-1].node:  # the output is a leaf or a constant
        statements.append(Statement("out", memo[id(root)], Printer(names).text(memo[id(root)])))
        sources.append(None)
    return statements, sources


def _step_text(node: Call, printer: Printer) -> str:
    """A step as the user would write it: ``b[0, 0] = a[0, 0]**2`` for an indexed assignment."""
    if node.op == "setitem":
        base, value = node.args
        return f"{printer.text(base)}[{key_text(node.params['key'])}] = {printer.text(value)}"
    return printer.text(Call(node.op, node.args, node.params))


def program_text(program: Program) -> str:
    """The program as EXPR statements (``y = x*2; z = y*y*3; z.mean()``), earlier statements by name."""
    names: dict[int, str] = {}
    lines = []
    for i, stmt in enumerate(program.statements):
        node = stmt.node
        printer = Printer(names)
        if isinstance(node, Call) and node.op == "setitem":
            base, value = node.args
            lines.append(f"{printer.text(base)}[{key_text(node.params['key'])}] = {printer.text(value)}")
        elif isinstance(node, Call) and node.inplace and len(node.args) == 2:
            sym = {"add": "+=", "sub": "-=", "mul": "*=", "div": "/=", "pow": "**="}[node.op]
            lines.append(f"{printer.text(node.args[0])} {sym} {printer.text(node.args[1])}")
        else:
            text = printer.text(Call(node.op, node.args, node.params) if isinstance(node, Call) else node)
            lines.append(text if i == len(program.statements) - 1 and stmt.name == "out" else f"{stmt.name} = {text}")
        names[id(node)] = stmt.name
    return "; ".join(lines)
