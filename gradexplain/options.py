"""What one ``eval`` run is asked to do: the options every pipeline stage reads (plain data)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .limits import DEFAULT, Limits

DEFAULT_TOL = {"float64": 1e-6, "float32": 1e-4}


@dataclass
class EvalOptions:
    expr: str
    values: list[str] = field(default_factory=list)  # NAME=VALUE texts
    const: set[str] = field(default_factory=set)
    grad_output: str | None = None
    jacobian: bool = False
    expect: list[str] = field(default_factory=list)  # NAME=VALUE-or-formula texts
    tol: float | None = None
    dtype: str = "float64"
    seed: int = 0
    output: str | None = None
    limits: Limits = DEFAULT
    numeric: bool = True
    symbolic: bool = True  # False: torch only (``graph`` pictures need no SymPy work)
    train: Any = None  # train.TrainOptions: --step and its options (None: no training steps)
    hessian: bool = False  # --hessian: second derivatives, every pair of inputs
    hvp: list[str] = field(default_factory=list)  # --hvp V or NAME=V: Hessian-vector products
