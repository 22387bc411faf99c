"""The Report: plain data that every renderer (text, JSON, Markdown, LaTeX, DOT) reads.

It mirrors the JSON schema ``gradexplain/1`` of the contract; tensors stay tensors here and
are converted to nested lists (with ``"nan"``/``"inf"`` strings) only by :func:`to_plain`.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterator

from .bignum import json_exact
from .bulk import Summary

from .errors import ExitCode
from .limits import DEFAULT, Limits

SCHEMA = "gradexplain/1"


@dataclass
class InputInfo:
    shape: list[int]
    value: Any
    requires_grad: bool
    exact: Any | None = None


@dataclass
class ForwardEntry:
    name: str
    expr: str
    shape: list[int]
    value: Any
    grad_fn: str | None
    grad: Any | None = None


@dataclass
class OutputInfo:
    name: str
    shape: list[int]
    value: Any
    grad_fn: str | None
    requires_grad: bool = True


@dataclass
class GraphEntry:
    id: int
    node: str
    next: list[int | None]
    variable: str | None
    label: str | None
    grad_output: Any | None
    grad_inputs: list[Any | None]
    saved: dict[str, Any] = field(default_factory=dict)
    rule: str | None = None  # the registry's rule text for this node's op
    edges: list[Any] = field(default_factory=list)  # per next edge: arg, source, rule (instantiated), constant
    saved_from: dict[str, str] = field(default_factory=dict)  # saved tensor -> the argument whose value it is
    shape: list[int] | None = None  # of the node's forward output (the leaf's, for AccumulateGrad)
    value: Any | None = None  # that output when small (<= 64 elements), else null


@dataclass
class Symbolic:
    expr: str | None
    value: Any | None
    exact: Any | None = None  # exact values (Fractions) when inputs were exact and small
    note: str | None = None
    program: str | None = None  # the gradient as let-bindings in the user's names (EXPR, "; "-separated)


@dataclass
class GradEntry:
    torch: Any | None
    symbolic: Symbolic | None
    max_abs_diff: float | None
    agree: bool | None
    numeric: Any | None = None
    numeric_agree: bool | None = None  # finite differences agree with torch (None: not computed)
    note: str | None = None
    reason: str | None = None  # why symbolic is null


@dataclass
class JacobianEntry:
    torch: Any | None
    symbolic: Symbolic | None
    agree: bool | None
    reason: str | None = None


@dataclass
class ExpectResult:
    name: str
    expected: str
    kind: str  # "value" or "formula"
    passed: bool
    message: str
    proved: bool | None = None  # formula: True proved, None could not decide, False wrong
    outcome: str = ""  # holds | proved | unproved | wrong | wrong-shape | transposed | not-general | disproved (expect.OUTCOMES)
    correct: str | None = None  # a failed claim: the right formula (SymPy's), or the right value
    difference: str | None = None  # claim − derivative, simplified (a formula) or its value
    diagnosis: str | None = None  # what the mistake looks like: a constant factor, the sign, a transpose, ...


@dataclass
class HessianBlock:
    """``H_ab[i..., j...] = ∂² out / ∂a[i...] ∂b[j...]``, shape ``a.shape + b.shape``."""

    torch: Any | None
    symbolic: Symbolic | None
    max_abs_diff: float | None
    agree: bool | None
    numeric: Any | None = None
    numeric_max_abs_diff: float | None = None  # |torch - finite differences|, at most
    reason: str | None = None  # why symbolic is null
    symmetric: bool | None = None  # diagonal blocks: H_aa equals its transpose
    eigenvalues: list[float] | None = None  # small diagonal blocks


@dataclass
class HvpEntry:
    """``(H v)_b = Σ_a H_ba v_a``: what ``torch.autograd.grad(grad · v, b)`` returns."""

    torch: Any | None
    symbolic: Symbolic | None
    max_abs_diff: float | None
    agree: bool | None
    numeric: Any | None = None
    reason: str | None = None
    direction: Any | None = None


@dataclass
class HessianInfo:
    """How torch built the second derivatives, and what the whole Hessian says about the point."""

    grad_graphs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # grad_a.grad_fn chain per input
    matrix: Any | None = None  # the full Hessian over the flattened inputs in `order`, when small
    order: list[str] = field(default_factory=list)
    eigenvalues: list[float] | None = None  # of the full Hessian, when small
    definiteness: str | None = None


@dataclass
class DropoutMask:
    """The mask one training-mode ``dropout`` drew under the seed: 0 or 1/(1-p) per element."""

    expr: str
    p: float
    mask: Any


@dataclass
class TrainingInfo:
    """How ``--step`` trained: the optimizer, its hyperparameters, the loop and the LR schedule."""

    optimizer: str
    hyperparameters: dict[str, Any]
    zero_grad: bool
    schedule: dict[str, Any] | None


@dataclass
class CallSite:
    """Where a recorded ``backward()`` was called: ``{"file", "line", "code", "index", "kind"}`` in JSON."""

    file: str | None
    line: int | None
    code: str
    index: int
    kind: str


@dataclass
class Report:
    expr: str
    inputs: dict[str, InputInfo]
    forward: list[ForwardEntry]
    output: OutputInfo
    grad_output: Any | None
    graph: list[GraphEntry]
    grads: dict[str, GradEntry]
    jacobian: dict[str, JacobianEntry] | None
    agree: bool | None
    notes: list[str] = field(default_factory=list)
    expect: list[ExpectResult] = field(default_factory=list)
    dtype: str = "float64"
    tol: float = 1e-6
    # optional sections, in the order the JSON document gives them (each left out when empty)
    dropout: list[DropoutMask] = field(default_factory=list)
    hessian: dict[str, dict[str, HessianBlock]] | None = None  # --hessian: block [a][b]
    hessian_info: HessianInfo | None = None
    hvp: dict[str, HvpEntry] | None = None  # --hvp
    steps: list[dict[str, Any]] | None = None  # --step: one entry per training step
    training: TrainingInfo | None = None
    call: CallSite | None = None  # gradexplain run / the API: the backward() this explains
    grad_changes: list[str] = field(default_factory=list)  # run: in-place .grad changes before that call

    @property
    def exit_code(self) -> ExitCode:
        if self.agree is False or any(not e.passed for e in self.expect):
            return ExitCode.DISAGREE
        return ExitCode.OK


def plain_number(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, Fraction)):
        return json_exact(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    return v


BULK = 1024  # tensors this large stay numpy arrays, which render.json.dumps writes in bulk
# Tensors with more elements than ``--max-json-values`` (10^6) are summarised in documents: 10^7
# floats are ~200 MB of JSON text per field, and a document repeats a tensor's size several times
# (input, gradient, formula value, finite differences).  ``--max-json-total`` (4·10^6) bounds the
# numbers one document writes in full; later tensors are summarised.
_caps: ContextVar[tuple[int, int]] = ContextVar("json_caps", default=(DEFAULT.max_json_values,
                                                                       DEFAULT.max_json_total))
_document_left: ContextVar[list[int] | None] = ContextVar("document_left", default=None)


@contextmanager
def json_caps(limits: Limits) -> Iterator[None]:
    """Within this, documents are written under ``limits``' ``max_json_values``/``max_json_total``."""
    token = _caps.set((limits.max_json_values, limits.max_json_total))
    try:
        yield
    finally:
        _caps.reset(token)


@contextmanager
def document_budget(numbers: int | None = None) -> Iterator[None]:
    """Within this, :func:`to_plain` writes at most ``numbers`` tensor entries in full (in document
    order; default ``--max-json-total``) and summarises the rest: ``--step adam --steps 8`` over
    10^6 parameters would otherwise write 64 full copies (> 1 GB of JSON text)."""
    token = _document_left.set([_caps.get()[1] if numbers is None else numbers])
    try:
        yield
    finally:
        _document_left.reset(token)


def summary(t: Any) -> dict[str, Any]:
    """A tensor too large to write out (or a :class:`~gradexplain.bulk.Summary` kept in its place):
    ``{"summary": true, "shape", "min", "max", "mean", "nonfinite"}`` (statistics over the finite
    entries; ``nonfinite`` counts the others)."""
    s = t if isinstance(t, Summary) else Summary.of(t)
    stats = {"min": s.finite_min, "max": s.finite_max, "mean": s.finite_mean}
    return {"summary": True, "shape": list(s.shape), **{k: None if v is None else plain_number(v)
                                                        for k, v in stats.items()}, "nonfinite": s.nonfinite}


def compact(obj: Any, most: int) -> Any:
    """``obj`` (a Report, or any part of one) with every tensor past ``most`` elements replaced, in
    place, by its :class:`~gradexplain.bulk.Summary` — all a document shows of it: ``check`` keeps
    each problem's Report until the end, and ten 10^7-element problems must not keep 3 GB."""
    import torch  # heavy

    def small(v: Any) -> Any:
        if isinstance(v, torch.Tensor):  # a meta tensor (a saved tensor's shape) holds no memory
            return Summary.of(v) if v.numel() > most and v.device.type != "meta" else v
        compact(v, most)
        return v

    if hasattr(obj, "__dataclass_fields__") and not obj.__dataclass_params__.frozen:
        fields = vars(obj)  # the instance's own fields, by their names
        for k in obj.__dataclass_fields__:
            fields[k] = small(fields[k])
    elif isinstance(obj, dict):
        for k, v in obj.items():
            obj[k] = small(v)
    elif isinstance(obj, list):
        obj[:] = [small(v) for v in obj]
    return obj


def exact_text(exact: Any) -> str:
    """Exact values as text: ``[16/3, 4]``."""
    if isinstance(exact, list):
        return "[" + ", ".join(exact_text(x) for x in exact) + "]"
    return str(plain_number(exact))


def has_fraction(exact: Any) -> bool:
    """Whether exact values say more than their floats: some entry is not an integer."""
    if isinstance(exact, list):
        return any(has_fraction(x) for x in exact)
    return isinstance(exact, Fraction) and exact.denominator != 1


def to_plain(obj: Any) -> Any:
    """Dataclasses, tensors and numbers → JSON-ready Python (NaN/Inf as strings).

    Large finite float tensors become float64 numpy arrays rather than lists: building and
    printing 10^6 Python floats costs seconds; :func:`gradexplain.render.json.dumps` writes
    arrays directly."""
    import torch  # heavy

    if isinstance(obj, Summary):
        return summary(obj)
    if isinstance(obj, torch.Tensor):
        left = _document_left.get()
        if obj.numel() > _caps.get()[0] or (left is not None and obj.numel() > left[0]):
            return summary(obj)
        if left is not None:
            left[0] -= obj.numel()
        t = obj.detach().cpu()
        if t.dtype == torch.bool or not t.is_floating_point():
            return t.tolist()
        t = t.double()
        if bool(torch.isfinite(t).all()):
            return t.numpy().copy() if t.dim() > 0 and t.numel() >= BULK else t.tolist()
        return _replace_nonfinite(t.tolist())
    if hasattr(obj, "__dataclass_fields__"):
        return {k: to_plain(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return plain_number(obj)


def _replace_nonfinite(v: Any) -> Any:
    if isinstance(v, list):
        return [_replace_nonfinite(x) for x in v]
    return plain_number(v)
