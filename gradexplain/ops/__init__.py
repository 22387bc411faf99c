"""The op registry: every operation gradexplain knows, one entry per op, in one place.

One entry (an :class:`OpSpec`, registered by :func:`op`) holds everything about an op: its torch
implementation, the vector-Jacobian rule of each argument as EXPR text, its SymPy scalar function
(elementwise ops), how it is linear (for second derivatives), shape prediction, its kinks and
torch's convention there, the line ``gradexplain ops`` prints, and its sample inputs.  The rest
of gradexplain reads the registry; nothing else names an op.  Modelled on PyTorch's
``derivatives.yaml`` + OpInfo, JAX's ``deflinear`` and tinygrad's one gradient table.

Layout, by family: :mod:`.spec` (the entry format, :func:`op`, ``REGISTRY``, :func:`resolve`),
:mod:`.elementwise`, :mod:`.reductions`, :mod:`.linalg`, :mod:`.shape`, :mod:`.indexing`,
:mod:`.nn`, :mod:`.losses`, :mod:`.constructors`.  The registry imports nothing above
:mod:`gradexplain.ir`, and SymPy only lazily (listing ops never imports it).

Adding an op
------------
Add one ``op(...)`` call to its family module; nothing else changes.  A rule is EXPR over the
argument names, the op's output ``out`` and the incoming gradient ``g``.  An elementwise op
(broadcasting) also names its SymPy scalar function, a function of ``gradexplain.symfuncs`` or,
prefixed, of ``sympy``; tests check that ``sympy.diff`` of it agrees with the written rule::

    op("sinh", "a", torch=unary(torch.sinh), rules={"a": "g*cosh(a)"}, elementwise=True,
       sym="sympy.sinh", doc="hyperbolic sine",
       samples=(sample("sinh(a)", torch.sinh, a=In(2, 3)),))

A reduction's rule depends on ``dim``/``keepdim``, so it is a function of the
:class:`RuleContext` (params, shapes, dtypes) returning text, with ``shown`` the text
``gradexplain ops`` prints; ``linear`` says how the op maps a batch of directions (here: the same
op, ``dim`` shifted past the direction's dims)::

    op("sum", "a", "dim=None, keepdim=False", torch=_sum_torch, method=True, positional_params=("dim",),
       rules={"a": lambda c: f"g{c.unsqueeze()}*ones_like(a)"},
       shown={"a": "g*ones_like(a)  (g unsqueezed along dim)"}, obj=obj_reduce("sum"),
       linear=Linear("a", batch="dims", dims=("dim",)), doc="sum of elements (over dim)",
       samples=(sample("a.sum()", lambda a: a.sum(), a=In(2, 3)),
                sample("a.sum((0, 2), keepdim=True)", lambda a: a.sum((0, 2), keepdim=True), a=In(2, 3, 2))))

A shape-dependent rule (torch's 1-D promotion) and a batching function for the Hessian::

    op("matmul", "a, b", torch=operator.matmul, rules={"a": _matmul_rule("a"), "b": _matmul_rule("b")},
       shown={"a": "g @ b.T  (1-D: g*b, outer(g, b), b @ g)", "b": "a.T @ g  (1-D: g*a, outer(a, g))"},
       obj=_obj_matmul, infix="@", predict=matmul_shape, linear=Linear("a, b", batch=_matmul_batch),
       doc="a @ b with torch's 1-D promotion rules",
       samples=(sample("a @ b", lambda a, b: a @ b, a=In(2, 3), b=In(3)),
                sample("a @ b", lambda a, b: a @ b, a=In(2, 2, 3), b=In(3, 4))))

Fields worth knowing:

- ``samples``: :func:`sample` (EXPR using the op, a plain-torch ``ref`` taking the inputs in order,
  inputs as ``NAME=In(*shape, domain=...)``, ``const=``).  tests/test_ops_registry.py runs each one
  torch vs symbolic vs ``gradcheck`` and fails for a user op without samples; ``value_samples``
  (:class:`ValueSample`) check forward values of ops without a gradient.  Cover broadcasting,
  dims/keepdim and ties here.
- ``linear``: :class:`Linear` (``Linear("a, b", joint=True)`` for ``add``; ``Linear("a, b")`` for
  ``mul``/``matmul``, linear in each with the other fixed; ``batch=`` how the op applies to a leading
  batch of direction dims) or ``NONLINEAR``.  Every op with a gradient declares one, except
  elementwise ops, whose declaration a test checks against SymPy.  An op without any rule is a
  constant to second order.  A test reads each declaration's matrix off a sample that is linear in
  an input and compares it with torch's Jacobian, so give a linear op such a sample
  (``a[:, 1] * 2 + a[0, 0:2]``).
- ``kinks``: :class:`Kink` points where the op is not differentiable (ties, 0 for ``relu``), with
  torch's convention in words and inputs (for sample ``sample``) at which the test checks that
  torch, the symbolic formula and plain torch agree.
- ``obj``: the op over numpy object arrays of SymPy scalars (per-element formulas, Jacobians);
  elementwise ops use ``sym`` instead.
- ``predict``: output shape from argument shapes (checked against ``--max-elements`` before
  running); elementwise ops broadcast by default.
- ``rules`` may return an IR node instead of text (index keys have no EXPR spelling), and
  ``variadic_rule(i)`` gives list element i's rule (``stack``, ``cat``).
- Spelling: ``method``, ``infix``, ``positional_params``, ``varargs_param``, ``hidden_params``,
  ``always_printed``, ``optional_args``; ``user=False`` for internal ops.

Integer arguments and several outputs.  An integer tensor (class indices, an index tensor) is an
ordinary tensor argument without a rule: no rule means no gradient (``cross_entropy``'s ``target``),
and ``c.dtypes`` tells a rule the argument's dtype; a static integer (``dim``, ``k``) is a param.
The IR has no tuple values: an op returning several tensors (``max(x, dim)`` → values, indices)
declares ``outputs=Outputs(ops=("max_values", "max_indices"), names=("values", "indices"), when=...)``,
and each output is a single-output op over one torch call (values: ``torch.max(a, dim).values``, so the
``grad_fn`` is ``MaxBackward0``; indices: an integer op without rules) with ``output_of="max"``.  The
parser maps ``.values``/``.indices``/``[0]``/``v, i = x.max(0)`` onto them; ``Outputs(each="split_part")``
is one op for every position (told which by its ``index`` param) where shapes decide the count.
"""
from __future__ import annotations

from . import constructors, elementwise, indexing, linalg, losses, nn, reductions, shape  # noqa: F401 - registers
from .constructors import VALUE_ONLY
from .nn import dropout_mask
from .spec import (ALIASES, NONLINEAR, REGISTRY, REQUIRED, Kink, Linear, OpSpec, Outputs, RuleContext, Sample,
                   ValueSample, as_tensor, broadcast_shape, op, resolve)

__all__ = ["ALIASES", "NONLINEAR", "REGISTRY", "REQUIRED", "VALUE_ONLY", "Kink", "Linear", "OpSpec", "Outputs", "RuleContext",
           "Sample", "ValueSample", "as_tensor", "broadcast_shape", "dropout_mask", "op", "resolve"]
