"""One recording session: the user's code runs, each ``backward()`` is caught as it happens.

For every ``backward()`` (``Tensor.backward``, ``torch.autograd.backward``, ``torch.autograd.grad``)
the session notes where it was called, what each leaf's ``.grad`` held before and after, and —
for the calls that will be explained in full — freezes the program the call reached
(:func:`gradexplain.record.freeze`).  A call from the same line over a graph of the same structure
as an earlier one (a training loop) is only summarised: loss, gradient norms, and what the
``optimizer.step()`` after it changed (seen through torch's global optimizer hooks).  Nothing here
changes what the user's code computes.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch

from .i18n import Msg
from .ir import Call, Const, Node, walk
from .record import (CallKind, Frozen, RecordedCall, RecordedInput, Recorder, Site, Tape, freeze, scope_names, site_of,
                     structure, target, user_frame)
from .execute import Shapes
from .symbolic import reverse_mode
from .values import Value

DEFAULT_MAX_EXPLAINED = 3


@dataclass
class StepInfo:
    """What one ``optimizer.step()`` did."""

    optimizer: str  # its class name: SGD, Adam
    lr: list[float]  # per param group, as used by this step
    changes: dict[str, float]  # parameter → norm of its change
    updates: dict[str, torch.Tensor] = field(default_factory=dict)  # parameter → its change (small ones)


@dataclass
class CallRecord:
    """One backward() as it happened."""

    index: int  # 0, 1, ... in the order the script called them
    kind: str  # backward | autograd.backward | autograd.grad
    site: Site | None
    frozen: Frozen | None  # the program, when this call is explained in full
    output: torch.Tensor  # the value backward() started from
    grad_output: torch.Tensor | None
    before: dict[str, torch.Tensor | None]  # leaf → its .grad before the call
    after: dict[str, torch.Tensor | None]  # leaf → its .grad after (autograd.grad: what it returned)
    repeat_of: int | None = None  # the first call of the same line and structure
    create_graph: bool = False
    step: StepInfo | None = None  # the optimizer.step() that followed
    events: list[str] = field(default_factory=list)  # changes to .grad since the previous call
    norms: dict[str, float] = field(default_factory=dict)  # a summarised call: norm of what it added per leaf
    piled: list[str] = field(default_factory=list)  # a summarised call: leaves whose .grad already held something
    hidden: list[str] = field(default_factory=list)  # leaves reached only through steps the recording cannot see

    @property
    def code(self) -> str:
        return self.site.code if self.site else ""

    @property
    def loss(self) -> float | None:
        return float(self.output.detach().double().reshape(())) if self.output.numel() == 1 else None

    def contribution(self, name: str) -> torch.Tensor | None:
        """What this call added to ``name``'s .grad."""
        after, before = self.after.get(name), self.before.get(name)
        if after is None:
            return None
        return after if before is None or self.kind == "autograd.grad" else after - before


@functools.lru_cache(maxsize=8)
def _signature(func: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None


def _arguments(func: Any, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    sig = _signature(func)
    if sig is None:
        return dict(kwargs)
    bound = sig.bind(*args, **kwargs)
    return dict(bound.arguments)


def _autograd_leaves(output: torch.Tensor) -> list[torch.Tensor]:
    """The leaves autograd's own graph reaches (its AccumulateGrad nodes), in the order it finds them."""
    found: list[torch.Tensor] = []
    seen: set[Any] = set()
    stack = [output.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        variable = getattr(fn, "variable", None)
        if isinstance(variable, torch.Tensor) and not any(variable is f for f in found):
            found.append(variable)
        stack.extend(n for n, _ in fn.next_functions)
    return found


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]


class Session:
    """Records the user's code while active (``with session:``); ``records`` holds each backward()."""

    def __init__(self, explain_all: bool = False, max_explained: int = DEFAULT_MAX_EXPLAINED):
        self.explain_all = explain_all
        self.max_explained = max_explained
        self.tape = Tape()
        self.records: list[CallRecord] = []
        self.seen: dict[tuple, int] = {}
        self.explained = 0
        self.names: dict[int, str] = {}  # id(leaf) → name, as last seen
        self.grad_owner: dict[int, str] = {}  # id(some leaf's .grad tensor) → the leaf's name
        self.events: list[str] = []
        self._mode: Recorder | None = None
        self._hooks: list[Any] = []
        self._params_before: dict[int, torch.Tensor] = {}

    # ------------------------------------------------------------------ activation

    def __enter__(self) -> "Session":
        from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook  # heavy

        self._hooks = [register_optimizer_step_pre_hook(self._before_step),
                       register_optimizer_step_post_hook(self._after_step)]
        self._mode = Recorder(self.tape, self._on_backward, self._on_inplace)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._mode is not None:
            self._mode.__exit__(*exc)
            self.failures += self._mode.failures
            self._mode = None
        for h in self._hooks:
            h.remove()
        self._hooks = []

    # ------------------------------------------------------------------ the optimizer

    def _params(self, optimizer: Any) -> list[torch.Tensor]:
        return [p for group in optimizer.param_groups for p in group["params"]]

    def _before_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        with torch.no_grad():
            self._params_before = {id(p): p.detach().clone() for p in self._params(optimizer)}

    def _after_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if not self.records:
            return
        changes: dict[str, float] = {}
        updates: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for i, p in enumerate(self._params(optimizer)):
                old = self._params_before.get(id(p))
                if old is None:
                    continue
                name = self.names.get(id(p), f"param{i}")
                delta = p.detach() - old
                changes[name] = float(delta.double().norm())
                if delta.numel() <= 16:
                    updates[name] = delta.clone()
        lrs = [float(g["lr"]) for g in optimizer.param_groups if "lr" in g]
        self.records[-1].step = StepInfo(type(optimizer).__name__, lrs, changes, updates)
        self._params_before = {}

    # ------------------------------------------------------------------ .grad changed by the user

    def _on_inplace(self, tensor: Any, kind: CallKind) -> None:
        owner = self.grad_owner.get(id(tensor))
        if owner is not None:
            site = site_of(user_frame())
            call = f"{owner}.grad.{kind.name}()"
            self.events.append(Msg("{call} (line {line}: {code})", call=call, line=site.line, code=site.code) if site
                               else call)

    # ------------------------------------------------------------------ backward()

    def _on_backward(self, kind: str, func: Any, args: tuple, kwargs: dict[str, Any], frame: Any) -> Any:
        """Note what the call starts from, let it run, note what it left (a failure of the noting never
        stops the user's backward(): the call then simply goes unexplained)."""
        try:
            prepared = self._prepare(kind, func, args, kwargs, frame)
        except Exception:  # noqa: BLE001
            prepared = None
            self.failures += 1
        if prepared is None:
            return func(*args, **kwargs)
        result = func(*args, **kwargs)
        try:
            self._finish(prepared, result)
        except Exception:  # noqa: BLE001
            self.failures += 1
        return result

    failures = 0

    def _prepare(self, kind: str, func: Any, args: tuple, kwargs: dict[str, Any], frame: Any) -> dict | None:
        arguments = _arguments(func, args, kwargs)
        if kind == "backward":
            outputs, grads = [arguments.get("self", args[0] if args else None)], _as_list(arguments.get("gradient"))
        elif kind == "autograd.backward":
            outputs, grads = _as_list(arguments.get("tensors")), _as_list(arguments.get("grad_tensors"))
        else:
            outputs, grads = _as_list(arguments.get("outputs")), _as_list(arguments.get("grad_outputs"))
        wrt = _as_list(arguments.get("inputs")) if kind == "autograd.grad" else []
        output = outputs[0] if outputs and isinstance(outputs[0], torch.Tensor) else None
        if output is None or not output.requires_grad:
            return None
        grad_output = grads[0] if grads and isinstance(grads[0], torch.Tensor) else None
        root = self.tape.node_of(output)
        names = scope_names(frame)
        leaves = self._leaves(root, wrt)
        hidden = [] if wrt else [t for t in _autograd_leaves(output) if not any(t is f for f in leaves)]
        leaves += hidden
        for i, t in enumerate(leaves):
            names.setdefault(id(t), self.names.get(id(t), ""))
        self.names.update({k: v for k, v in names.items() if v})
        site = site_of(frame)
        key = (site, structure(root), kind)
        repeat_of = self.seen.get(key)
        full = self.explain_all or (repeat_of is None and self.explained < self.max_explained)
        frozen = freeze([root], {k: v for k, v in names.items() if v}) if full else None
        leaf_names = self._leaf_names(leaves, frozen, names)
        before = {n: (t.grad.detach().clone() if t.grad is not None else None) for n, t in zip(leaf_names, leaves)}
        hidden_names = [n for n, t in zip(leaf_names, leaves) if any(t is h for h in hidden)]
        return dict(kind=kind, arguments=arguments, output=output.detach().clone(), grad_output=grad_output,
                    hidden=hidden_names,
                    root=root, leaves=leaves, leaf_names=leaf_names, before=before, frozen=frozen, full=full,
                    key=key, repeat_of=repeat_of, site=site, frame=frame)

    def _finish(self, p: dict, result: Any) -> None:
        kind, arguments, value, grad_output = p["kind"], p["arguments"], p["output"], p["grad_output"]
        root, leaves, leaf_names, before, frozen = p["root"], p["leaves"], p["leaf_names"], p["before"], p["frozen"]
        full, key, repeat_of, site, frame = p["full"], p["key"], p["repeat_of"], p["site"], p["frame"]
        if kind == "autograd.grad":
            returned = _as_list(result)
            after = {n: (g.detach().clone() if isinstance(g, torch.Tensor) else None)
                     for n, g in zip(leaf_names, returned)}
        else:
            after = {n: (t.grad.detach().clone() if t.grad is not None else None) for n, t in zip(leaf_names, leaves)}
            self.grad_owner = {id(t.grad): n for n, t in zip(leaf_names, leaves) if t.grad is not None}
        if kind == "autograd.grad" and arguments.get("create_graph"):
            self._link_gradients(root, leaves, _as_list(result), grad_output, frame)
        if full:
            self.explained += 1
        if repeat_of is None:
            self.seen[key] = len(self.records)
        record = CallRecord(len(self.records), kind, site, frozen, value,
                            grad_output.detach().clone() if grad_output is not None else None, before, after,
                            repeat_of=repeat_of, create_graph=bool(arguments.get("create_graph")),
                            events=self.events, hidden=p["hidden"])
        if not full:  # a summary needs numbers only: a long training loop must not keep every gradient
            record.norms = {n: (float(c.double().norm()) if c is not None else float("nan"))
                            for n in after for c in [record.contribution(n)]}
            record.piled = [n for n, b in before.items() if b is not None and bool(b.ne(0).any())
                            and kind != "autograd.grad"]
            record.before, record.after = {}, {}
            record.output = value.reshape(-1)[:1].clone() if value.numel() == 1 else value.new_empty(0)
        self.events = []
        self.records.append(record)

    def _link_gradients(self, root: Node, leaves: list[torch.Tensor], returned: list[Any],
                        grad_output: torch.Tensor | None, frame: Any) -> None:
        """``autograd.grad(..., create_graph=True)`` returns gradients with a history of their own (torch's
        backward graph); the recording gives each the IR of its formula — the registry's rules, run in
        reverse over the recorded program — so a later backward() through it (double backward) is
        explained like any other program."""
        nodes = list(walk(root))
        if any(isinstance(n, Call) and n.op == "opaque" for n in nodes):
            return  # no rule for an opaque step: its gradient's history stays unrecorded
        inputs = {n.name: n for n in nodes if isinstance(n, RecordedInput)}
        values = {name: (n.snapshot if n.snapshot is not None else
                         (target(n).detach() if target(n) is not None else None)) for name, n in inputs.items()}
        if any(v is None for v in values.values()):
            return
        wanted = {id(t): name for name, n in inputs.items() if n.kind == "leaf" for t in [target(n)] if t is not None}
        seed = Const(1) if grad_output is None else Value(grad_output.detach(), None, "").literal()
        names = [wanted.get(id(t)) for t in leaves]
        with torch.no_grad():
            shapes = Shapes(values)
            raw = reverse_mode(root, seed, [n for n in names if n is not None], shapes)
        site = site_of(frame)
        for name, grad in zip(names, returned):
            formula = raw.get(name) if name is not None else None
            if not isinstance(grad, torch.Tensor) or not grad.requires_grad or not isinstance(formula, Call):
                continue
            if shapes.shape(formula) != tuple(grad.shape):
                continue
            self.tape.remember(grad, RecordedCall(formula.op, formula.args, formula.params, inplace=formula.inplace,
                                                  seq=self.tape.next_seq(), site=site))

    def _leaves(self, root: Node, wrt: list[Any]) -> list[torch.Tensor]:
        """The leaf tensors a backward() writes to (autograd.grad: the inputs it was asked for)."""
        if wrt:
            return [t for t in wrt if isinstance(t, torch.Tensor)]
        found: list[torch.Tensor] = []
        for n in walk(root):
            if isinstance(n, RecordedInput) and n.kind == "leaf":
                t = target(n)
                if t is not None and not any(t is f for f in found):
                    found.append(t)
        return found

    def _leaf_names(self, leaves: list[torch.Tensor], frozen: Frozen | None, names: dict[int, str]) -> list[str]:
        """The names the report uses (those of the frozen program when there is one)."""
        out: list[str] = []
        by_tensor = {id(t): frozen.display[n] for n, t in frozen.tensors.items()} if frozen else {}
        for i, t in enumerate(leaves):
            name = by_tensor.get(id(t)) or names.get(id(t)) or f"leaf{i}"
            while name in out:
                name += "'"
            out.append(name)
        return out
