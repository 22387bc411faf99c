"""A third opinion: central finite differences in float64, independent of both autograd and SymPy.

``grads.NAME.numeric`` estimates ``d(v · out)/d NAME`` (v = the ``--grad-output``, or 1 for a
scalar output) by re-running the program with each input entry moved by ``±h``:

* up to :data:`PER_ELEMENT_MAX` entries, every entry (two runs each): a tensor shaped like the input;
* above that, :data:`DIRECTIONS` random unit directions ``u`` (seed 0): the directional derivative
  ``(f(x+hu) - f(x-hu)) / 2h`` next to ``grad · u``, so a 10^6-entry input costs six runs.

The step ``h = ∛eps · (1 + |x|)`` balances truncation error (∝ h²) against rounding (∝ eps/h),
so estimates are good to about 1e-8 relative on smooth functions.  They are compared with torch
at :data:`NUMERIC_TOL` (``numeric_agree``); at kinks (``relu``, ``abs`` at 0) the two sides of
the difference straddle the kink and the estimate is the average slope — such a disagreement is
reported as a note, never as a failure.

At the edge of an argument's domain (``binary_cross_entropy`` with a target of 1, ``sqrt`` at 0)
one of the two steps leaves the domain: torch raises or the objective is not finite there.  That
entry is then estimated one-sided from the value at the point itself (``(-3f(x) + 4f(x+h) - f(x+2h))/2h``,
as good as the central one), and where neither side can be evaluated the estimate is omitted (``null``) with the
reason in a note: a step outside the domain never ends the run or produces a false disagreement.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from .autograd import run_output
from .bulk import pieces
from .compare import agrees
from .errors import GradexplainError
from .i18n import Msg
from .ir import Program
from .limits import DEFAULT
from .phrases import message_of
from .report import GradEntry

PER_ELEMENT_MAX = 4096  # above this, a few random directional derivatives instead
# Each per-element run touches every element the program makes (a 1000×1000 W next to a 1000-vector
# x makes 2000 runs over 10^6 entries), so per-element is also limited by runs × elements per run:
# ``--max-numeric`` (Limits.max_numeric, 2^26 by default).
DIRECTIONS = 3
STEP = torch.finfo(torch.float64).eps ** (1 / 3)  # ≈ 6e-6
NUMERIC_TOL = 1e-5  # relative+absolute, as compare.compare; finite differences are not exact


def _objective(program: Program, env: dict[str, torch.Tensor], weight: torch.Tensor | None) -> float:
    # only tensors a statement may change in place need a fresh copy per run
    out = run_output(program, {k: v.clone() for k, v in env.items()} if program.in_place else env)
    out = out if isinstance(out, torch.Tensor) else torch.tensor(float(out))
    return float((out.double() * weight).sum()) if weight is not None else float(out.double().sum())


def footprint(program: Program, env: dict[str, torch.Tensor]) -> int:
    """Elements one run of the program touches (inputs and every value it makes): the cost of one
    finite-difference evaluation, so ``outer(x, y).sum()`` over 3000-vectors (9·10^6 per run) gets
    directional estimates instead of 12,000 runs."""
    made = [sum(t.numel() for t in env.values())]

    def count(_node: Any, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            made[0] += value.numel()

    try:
        run_output(program, {k: v.clone() for k, v in env.items()} if program.in_place else env, on_value=count)
    except GradexplainError:
        pass  # the estimates themselves will say why
    return made[0]


class OutsideDomain(Exception):
    """The objective cannot be evaluated at a stepped point (torch refused it, or it is not finite
    where the point itself is)."""


def numeric_gradients(program: Program, leaves: dict[str, torch.Tensor], grad_output: torch.Tensor | None,
                      wrt: list[str], grads: dict[str, torch.Tensor | None],
                      per_element_max: int | None = None, notes: list[str] | None = None,
                      work_max: int = DEFAULT.max_numeric) -> dict[str, Any]:
    """``d(v · out)/d input`` by central differences for each name in ``wrt`` (``dropout`` masks are
    reproducible from the seed, so every run sees the same mask as autograd did).  ``per_element_max``
    lowers :data:`PER_ELEMENT_MAX` where runs are dear (a recorded training step); ``work_max``
    (``--max-numeric``) bounds runs × elements per run of the per-entry estimates.  One-sided
    estimates, omitted ones and directions chosen for the cost are explained in ``notes``."""
    most = PER_ELEMENT_MAX if per_element_max is None else per_element_max
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    notes = notes if notes is not None else []
    try:
        with torch.no_grad():
            env = {k: v.detach().double() if v.is_floating_point() else v.detach() for k, v in leaves.items()}
            weight = grad_output.double() if grad_output is not None else None

            def f(name: str, value: torch.Tensor) -> float:
                try:
                    return _objective(program, dict(env, **{name: value}), weight)
                except GradexplainError as e:
                    raise OutsideDomain(e.message) from None

            touched = footprint(program, env)

            def small(x: torch.Tensor) -> bool:  # 2 runs per entry, each touching `touched` elements
                return x.numel() <= most and 2 * x.numel() * touched <= work_max

            out: dict[str, Any] = {}
            for name in wrt:
                if env[name].numel() <= most and not small(env[name]):
                    notes.append(Msg("{name}: finite differences along {n} random directions instead of every "
                                     "entry: {runs} runs over {touched} elements each ({work} in all) would exceed "
                                     "the limit of {limit} elements (raise it with --max-numeric)", name=name,
                                     n=DIRECTIONS, runs=f"{2 * env[name].numel():,}", touched=f"{touched:,}",
                                     work=f"{2 * env[name].numel() * touched:,}", limit=f"{work_max:,}"))
                try:
                    out[name] = _per_element(f, name, env[name], notes) if small(env[name]) \
                        else _directional(f, name, env[name], grads.get(name))
                except OutsideDomain as e:
                    out[name] = None
                    notes.append(Msg("{name}: no finite-difference estimate — a step of ~1e-5 either way leaves "
                                     "the domain ({why})", name=name, why=message_of(e)))
            return out
    finally:
        torch.set_default_dtype(previous)


def _side(f: Any, name: str, x: torch.Tensor, centre: float) -> float | None:
    """f at a stepped point, or None where the step left the domain."""
    try:
        v = f(name, x)
    except OutsideDomain:
        return None
    return v if math.isfinite(v) or not math.isfinite(centre) else None


def _one_sided(f: Any, name: str, x: torch.Tensor, i: int, step: float, centre: float, near: float) -> float:
    """``(-3 f(x) + 4 f(x+s) - f(x+2s)) / 2s`` (second order) where x+2s is in the domain too,
    else ``(f(x+s) - f(x)) / s``; ``s`` is negative for a backward difference."""
    far_point = x.reshape(-1).clone()
    far_point[i] += 2 * step
    far = _side(f, name, far_point.reshape(x.shape), centre)
    if far is not None:
        return (-3 * centre + 4 * near - far) / (2 * step)
    return (near - centre) / step


def _per_element(f: Any, name: str, x: torch.Tensor, notes: list[str]) -> torch.Tensor:
    flat = x.reshape(-1)
    est = torch.empty_like(flat)
    h = STEP * (1 + flat.abs())
    centre: float | None = None
    one_sided = 0
    for i in range(flat.numel()):
        plus, minus = flat.clone(), flat.clone()
        plus[i] += h[i]
        minus[i] -= h[i]
        if centre is None:
            centre = f(name, x)  # the point itself: its domain error is a real one, not the step's
        up, down = _side(f, name, plus.reshape(x.shape), centre), _side(f, name, minus.reshape(x.shape), centre)
        if up is not None and down is not None:
            est[i] = (up - down) / (plus[i] - minus[i])
        elif up is None and down is None:
            raise OutsideDomain(Msg("entry {i} cannot be moved either way", i=i))
        else:
            one_sided += 1
            est[i] = _one_sided(f, name, x, i, float(h[i]) if up is not None else -float(h[i]), centre,
                                up if up is not None else down)
    if one_sided:
        notes.append(Msg("{name}: {n} finite-difference entry one-sided (a step the other way leaves the domain)",
                         name=name, n=one_sided) if one_sided == 1 else
                     Msg("{name}: {n} finite-difference entries one-sided (a step the other way leaves the domain)",
                         name=name, n=one_sided))
    return est.reshape(x.shape)


def _directional(f: Any, name: str, x: torch.Tensor, grad: torch.Tensor | None) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    projections, estimates = [], []
    h = STEP * (1 + float(x.norm()))  # u has unit norm: each entry moves by about h/sqrt(n)
    for _ in range(DIRECTIONS):
        u = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        u /= u.norm()
        projections.append(sum(float((g.double() * v).sum()) for g, v in pieces(grad, u)) if grad is not None
                           else 0.0)
        # x ± h·u made in one step each and dropped at once: a 10^7-entry input holds three copies, not five
        estimates.append((f(name, torch.add(x, u, alpha=h)) - f(name, torch.add(x, u, alpha=-h))) / (2 * h))
    return {"method": Msg("{n} random unit directions u (seed 0), step {h:.3g}", n=DIRECTIONS, h=h),
            "estimates": estimates,
            "grad_dot_u": projections}


def numeric_agreement(numeric: Any, reference: torch.Tensor | None, tol: float) -> bool | None:
    """Do finite differences agree with ``reference`` (torch's gradient)?  None when there is nothing to compare."""
    if numeric is None or reference is None:
        return None
    tol = max(tol, NUMERIC_TOL)
    if isinstance(numeric, dict):
        return agrees(torch.tensor(numeric["estimates"]), torch.tensor(numeric["grad_dot_u"]), tol)
    return agrees(numeric, reference, tol)


def attach_numeric(grads: dict[str, GradEntry], numeric: dict[str, Any], tol: float) -> list[str]:
    """Store each estimate with its agreement flag; return notes for the ones that disagree."""
    notes = []
    for name, value in numeric.items():
        entry = grads.get(name)
        if entry is None:
            continue
        entry.numeric = value
        reference = entry.torch if entry.torch is not None else (entry.symbolic.value if entry.symbolic else None)
        entry.numeric_agree = numeric_agreement(value, reference, tol)
        if entry.numeric_agree is False:
            notes.append(Msg("{name}: finite differences disagree with torch (beyond {tol:g}); the function may not "
                             "be differentiable here (relu/abs/max at a tie or at 0), or it is too steep for a step of "
                             "~1e-5 — torch and SymPy are the exact sides", name=name, tol=max(tol, NUMERIC_TOL)))
    return notes
