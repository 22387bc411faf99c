"""Matrix functions and batched products: ``det logdet slogdet inv pinv solve cholesky matrix_power matrix_exp
bmm baddbmm addmm addmv kron cross inner`` (also as ``torch.linalg.X``).

Every rule is a closed form over whole matrices, batched over leading dims with ``transpose(-2, -1)``
(the ``.mT`` of PyTorch) and matmul's broadcasting:

- ``det``: ``g*det(A)*inv(A).mT``; ``logdet``: ``g*inv(A).mT``; ``inv``: ``-inv(A).mT @ g @ inv(A).mT``;
- ``solve(A, B) = X``: ∂B = ``solve(A.mT, g)``, ∂A = ``-∂B @ X.mT``;
- ``cholesky(A) = L`` (torch's formula): ∂A = ``L⁻ᵀ Φ L⁻¹`` with ``P = tril(Lᵀ g)``, ``Φ = (P + tril(P, -1)ᵀ)/2``;
- ``pinv(A) = P`` (constant rank, Golub–Pereyra): ``-Pᵀ g Pᵀ + (I - A P) gᵀ P Pᵀ + Pᵀ P gᵀ (I - P A)``;
- ``matrix_power(A, n)``: ``Σₖ (Aᵀ)ᵏ g (Aᵀ)ⁿ⁻¹⁻ᵏ`` (through ``inv`` for negative n);
- ``matrix_exp(A)``: the upper-right block of ``matrix_exp([[Aᵀ, g], [0, Aᵀ]])`` (the block-triangular
  identity for the Fréchet derivative of exp, which is also how torch computes it).

Near a singular matrix ``det``/``logdet``/``inv`` have no finite closed form; torch falls back to an SVD
there, the formulas above give inf/nan, and the comparison reports it.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..i18n import Msg
from .linalg import matmul_shape
from .spec import ALIASES, NONLINEAR, In, Outputs, RuleContext, op, sample

ALIASES.update({"inverse": "inv", "linalg_inv": "inv", "linalg_det": "det"})


def _mT(c: RuleContext, text: str) -> str:
    """``text.T``, or ``.transpose(-2, -1)`` for a batch of matrices (every matrix here has A's ndim)."""
    nd = c.ndim("A") if "A" in c.shapes else len(c.out_shape)
    return f"{text}.T" if nd == 2 else f"{text}.transpose(-2, -1)"


def _scalar_g(c: RuleContext, factor: str = "g") -> str:
    """A per-matrix scalar (``g`` of det) broadcast against the matrices: unsqueezed for a batch."""
    return factor if not c.out_shape else f"({factor}).unsqueeze(-1).unsqueeze(-1)"


def _tril_mask(n: int, k: int) -> str:
    """The lower-triangular mask (below diagonal k) as a comparison of index vectors, shape-generic in the batch."""
    shift = "" if k == 0 else (f" - {-k}" if k < 0 else f" + {k}")  # keep j <= i + k
    return f"arange({n}).unsqueeze(1){shift} >= arange({n})"


SPD = "A @ A.T + eye(3)"  # a symmetric positive definite matrix built from any A (cholesky, logdet)


op("det", "A", torch=torch.linalg.det, rules={"A": lambda c: f"{_scalar_g(c, 'g*out')}*{_mT(c, 'inv(A)')}"},
   shown={"A": "g*det(A)*inv(A).mT"}, linear=NONLINEAR, predict=lambda s, p: tuple(s[0][:-2]),
   doc="determinant (of each matrix of a batch)",
   samples=(sample("det(A)", torch.linalg.det, A=In(3, 3)),
            sample("torch.linalg.det(A) * b", lambda A, b: torch.linalg.det(A) * b, A=In(2, 2, 2), b=In(2))))
op("logdet", "A", torch=torch.logdet, rules={"A": lambda c: f"{_scalar_g(c)}*{_mT(c, 'inv(A)')}"},
   shown={"A": "g*inv(A).mT"}, linear=NONLINEAR, predict=lambda s, p: tuple(s[0][:-2]), method=True,
   doc="log of the determinant (nan for a negative one, as torch)",
   samples=(sample(f"logdet({SPD})", lambda A: torch.logdet(A @ A.T + torch.eye(3)), A=In(3, 3)),
            sample("torch.logdet(A @ A.transpose(-2, -1) + eye(2))",
                   lambda A: torch.logdet(A @ A.transpose(-2, -1) + torch.eye(2)), A=In(2, 2, 2))))
op("slogdet", "A", torch=torch.linalg.slogdet, outputs=Outputs(ops=("slogdet_sign", "slogdet_logabsdet"),
                                                                names=("sign", "logabsdet")),
   linear=NONLINEAR, predict=lambda s, p: tuple(s[0][:-2]), doc="(sign, log|det|) of each matrix: several outputs",
   samples=(sample("torch.linalg.slogdet(A).logabsdet", lambda A: torch.linalg.slogdet(A).logabsdet, A=In(3, 3)),
            sample("s, l = slogdet(A); s*l", lambda A: torch.linalg.slogdet(A)[0] * torch.linalg.slogdet(A)[1],
                   A=In(2, 2, 2))))
op("slogdet_sign", "A", torch=lambda A: torch.linalg.slogdet(A).sign, output_of="slogdet", user=False,
   predict=lambda s, p: tuple(s[0][:-2]), doc="slogdet(A).sign: ±1 (0 for a singular matrix), no gradient")
op("slogdet_logabsdet", "A", torch=lambda A: torch.linalg.slogdet(A).logabsdet, output_of="slogdet", user=False,
   rules={"A": lambda c: f"{_scalar_g(c)}*{_mT(c, 'inv(A)')}"}, shown={"A": "g*inv(A).mT"}, linear=NONLINEAR,
   predict=lambda s, p: tuple(s[0][:-2]), doc="slogdet(A).logabsdet: log|det(A)|")
op("inv", "A", torch=torch.linalg.inv, rules={"A": lambda c: f"-{_mT(c, 'out')} @ g @ {_mT(c, 'out')}"},
   shown={"A": "-inv(A).mT @ g @ inv(A).mT"}, linear=NONLINEAR, predict=lambda s, p: tuple(s[0]),
   doc="matrix inverse (torch.linalg.inv, torch.inverse)",
   samples=(sample("inv(A)", torch.linalg.inv, A=In(3, 3)),
            sample("torch.inverse(A)", torch.inverse, A=In(2, 2, 2))))


def _solve_rule(arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        gb = f"solve({_mT(c, 'A')}, g)"
        if arg == "B":
            return gb
        if c.ndim("B") == 1:
            return f"-outer({gb}, out)"
        return f"-{gb} @ {_mT(c, 'out')}"

    return rule


op("solve", "A, B", torch=torch.linalg.solve, rules={"A": _solve_rule("A"), "B": _solve_rule("B")},
   shown={"A": "-solve(A.mT, g) @ X.mT  (X = solve(A, B))", "B": "solve(A.mT, g)"}, linear=NONLINEAR,
   predict=lambda s, p: tuple(s[1]) if len(s[1]) == 1 else matmul_shape([s[0], s[1]], p),
   doc="X with A @ X = B (torch.linalg.solve)",
   samples=(sample("solve(A, B)", torch.linalg.solve, A=In(3, 3), B=In(3, 2)),
            sample("torch.linalg.solve(A, b)", torch.linalg.solve, A=In(3, 3), b=In(3)),
            sample("solve(A, B)", torch.linalg.solve, A=In(2, 2, 2), B=In(2, 2, 1))))


def _cholesky_rule(c: RuleContext) -> str:
    n = c.shapes["A"][-1]
    P = f"where({_tril_mask(n, 0)}, {_mT(c, 'out')} @ g, zeros_like(out))"
    phi = f"0.5*({P} + {_mT(c, f'where({_tril_mask(n, -1)}, {P}, zeros_like(out))')})"
    return f"{_mT(c, 'inv(out)')} @ ({phi}) @ inv(out)"


op("cholesky", "A", torch=torch.linalg.cholesky, rules={"A": _cholesky_rule},
   shown={"A": "inv(L).mT @ Φ @ inv(L), P = tril(L.mT @ g), Φ = (P + tril(P, -1).mT)/2"}, linear=NONLINEAR,
   predict=lambda s, p: tuple(s[0]), doc="lower-triangular L with L Lᵀ = A (torch.linalg.cholesky)",
   samples=(sample(f"cholesky({SPD})", lambda A: torch.linalg.cholesky(A @ A.T + torch.eye(3)), A=In(3, 3)),
            sample("torch.linalg.cholesky(A @ A.transpose(-2, -1) + eye(2)) * w",
                   lambda A, w: torch.linalg.cholesky(A @ A.transpose(-2, -1) + torch.eye(2)) * w,
                   A=In(2, 2, 2), w=In(2, 2))))


def _pinv_rule(c: RuleContext) -> str:
    m, n = c.shapes["A"][-2:]
    P, A, g = _mT(c, "out"), "A", _mT(c, "g")
    return (f"-{P} @ g @ {P} + (eye({m}) - A @ out) @ {g} @ out @ {P}"
            f" + {P} @ out @ {g} @ (eye({n}) - out @ {A})")


op("pinv", "A", torch=torch.linalg.pinv, rules={"A": _pinv_rule},
   shown={"A": "-P.mT @ g @ P.mT + (I - A@P) @ g.mT @ P @ P.mT + P.mT @ P @ g.mT @ (I - P@A)  (P = pinv(A), constant rank)"},
   linear=NONLINEAR, predict=lambda s, p: tuple(s[0][:-2]) + (s[0][-1], s[0][-2]),
   doc="Moore–Penrose pseudo-inverse (torch.linalg.pinv)",
   samples=(sample("pinv(A)", torch.linalg.pinv, A=In(3, 2)), sample("pinv(A)", torch.linalg.pinv, A=In(2, 3))))


def _power_rule(c: RuleContext) -> str:
    n = c.params["n"]
    if n == 0:
        return "zeros_like(A)"
    base, g = ("A", "g") if n > 0 else ("inv(A)", "g")
    m = abs(n)
    bt = _mT(c, base) if base == "A" else "inv(A).transpose(-2, -1)"
    terms = []
    for k in range(m):
        left = "" if k == 0 else (f"{bt} @ " if k == 1 else f"matrix_power({bt}, {k}) @ ")
        right = "" if m - 1 - k == 0 else (f" @ {bt}" if m - 1 - k == 1 else f" @ matrix_power({bt}, {m - 1 - k})")
        terms.append(f"{left}{g}{right}")
    total = " + ".join(terms)
    return total if n > 0 else f"-{bt} @ ({total}) @ {bt}"


op("matrix_power", "A", "n", torch=lambda A, n: torch.linalg.matrix_power(A, n), positional_params=("n",),
   rules={"A": _power_rule}, shown={"A": "Σₖ (A.mT)**k @ g @ (A.mT)**(n-1-k)"}, linear=NONLINEAR, method=True,
   predict=lambda s, p: tuple(s[0]), doc="A @ A @ … (n times; through inv(A) for n < 0)",
   samples=(sample("matrix_power(A, 3)", lambda A: torch.linalg.matrix_power(A, 3), A=In(2, 2)),
            sample("torch.linalg.matrix_power(A, -2)", lambda A: torch.linalg.matrix_power(A, -2), A=In(2, 2, 2)),
            sample("A.matrix_power(1)", lambda A: A.matrix_power(1), A=In(3, 3))))


def _exp_rule(c: RuleContext) -> str:
    n = c.shapes["A"][-1]
    lead = ":, " * (c.ndim("A") - 2)
    at = _mT(c, "A")
    block = f"cat([cat([{at}, g], -1), cat([zeros_like(A), {at}], -1)], -2)"
    return f"matrix_exp({block})[{lead}:{n}, {n}:]"


op("matrix_exp", "A", torch=torch.linalg.matrix_exp, rules={"A": _exp_rule},
   shown={"A": "matrix_exp([[A.mT, g], [0, A.mT]])[:n, n:]  (upper-right block)"}, linear=NONLINEAR, method=True,
   predict=lambda s, p: tuple(s[0]), doc="the matrix exponential Σ Aᵏ/k!",
   samples=(sample("matrix_exp(A)", torch.linalg.matrix_exp, A=In(2, 2, domain="small")),
            sample("torch.linalg.matrix_exp(A)", torch.linalg.matrix_exp, A=In(2, 3, 3, domain="small"))))


# ------------------------------------------------------------------ batched products with scaling

def _scaled(c: RuleContext, key: str, text: str) -> str:
    k = c.params.get(key, 1)
    return text if k == 1 else f"{k!r}*({text})"


op("bmm", "a, b", torch=torch.bmm, rules={"a": "g @ b.transpose(1, 2)", "b": "a.transpose(1, 2) @ g"},
   linear=NONLINEAR, predict=matmul_shape, method=True, doc="a batch of matrix products (3-D @ 3-D)",
   samples=(sample("bmm(a, b)", torch.bmm, a=In(2, 2, 3), b=In(2, 3, 2)),))
for _name, _args, _fn, _rules, _doc, _shapes in (
        ("addmm", "input, mat1, mat2", torch.addmm,
         {"mat1": "g @ mat2.T", "mat2": "mat1.T @ g"}, "beta*input + alpha*(mat1 @ mat2)", ((2, 3), (2, 4), (4, 3))),
        ("addmv", "input, mat, vec", torch.addmv,
         {"mat": "outer(g, vec)", "vec": "mat.T @ g"}, "beta*input + alpha*(mat @ vec)", ((2,), (2, 3), (3,))),
        ("baddbmm", "input, batch1, batch2", torch.baddbmm,
         {"batch1": "g @ batch2.transpose(1, 2)", "batch2": "batch1.transpose(1, 2) @ g"},
         "beta*input + alpha*bmm(batch1, batch2)", ((2, 2, 3), (2, 2, 4), (2, 4, 3)))):
    _first, _second, _third = (a.strip() for a in _args.split(","))
    op(_name, _args, "beta=1, alpha=1", torch=lambda i, x, y, _f=_fn, **p: _f(i, x, y, **p),
       rules={_first: lambda c: _scaled(c, "beta", "g"),
              **{k: (lambda c, _t=v: _scaled(c, "alpha", _t)) for k, v in _rules.items()}},
       shown={_first: "beta*g", **{k: f"alpha*({v})" for k, v in _rules.items()}}, linear=NONLINEAR, method=True,
       predict=lambda s, p: tuple(s[0]), doc=_doc,
       samples=(sample(f"{_name}({_first}, {_second}, {_third})", _fn, **{
           _first: In(*_shapes[0]), _second: In(*_shapes[1]), _third: In(*_shapes[2])}),
                sample(f"{_name}({_first}, {_second}, {_third}, beta=0.5, alpha=2)",
                       lambda i, x, y, _f=_fn: _f(i, x, y, beta=0.5, alpha=2), **{
                           _first: In(*_shapes[0][1:]), _second: In(*_shapes[1]), _third: In(*_shapes[2])})))


def _kron_rule(arg: str) -> Callable[[RuleContext], str]:
    """``kron(a, b)`` reshaped to (a0, b0, a1, b1, …) is ``a`` ⊗ ``b`` elementwise, so each gradient is g
    in that shape times the other factor, summed over the other factor's dims."""

    def rule(c: RuleContext) -> str:
        sa, sb = c.shapes["a"], c.shapes["b"]
        if len(sa) != len(sb):
            raise NotImplementedError(Msg("symbolic kron of tensors with different numbers of dims"))
        inter = tuple(x for pair in zip(sa, sb) for x in pair)
        if arg == "a":
            other = tuple(x for s in sb for x in (1, s))
            dims = tuple(range(1, 2 * len(sa), 2))
            return f"(g.reshape({inter!r})*b.reshape({other!r})).sum({dims!r})"
        other = tuple(x for s in sa for x in (s, 1))
        dims = tuple(range(0, 2 * len(sa), 2))
        return f"(g.reshape({inter!r})*a.reshape({other!r})).sum({dims!r})"

    return rule


op("kron", "a, b", torch=torch.kron, rules={"a": _kron_rule("a"), "b": _kron_rule("b")},
   shown={"a": "(g.reshape(a0, b0, a1, b1)*b.reshape(1, b0, 1, b1)).sum((1, 3))",
          "b": "(g.reshape(a0, b0, a1, b1)*a.reshape(a0, 1, a1, 1)).sum((0, 2))"}, linear=NONLINEAR,
   predict=lambda s, p: tuple(x * y for x, y in zip(s[0], s[1])), doc="Kronecker product",
   samples=(sample("kron(a, b)", torch.kron, a=In(2, 2), b=In(2, 3)), sample("kron(a, b)", torch.kron, a=In(2), b=In(3))))
op("cross", "a, b", "dim=-1", torch=lambda a, b, dim=-1: torch.linalg.cross(a, b, dim=dim), positional_params=("dim",),
   rules={"a": lambda c: f"cross(b, g, dim={c.params.get('dim', -1)})",
          "b": lambda c: f"cross(g, a, dim={c.params.get('dim', -1)})"},
   shown={"a": "cross(b, g)", "b": "cross(g, a)"}, linear=NONLINEAR, method=True,
   doc="3-vector cross product along dim (torch.linalg.cross)",
   samples=(sample("cross(a, b)", lambda a, b: torch.linalg.cross(a, b), a=In(2, 3), b=In(2, 3)),
            sample("torch.linalg.cross(a, b, dim=0)", lambda a, b: torch.linalg.cross(a, b, dim=0), a=In(3, 2), b=In(3, 1))))


def _inner_rule(arg: str) -> Callable[[RuleContext], str]:
    def rule(c: RuleContext) -> str:
        na, nb = c.ndim("a"), c.ndim("b")
        table = {(1, 1): ("g*b", "g*a"), (2, 2): ("g @ b", "g.T @ a"), (2, 1): ("outer(g, b)", "a.T @ g"),
                 (1, 2): ("b.T @ g", "outer(g, a)")}
        if (na, nb) not in table:
            raise NotImplementedError(Msg("symbolic inner of {na}-D and {nb}-D tensors", na=na, nb=nb))
        return table[(na, nb)][0 if arg == "a" else 1]

    return rule


op("inner", "a, b", torch=torch.inner, rules={"a": _inner_rule("a"), "b": _inner_rule("b")},
   shown={"a": "g @ b  (1-D: g*b)", "b": "g.T @ a  (1-D: g*a)"}, linear=NONLINEAR, method=True,
   predict=lambda s, p: tuple(s[0][:-1]) + tuple(s[1][:-1]), doc="sum over the last dims of a and b",
   samples=(sample("inner(a, b)", torch.inner, a=In(2, 3), b=In(4, 3)), sample("inner(a, b)", torch.inner, a=In(3), b=In(2, 3))))
