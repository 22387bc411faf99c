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
from .autograd import JacobianTooCostly, TorchRun, make_leaves, torch_jacobian, torch_run
from .compare import all_agree
from .errors import GradexplainError, LimitError
from .execute import Shapes
from .i18n import Msg
from .ir import Const, Node, Program, walk
from .limits import Limits
from .ops import REGISTRY
from .options import DEFAULT_TOL, EvalOptions
from .parse import parse_program
from .phrases import COMMA, joined, message_of, symbolic_reason
from .report import ForwardEntry, GradEntry, GraphEntry, InputInfo, JacobianEntry, OutputInfo, Report
from .train import check_steps, check_trainable, dropout_masks
from .values import Value, clip, parse_value, split_assignment

DTYPES = {"float64": torch.float64, "float32": torch.float32}
JACOBIAN_WITH_VJP = 4096  # entries: with --grad-output the Jacobian is shown when this small
JACOBIAN_MAX = 10**6  # entries of a torch Jacobian at all
TORCH_ONLY = symbolic_reason(Msg("not computed (torch only)"))


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
        raise GradexplainError(Msg("--dtype must be float64 or float32, not {dtype!r}", dtype=opts.dtype))
    if not -2**63 <= opts.seed < 2**64:  # what torch.manual_seed accepts
        raise GradexplainError(Msg("--seed must fit in 64 bits, not {seed}", seed=opts.seed))
    if opts.tol is not None and not 0 <= opts.tol < math.inf:  # NaN fails this too
        raise GradexplainError(Msg("--tol must be a finite number of 0 or more, not {tol}", tol=opts.tol))
    return dtype, opts.tol if opts.tol is not None else DEFAULT_TOL[opts.dtype]


def select_output(program: Program, name: str | None) -> Program:
    if name is None:
        return program
    matches = [i for i, s in enumerate(program.statements) if s.name == name]
    if not matches:
        names = ", ".join(dict.fromkeys(s.name for s in program.statements))
        raise GradexplainError(Msg("--output {name}: no statement assigns {name!r} (statements: {names})", name=name,
                                   names=names))
    program.output = matches[-1]
    return program


def read_values(opts: EvalOptions, program: Program, dtype: torch.dtype) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for arg in opts.values:
        name, text = split_assignment(arg)
        if name in values:
            raise GradexplainError(Msg("{name} is given twice", name=name))
        try:
            values[name] = parse_value(text, opts.limits, dtype)
        except GradexplainError as e:
            raise GradexplainError(Msg("{name}={value}: {message}", name=name, value=clip(text), message=e.message),
                                   col=e.col, source=e.source) from None
    missing = [n for n in program.inputs if n not in values]
    if missing:
        if missing[1:]:
            raise GradexplainError(Msg("no value for {name!r}: give it as {name}=VALUE (also missing: {others})",
                                       name=missing[0], others=", ".join(missing[1:])))
        raise GradexplainError(Msg("no value for {name!r}: give it as {name}=VALUE", name=missing[0]))
    unknown_const = sorted(opts.const - set(values))
    if unknown_const:
        raise GradexplainError(Msg("--const {name}: no input of that name", name=unknown_const[0]))
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
    check_memory(program, shapes, opts.limits)
    if opts.train is not None:  # what the steps will record, before the run they follow
        check_steps(opts, sum(t.numel() for n, t in leaves.items() if t.requires_grad and n in program.inputs))
    grad_output = parse_value(opts.grad_output, opts.limits, dtype) if opts.grad_output is not None else None
    # an in-place statement may change a --const input (torch changes the caller's tensor): the torch run
    # gets its own copy, so the symbolic and numeric sides still see the values as given
    own = {n: t.clone() if program.in_place and not t.requires_grad else t for n, t in leaves.items()}
    forward_notes: list[str] = []  # made from the forward values, before backward() lets them go
    run = torch_run(program, own, grad_output.tensor if grad_output is not None else None, opts.limits,
                    on_forward=lambda trace: forward_notes.extend(misconceptions.notes(program, trace, opts.const)))
    wrt = [n for n in program.inputs if n not in opts.const]
    if opts.train is not None:
        check_trainable(run.output, wrt, opts.grad_output)
    report = torch_sections(opts, program, used, run, grad_output, tol)
    unused = [n for n in values if n not in program.inputs]
    if unused:
        report.notes.append(Msg("{names} given but not used by the expression", names=joined(unused, COMMA)))
    report.notes.extend(misconceptions.integer_input_note([n for n, v in used.items() if v.integers], opts.dtype))
    report.notes.extend(forward_notes)
    report.dropout = dropout_masks(program, shapes.shape)
    return TorchStage(opts, program, used, leaves, shapes, grad_output, run, wrt, tol, report)


GRADIENTS_AT_ONCE = 3  # tensors of the largest size backward() holds besides the saved ones (in, out ×2)


def predicted_bytes(program: Program, shapes: Shapes) -> tuple[int, int, int]:
    """What the torch run will hold at its peak, from the shapes alone: every value the program makes
    (autograd may save each one for backward) plus :data:`GRADIENTS_AT_ONCE` gradients of the largest
    size.  Returns (bytes, values counted, largest value in elements).  Views are counted as copies:
    the prediction errs on the safe side."""
    total, largest, count = 0, 0, 0
    for node in walk([s.node for s in program.statements]):
        v = shapes.value(node)
        for t in (v if isinstance(v, (tuple, list)) else (v,)):  # max(x, dim) gives values and indices
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
                largest = max(largest, t.numel() * t.element_size())
                count += 1
    return total + GRADIENTS_AT_ONCE * largest, count, largest


def check_memory(program: Program, shapes: Shapes, limits: Limits) -> None:
    """Refuse before the work a run whose tensors alone would pass ``--max-memory`` MiB (with the
    ~250 MiB torch and SymPy take, the default keeps a whole run under 1 GiB)."""
    need, count, largest = predicted_bytes(program, shapes)
    if need > limits.max_memory * 2**20:
        raise LimitError(Msg("this program would hold about {need} MiB of tensors at once ({count} values of up "
                             "to {largest} MiB each, and their gradients), over the limit of {limit} MiB (raise it "
                             "with --max-memory)", need=f"{-(-need // 2**20):,}", count=count,
                             largest=f"{largest / 2**20:,.0f}", limit=f"{limits.max_memory:,}"))


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
    stage.report.notes.append(Msg("the output depends on no input that requires grad (constants and --const inputs "
                                  "only): there is nothing to differentiate, so grads is empty"))
    return False


def note_jacobian_instead(stage: TorchStage) -> None:
    stage.report.notes.append(
        Msg("the output has shape {shape}, not a scalar: backward() needs a `gradient` argument here (PyTorch: "
            "\"grad can be implicitly created only for scalar outputs\"). Showing the Jacobian instead; pass "
            "--grad-output V for the vector-Jacobian product vᵀJ that x.grad would hold.",
            shape=list(stage.run.output.shape)))


def torch_jacobians(stage: TorchStage) -> dict[str, JacobianEntry]:
    """torch's Jacobian per input (``symbolic`` still empty), or the reason there is none."""
    leaves, wrt = stage.leaves, stage.wrt
    out_numel = stage.shapes.numel(stage.program.output_node)
    if any(out_numel * leaves[n].numel() > JACOBIAN_MAX for n in wrt):
        return {n: JacobianEntry(None, None, None, reason=Msg("a Jacobian of {entries:,} entries is too large to show "
                                                              "(limit {limit:,})", entries=out_numel * leaves[n].numel(),
                                                              limit=JACOBIAN_MAX)) for n in wrt}
    if any(out_numel * leaves[n].numel() == 0 for n in wrt):  # torch's jacobian() cannot stack nothing
        return {n: JacobianEntry(None, None, None, reason=Msg("the Jacobian is empty: a tensor with no elements is "
                                                              "involved")) for n in wrt}
    try:
        jac = torch_jacobian(stage.program, leaves, stage.opts.limits)
    except JacobianTooCostly as e:
        return {n: JacobianEntry(None, None, None, reason=Msg("the Jacobian is too costly to build ({cost}, over the "
                                                              "limit of {limit} elements in all; raise it with "
                                                              "--max-jacobian)", cost=message_of(e),
                                                              limit=f"{stage.opts.limits.max_jacobian:,}"))
                for n in wrt}
    except RuntimeError as e:  # torch's own backward refuses (clamp whose bounds broadcast past its input)
        raise GradexplainError(Msg("backward(): {reason}", reason=str(e).strip().splitlines()[0])) from None
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
