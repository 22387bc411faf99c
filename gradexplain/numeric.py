"""A third opinion: central finite differences in float64, independent of both autograd and SymPy."""
from __future__ import annotations

from typing import Any

import torch

from .autograd import run_program
from .ir import Program

PER_ELEMENT_MAX = 4096  # above this, a few random directional derivatives instead
DIRECTIONS = 3


def _objective(program: Program, env: dict[str, torch.Tensor], weight: torch.Tensor | None) -> float:
    out = run_program(program, {k: v.clone() for k, v in env.items()})[program.output]
    out = out if isinstance(out, torch.Tensor) else torch.tensor(float(out))
    return float((out.double() * weight).sum()) if weight is not None else float(out.double().sum())


def numeric_gradients(program: Program, leaves: dict[str, torch.Tensor], grad_output: torch.Tensor | None,
                      wrt: list[str], grads: dict[str, torch.Tensor | None]) -> dict[str, Any]:
    """``d(v · out)/d input`` by central differences, v = grad_output (or 1 for a scalar output).

    Small inputs get the full estimate (a tensor); larger ones a dict of a few random
    directional derivatives ``(f(x+hu) - f(x-hu)) / 2h`` to compare with ``grad · u``.
    """
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with torch.no_grad():
            env = {k: v.detach().double() for k, v in leaves.items()}
            weight = grad_output.double() if grad_output is not None else None
            result: dict[str, Any] = {}
            for name in wrt:
                x = env[name]
                if x.numel() <= PER_ELEMENT_MAX:
                    result[name] = _per_element(program, env, name, weight)
                else:
                    result[name] = _directional(program, env, name, weight, grads.get(name))
            return result
    finally:
        torch.set_default_dtype(previous)


def _step(x: torch.Tensor) -> torch.Tensor:
    return 1e-6 * (1 + x.abs())


def _per_element(program: Program, env: dict[str, torch.Tensor], name: str, weight: torch.Tensor | None) -> torch.Tensor:
    x = env[name]
    flat = x.reshape(-1)
    est = torch.empty_like(flat)
    h = _step(flat)
    for i in range(flat.numel()):
        plus, minus = flat.clone(), flat.clone()
        plus[i] += h[i]
        minus[i] -= h[i]
        f_plus = _objective(program, dict(env, **{name: plus.reshape(x.shape)}), weight)
        f_minus = _objective(program, dict(env, **{name: minus.reshape(x.shape)}), weight)
        est[i] = (f_plus - f_minus) / (2 * h[i])
    return est.reshape(x.shape)


def _directional(program: Program, env: dict[str, torch.Tensor], name: str, weight: torch.Tensor | None,
                 grad: torch.Tensor | None) -> dict[str, Any]:
    x = env[name]
    gen = torch.Generator().manual_seed(0)
    projections, estimates = [], []
    h = 1e-6 * (1 + float(x.abs().max()))
    for _ in range(DIRECTIONS):
        u = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        u /= u.norm()
        f_plus = _objective(program, dict(env, **{name: x + h * u}), weight)
        f_minus = _objective(program, dict(env, **{name: x - h * u}), weight)
        projections.append(float((grad.double() * u).sum()) if grad is not None else 0.0)
        estimates.append((f_plus - f_minus) / (2 * h))
    return {"method": f"{DIRECTIONS} random unit directions u (seed 0)", "estimates": estimates,
            "grad_dot_u": projections}
