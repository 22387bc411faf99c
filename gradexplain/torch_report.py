"""The torch half of ``eval``: text → IR → values → one real torch run → the Report's torch parts.

Nothing here needs SymPy, so ``gradexplain graph`` (which draws torch's graph) runs this stage
alone (:func:`explain_torch`) and never imports it; :mod:`gradexplain.explain` adds the symbolic
stages on top of the same :class:`TorchStage`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from . import misconceptions
from .autograd import JACOBIAN_WORK, JacobianTooCostly, TorchRun, make_leaves, torch_jacobian, torch_run
from .compare import all_agree
from .errors import GradexplainError
from .execute import Shapes
from .i18n import Msg
from .ir import Const, Node, Program
from .ops import REGISTRY
from .options import DEFAULT_TOL, EvalOptions
from .parse import parse_program
from .report import ForwardEntry, GradEntry, GraphEntry, InputInfo, JacobianEntry, OutputInfo, Report
from .train import check_trainable, dropout_masks
from .values import Value, clip, parse_value, split_assignment

DTYPES = {"float64": torch.float64, "float32": torch.float32}
JACOBIAN_WITH_VJP = 4096  # entries: with --grad-output the Jacobian is shown when this small
JACOBIAN_MAX = 10**6  # entries of a torch Jacobian at all
TORCH_ONLY = "symbolic: not computed (torch only)"


@dataclass
class TorchStage:
    """Everything the torch run established, for the stages after it."""

    opts: EvalOptions
    program: Program
    used: dict[str, Value]  # the inputs the program uses
    leaves: dict[str, torch.Tensor]
    shapes: Shapes
    grad_output: Value | None
    run: TorchRun
    wrt: list[str]  # inputs that require grad
    tol: float
    report: Report

    @property
    def seed(self) -> torch.Tensor | None:
        """The ``gradient`` argument of ``backward()`` (None for a scalar output)."""
        return self.grad_output.tensor if self.grad_output is not None else None

    @property
    def seed_node(self) -> Node:
        """The same seed as an IR constant, exact where the input was (what reverse mode starts from)."""
        return Const(1) if self.grad_output is None else self.grad_output.literal()

    @property
    def jacobian_only(self) -> bool:
        """A non-scalar output without ``--grad-output``: no ``backward()`` without a gradient, so the Jacobian."""
        return self.grad_output is None and self.run.output.dim() != 0

    def show_jacobian(self) -> bool:
        """``--jacobian``, or a vJp whose Jacobian is small enough to show beside it."""
        out = self.run.output
        return self.opts.jacobian or (self.grad_output is not None and
                                      sum(out.numel() * self.leaves[n].numel() for n in self.wrt) <= JACOBIAN_WITH_VJP)


def check_options(opts: EvalOptions) -> tuple[torch.dtype, float]:
    """The dtype and tolerance asked for, validated."""
    dtype = DTYPES.get(opts.dtype)
    if dtype is None:
        raise GradexplainError(f"--dtype must be float64 or float32, not {opts.dtype!r}")
    if not -2**63 <= opts.seed < 2**64:  # what torch.manual_seed accepts
        raise GradexplainError(f"--seed must fit in 64 bits, not {opts.seed}")
    if opts.tol is not None and not 0 <= opts.tol < math.inf:  # NaN fails this too
        raise GradexplainError(f"--tol must be a finite number of 0 or more, not {opts.tol}")
    return dtype, opts.tol if opts.tol is not None else DEFAULT_TOL[opts.dtype]


def select_output(program: Program, name: str | None) -> Program:
    if name is None:
        return program
    matches = [i for i, s in enumerate(program.statements) if s.name == name]
    if not matches:
        names = ", ".join(dict.fromkeys(s.name for s in program.statements))
        raise GradexplainError(f"--output {name}: no statement assigns {name!r} (statements: {names})")
    program.output = matches[-1]
    return program


def read_values(opts: EvalOptions, program: Program, dtype: torch.dtype) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for arg in opts.values:
        name, text = split_assignment(arg)
        if name in values:
            raise GradexplainError(f"{name} is given twice")
        try:
            values[name] = parse_value(text, opts.limits, dtype)
        except GradexplainError as e:
            raise GradexplainError(f"{name}={clip(text)}: {e.message}", col=e.col, source=e.source) from None
    missing = [n for n in program.inputs if n not in values]
    if missing:
        raise GradexplainError(f"no value for {missing[0]!r}: give it as {missing[0]}=VALUE"
                               + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else ""))
    unknown_const = sorted(opts.const - set(values))
    if unknown_const:
        raise GradexplainError(f"--const {unknown_const[0]}: no input of that name")
    return values


def run_torch(opts: EvalOptions) -> TorchStage:
    """Parse, read the inputs, check shapes and sizes before any real work, run torch once, and
    start the Report with what torch did (inputs, forward steps, output, graph, notes)."""
    dtype, tol = check_options(opts)
    torch.set_default_dtype(dtype)
    torch.default_generator.manual_seed(opts.seed)  # every tensor here is on the CPU; torch.manual_seed also
    # seeds CUDA, MPS and XPU, milliseconds per call that a batch of small problems would pay each time
    program = select_output(parse_program(opts.expr, opts.limits), opts.output)
    values = read_values(opts, program, dtype)
    used = {n: values[n] for n in program.inputs}
    integer = {n for n, v in used.items() if not v.tensor.is_floating_point()}
    if integer:  # an integer input (Yb=tensor([1, 0]), an index tensor) cannot require grad: a constant, as --const
        opts = replace(opts, const=opts.const | integer)
    leaves = make_leaves({n: v.tensor for n, v in used.items()}, opts.const, dtype)
    shapes = Shapes(leaves, opts.limits)
    for stmt in program.statements:  # shape errors and size limits before any real work
        shapes.shape(stmt.node)
    grad_output = parse_value(opts.grad_output, opts.limits, dtype) if opts.grad_output is not None else None
    # an in-place statement may change a --const input (torch changes the caller's tensor): the torch run
    # gets its own copy, so the symbolic and numeric sides still see the values as given
    own = {n: t.clone() if program.in_place and not t.requires_grad else t for n, t in leaves.items()}
    run = torch_run(program, own, grad_output.tensor if grad_output is not None else None, opts.limits)
    wrt = [n for n in program.inputs if n not in opts.const]
    if opts.train is not None:
        check_trainable(run.output, wrt, opts.grad_output)
    report = torch_sections(opts, program, used, run, grad_output, tol)
    unused = [n for n in values if n not in program.inputs]
    if unused:
        report.notes.append(f"{', '.join(unused)} given but not used by the expression")
    report.notes.extend(misconceptions.integer_input_note([n for n, v in used.items() if v.integers], opts.dtype))
    report.notes.extend(misconceptions.notes(program, run.trace, opts.const))
    report.dropout = dropout_masks(program, shapes.shape)
    return TorchStage(opts, program, used, leaves, shapes, grad_output, run, wrt, tol, report)


def torch_sections(opts: EvalOptions, program: Program, used: dict[str, Value], run: TorchRun,
                   grad_output: Value | None, tol: float) -> Report:
    """The Report as torch alone fills it: no gradients compared yet (``agree`` starts True)."""
    output = run.output
    return Report(
        expr=opts.expr,
        inputs={n: InputInfo(list(v.tensor.shape), v.tensor, n not in opts.const, v.exact) for n, v in used.items()},
        forward=[ForwardEntry(s.name, s.src, list(s.value.shape) if isinstance(s.value, torch.Tensor) else [],
                              s.value, s.grad_fn, s.grad) for s in run.statements],
        output=OutputInfo(program.statements[program.output].name, list(output.shape), output.detach(),
                          type(output.grad_fn).__name__ if output.grad_fn is not None else None, output.requires_grad),
        grad_output=grad_output.tensor if grad_output is not None else None,
        graph=[GraphEntry(g.id, g.node, g.next, g.variable, g.label, g.grad_output, g.grad_inputs, g.saved,
                          rule_summary(g.op), edges=g.edges, saved_from=g.saved_from, shape=g.shape, value=g.value)
               for g in run.graph],
        grads={}, jacobian=None, agree=True, dtype=opts.dtype, tol=tol,
    )


def rule_summary(op: str | None) -> str | None:
    """The registry's rule per argument of ``op``, as one line for the graph node."""
    if op is None or op not in REGISTRY:
        return None
    spec = REGISTRY[op]
    names = spec.tensor_args if not spec.variadic else ("t_i",)
    rules = [f"{a}: {spec.shown_rule(a)}" for a in names if spec.shown_rule(a)]
    return "; ".join(rules) or None


def differentiable(stage: TorchStage) -> bool:
    """Whether the output depends on an input that requires grad; if not, the Report says so."""
    if stage.run.output.requires_grad:
        return True
    stage.report.notes.append("the output depends on no input that requires grad (constants and --const inputs "
                              "only): there is nothing to differentiate, so grads is empty")
    return False


def note_jacobian_instead(stage: TorchStage) -> None:
    stage.report.notes.append(
        f"the output has shape {list(stage.run.output.shape)}, not a scalar: backward() needs a `gradient` argument "
        "here (PyTorch: \"grad can be implicitly created only for scalar outputs\"). Showing the Jacobian "
        "instead; pass --grad-output V for the vector-Jacobian product vᵀJ that x.grad would hold.")


def torch_jacobians(stage: TorchStage) -> dict[str, JacobianEntry]:
    """torch's Jacobian per input (``symbolic`` still empty), or the reason there is none."""
    leaves, wrt = stage.leaves, stage.wrt
    out_numel = stage.shapes.numel(stage.program.output_node)
    if any(out_numel * leaves[n].numel() > JACOBIAN_MAX for n in wrt):
        return {n: JacobianEntry(None, None, None, reason=f"a Jacobian of {out_numel * leaves[n].numel():,} entries "
                                 f"is too large to show (limit {JACOBIAN_MAX:,})") for n in wrt}
    if any(out_numel * leaves[n].numel() == 0 for n in wrt):  # torch's jacobian() cannot stack nothing
        return {n: JacobianEntry(None, None, None, reason="the Jacobian is empty: a tensor with no elements is "
                                 "involved") for n in wrt}
    try:
        jac = torch_jacobian(stage.program, leaves, stage.opts.limits)
    except JacobianTooCostly as e:
        return {n: JacobianEntry(None, None, None, reason=f"the Jacobian is too costly to build ({e}, over the "
                                 f"limit of {JACOBIAN_WORK:,} elements in all)") for n in wrt}
    except RuntimeError as e:  # torch's own backward refuses (clamp whose bounds broadcast past its input)
        raise GradexplainError(Msg("backward(): {detail}", detail=str(e).strip().splitlines()[0])) from None
    return {n: JacobianEntry(jac[n], None, None) for n in wrt}


def explain_torch(opts: EvalOptions) -> Report:
    """The Report with torch's side only (gradients, Jacobians, graph): what ``graph`` draws."""
    stage = run_torch(opts)
    report = stage.report
    if not differentiable(stage):
        return report
    if stage.jacobian_only:
        note_jacobian_instead(stage)
        report.jacobian = torch_only(torch_jacobians(stage))
        report.agree = all_agree(e.agree for e in report.jacobian.values())
        return report
    report.grads = {n: GradEntry(stage.run.grads.get(n), None, None, None, reason=TORCH_ONLY) for n in stage.wrt}
    report.agree = all_agree(e.agree for e in report.grads.values())
    if stage.show_jacobian():
        report.jacobian = torch_only(torch_jacobians(stage))
    report.notes.extend(stage.run.notes)
    return report


def torch_only(entries: dict[str, JacobianEntry]) -> dict[str, JacobianEntry]:
    for e in entries.values():
        if e.torch is not None:
            e.reason = TORCH_ONLY
    return entries
