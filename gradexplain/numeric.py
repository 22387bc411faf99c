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
"""
from __future__ import annotations

from typing import Any

import torch

from .autograd import run_program
from .ir import Program
from .report import GradEntry

PER_ELEMENT_MAX = 4096  # above this, a few random directional derivatives instead
# Each per-element run touches every input (a 1000×1000 W next to a 1000-vector x makes 2000
# runs over 10^6 entries), so per-element is also limited by entries × entries-touched-per-run.
WORK_MAX = 2**25
DIRECTIONS = 3
STEP = torch.finfo(torch.float64).eps ** (1 / 3)  # ≈ 6e-6
NUMERIC_TOL = 1e-5  # relative+absolute, as `agree`; finite differences are not exact


def _objective(program: Program, env: dict[str, torch.Tensor], weight: torch.Tensor | None) -> float:
    # only tensors a statement may change in place need a fresh copy per run
    out = run_program(program, {k: v.clone() for k, v in env.items()} if program.in_place else env)[program.output]
    out = out if isinstance(out, torch.Tensor) else torch.tensor(float(out))
    return float((out.double() * weight).sum()) if weight is not None else float(out.double().sum())


def numeric_gradients(program: Program, leaves: dict[str, torch.Tensor], grad_output: torch.Tensor | None,
                      wrt: list[str], grads: dict[str, torch.Tensor | None]) -> dict[str, Any]:
    """``d(v · out)/d input`` by central differences for each name in ``wrt`` (``dropout`` masks are
    reproducible from the seed, so every run sees the same mask as autograd did)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with torch.no_grad():
            env = {k: v.detach().double() if v.is_floating_point() else v.detach() for k, v in leaves.items()}
            weight = grad_output.double() if grad_output is not None else None

            def f(name: str, value: torch.Tensor) -> float:
                return _objective(program, dict(env, **{name: value}), weight)

            touched = sum(t.numel() for t in env.values())

            def small(x: torch.Tensor) -> bool:
                return x.numel() <= PER_ELEMENT_MAX and x.numel() * touched <= WORK_MAX

            return {name: _per_element(f, name, env[name]) if small(env[name])
                    else _directional(f, name, env[name], grads.get(name)) for name in wrt}
    finally:
        torch.set_default_dtype(previous)


def _per_element(f: Any, name: str, x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(-1)
    est = torch.empty_like(flat)
    h = STEP * (1 + flat.abs())
    for i in range(flat.numel()):
        plus, minus = flat.clone(), flat.clone()
        plus[i] += h[i]
        minus[i] -= h[i]
        est[i] = (f(name, plus.reshape(x.shape)) - f(name, minus.reshape(x.shape))) / (plus[i] - minus[i])
    return est.reshape(x.shape)


def _directional(f: Any, name: str, x: torch.Tensor, grad: torch.Tensor | None) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    projections, estimates = [], []
    h = STEP * (1 + float(x.norm()))  # u has unit norm: each entry moves by about h/sqrt(n)
    for _ in range(DIRECTIONS):
        u = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        u /= u.norm()
        projections.append(float((grad.double() * u).sum()) if grad is not None else 0.0)
        estimates.append((f(name, x + h * u) - f(name, x - h * u)) / (2 * h))
    return {"method": f"{DIRECTIONS} random unit directions u (seed 0), step {h:.3g}", "estimates": estimates,
            "grad_dot_u": projections}


def numeric_agreement(numeric: Any, reference: torch.Tensor | None, tol: float) -> bool | None:
    """Do finite differences agree with ``reference`` (torch's gradient)?  None when there is nothing to compare."""
    from .explain import agree

    if numeric is None or reference is None:
        return None
    tol = max(tol, NUMERIC_TOL)
    if isinstance(numeric, dict):
        return agree(torch.tensor(numeric["estimates"]), torch.tensor(numeric["grad_dot_u"]), tol)[0]
    return agree(numeric, reference, tol)[0]


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
            notes.append(f"{name}: finite differences disagree with torch (beyond {max(tol, NUMERIC_TOL):g}); "
                         "the function may not be differentiable here (relu/abs/max at a tie or at 0), or it is "
                         "too steep for a step of ~1e-5 — torch and SymPy are the exact sides")
    return notes
