"""Training steps (``eval --step``): real ``torch.optim`` steps on the non-const inputs.

The articles this tool grew from go past ``x.grad`` to ``optimizer.step()``; so does this module.
Each step runs the program, calls ``backward()`` and ``optimizer.step()`` (and an LR scheduler),
and records the loss, every parameter's value, ``.grad``, update and new value.  Three checks per
step, each independent of the others:

* the gradient torch computed agrees with the SymPy formula of the report, evaluated at the
  step's parameter values (the formula is read back from its EXPR text, as the contract promises);
* the update ``torch.optim`` made agrees with the optimizer's update rule computed here by hand
  (own state: momentum buffer, Adam's m and v), written out with the numbers substituted;
* with ``--no-zero-grad`` the run is repeated with ``zero_grad()``, so the accumulated ``.grad``
  can be shown next to what a correct loop would have had.

Dropout draws a fresh mask per step (``torch.manual_seed(seed + step - 1)``), as a training loop
does; the SymPy formula is evaluated under the same seed, so it uses the same mask.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .autograd import run_program
from .compare import agrees, all_agree, compare
from .errors import GradexplainError, LimitError
from .i18n import Msg
from .execute import Shapes, evaluate
from .format import fmt_value
from .formula import read_formula
from .ir import Call, Node, Program, walk
from .limits import DEFAULT
from .ops import dropout_mask
from .options import EvalOptions
from .printer import to_text
from .report import DropoutMask, Report, TrainingInfo

MAX_STEPS = 1000
# Each step records about this many tensors of the parameters' size (value, grad, own grad, after,
# update, the SymPy value, the by-hand update, optimizer state), all kept for the report.
RECORDED_PER_STEP = 8


@dataclass
class TrainOptions:
    """The ``--step`` options as given; ``None`` means the optimizer's own default."""

    optimizer: str
    lr: float | None = None
    steps: int = 1
    momentum: float | None = None
    nesterov: bool = False
    betas: str | None = None  # "0.9,0.999"
    eps: float | None = None
    weight_decay: float | None = None
    zero_grad: bool = True
    schedule: str | None = None  # "step:step_size=1,gamma=0.5"


def train_options(step: str | None, lr: float | None = None, steps: int | None = None, momentum: float | None = None,
                  nesterov: bool = False, betas: str | None = None, eps: float | None = None,
                  weight_decay: float | None = None, no_zero_grad: bool = False,
                  schedule: str | None = None) -> TrainOptions | None:
    """The CLI's training options; an option that only makes sense with ``--step`` is an error without it."""
    if step is None:
        given = {"--lr": lr, "--steps": steps, "--momentum": momentum, "--nesterov": nesterov or None,
                 "--betas": betas, "--eps": eps, "--weight-decay": weight_decay,
                 "--no-zero-grad": no_zero_grad or None, "--schedule": schedule}
        stray = [k for k, v in given.items() if v is not None]
        if stray:
            raise GradexplainError(Msg("{option} needs --step OPT (one of {choices})", option=stray[0],
                                       choices=", ".join(OPTIMIZERS)))
        return None
    return TrainOptions(step.lower(), lr, 1 if steps is None else steps, momentum, nesterov, betas, eps, weight_decay,
                        not no_zero_grad, schedule)


# ================================================================= update rules, by hand


def _n(v: Any) -> str:
    """A number or tensor for a substituted formula; negative scalars in parentheses."""
    text = fmt_value(v)
    return f"({text})" if text.startswith("-") else text


def _line(formula: str, numbers: str, result: torch.Tensor) -> str:
    return f"{formula} = {numbers} = {fmt_value(result)}"


Rule = Callable[[str, torch.Tensor, torch.Tensor, dict, dict], tuple[torch.Tensor, list[str]]]


def _decay(name: str, p: torch.Tensor, g: torch.Tensor, hp: dict, lines: list[str]) -> torch.Tensor:
    """L2 weight decay folded into the gradient (SGD, Adam, RMSprop, Adagrad): g ← g + wd·p."""
    wd = hp["weight_decay"]
    if not wd:
        return g
    g2 = g + wd * p
    lines.append(_line(f"g ← g + wd·{name}", f"{_n(g)} + {_n(wd)}·{_n(p)}", g2))
    return g2


def _sgd(name: str, p: torch.Tensor, g: torch.Tensor, st: dict, hp: dict) -> tuple[torch.Tensor, list[str]]:
    lines: list[str] = []
    lr, mu = hp["lr"], hp["momentum"]
    g = _decay(name, p, g, hp, lines)
    d, shown = g, "g"
    if mu:
        if "buf" not in st:
            st["buf"] = g.clone()
            lines.append(Msg("buf ← g = {g}  (first step: the buffer starts as g)", g=_n(g)))
        else:
            buf = mu * st["buf"] + (1 - hp["dampening"]) * g
            lines.append(_line("buf ← μ·buf + (1 − dampening)·g",
                               f"{_n(mu)}·{_n(st['buf'])} + {_n(1 - hp['dampening'])}·{_n(g)}", buf))
            st["buf"] = buf
        if hp["nesterov"]:
            d, shown = g + mu * st["buf"], "d"
            lines.append(_line("d = g + μ·buf", f"{_n(g)} + {_n(mu)}·{_n(st['buf'])}", d))
        else:
            d, shown = st["buf"], "buf"
    after = p - lr * d
    lines.append(_line(f"{name} ← {name} − lr·{shown}", f"{_n(p)} − {_n(lr)}·{_n(d)}", after))
    return after, lines


def _adam(decoupled: bool) -> Rule:
    def rule(name: str, p: torch.Tensor, g: torch.Tensor, st: dict, hp: dict) -> tuple[torch.Tensor, list[str]]:
        lines: list[str] = []
        lr, (b1, b2), eps, wd = hp["lr"], hp["betas"], hp["eps"], hp["weight_decay"]
        if decoupled and wd:
            shrunk = p * (1 - lr * wd)
            lines.append(_line(f"{name} ← {name}·(1 − lr·wd)", f"{_n(p)}·(1 − {_n(lr)}·{_n(wd)})", shrunk))
            p = shrunk
        elif not decoupled:
            g = _decay(name, p, g, hp, lines)
        st["t"] = t = st.get("t", 0) + 1
        m0, v0 = st.get("m", torch.zeros_like(p)), st.get("v", torch.zeros_like(p))
        st["m"], st["v"] = m, v = b1 * m0 + (1 - b1) * g, b2 * v0 + (1 - b2) * g * g
        lines.append(_line("m ← β₁·m + (1 − β₁)·g", f"{_n(b1)}·{_n(m0)} + {_n(1 - b1)}·{_n(g)}", m))
        lines.append(_line("v ← β₂·v + (1 − β₂)·g²", f"{_n(b2)}·{_n(v0)} + {_n(1 - b2)}·{_n(g)}²", v))
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        lines.append(_line(f"m̂ = m/(1 − β₁^{t})", f"{_n(m)}/(1 − {_n(b1)}^{t})", m_hat))
        lines.append(_line(f"v̂ = v/(1 − β₂^{t})", f"{_n(v)}/(1 − {_n(b2)}^{t})", v_hat))
        after = p - lr * m_hat / (v_hat.sqrt() + eps)
        lines.append(_line(f"{name} ← {name} − lr·m̂/(√v̂ + ε)", f"{_n(p)} − {_n(lr)}·{_n(m_hat)}/(√{_n(v_hat)} + {_n(eps)})",
                           after))
        return after, lines

    return rule


def _rmsprop(name: str, p: torch.Tensor, g: torch.Tensor, st: dict, hp: dict) -> tuple[torch.Tensor, list[str]]:
    lines: list[str] = []
    lr, alpha, eps, mu = hp["lr"], hp["alpha"], hp["eps"], hp["momentum"]
    g = _decay(name, p, g, hp, lines)
    v0 = st.get("v", torch.zeros_like(p))
    st["v"] = v = alpha * v0 + (1 - alpha) * g * g
    lines.append(_line("v ← α·v + (1 − α)·g²", f"{_n(alpha)}·{_n(v0)} + {_n(1 - alpha)}·{_n(g)}²", v))
    step = g / (v.sqrt() + eps)
    if mu:
        buf0 = st.get("buf", torch.zeros_like(p))
        st["buf"] = buf = mu * buf0 + step
        lines.append(_line("buf ← μ·buf + g/(√v + ε)", f"{_n(mu)}·{_n(buf0)} + {_n(g)}/(√{_n(v)} + {_n(eps)})", buf))
        after = p - lr * buf
        lines.append(_line(f"{name} ← {name} − lr·buf", f"{_n(p)} − {_n(lr)}·{_n(buf)}", after))
    else:
        after = p - lr * step
        lines.append(_line(f"{name} ← {name} − lr·g/(√v + ε)", f"{_n(p)} − {_n(lr)}·{_n(g)}/(√{_n(v)} + {_n(eps)})",
                           after))
    return after, lines


def _adagrad(name: str, p: torch.Tensor, g: torch.Tensor, st: dict, hp: dict) -> tuple[torch.Tensor, list[str]]:
    lines: list[str] = []
    eps = hp["eps"]
    g = _decay(name, p, g, hp, lines)
    st["t"] = t = st.get("t", 0) + 1
    lr = hp["lr"] / (1 + (t - 1) * hp["lr_decay"])
    if hp["lr_decay"]:
        lines.append(_line("clr = lr/(1 + (t − 1)·lr_decay)", f"{_n(hp['lr'])}/(1 + {t - 1}·{_n(hp['lr_decay'])})",
                           torch.tensor(lr)))
    s0 = st.get("s", torch.full_like(p, hp["initial_accumulator_value"]))
    st["s"] = s = s0 + g * g
    lines.append(_line("s ← s + g²", f"{_n(s0)} + {_n(g)}²", s))
    after = p - lr * g / (s.sqrt() + eps)
    lr_name = "clr" if hp["lr_decay"] else "lr"
    lines.append(_line(f"{name} ← {name} − {lr_name}·g/(√s + ε)", f"{_n(p)} − {_n(lr)}·{_n(g)}/(√{_n(s)} + {_n(eps)})",
                       after))
    return after, lines


@dataclass(frozen=True)
class Optimizer:
    cls: type
    options: tuple[str, ...]  # the CLI options that apply (TrainOptions field names)
    shown: tuple[str, ...]  # hyperparameters shown and used by the rule
    rule: Rule


OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer(torch.optim.SGD, ("momentum", "nesterov", "weight_decay"),
                     ("lr", "momentum", "dampening", "nesterov", "weight_decay"), _sgd),
    "adam": Optimizer(torch.optim.Adam, ("betas", "eps", "weight_decay"), ("lr", "betas", "eps", "weight_decay"),
                      _adam(False)),
    "adamw": Optimizer(torch.optim.AdamW, ("betas", "eps", "weight_decay"), ("lr", "betas", "eps", "weight_decay"),
                       _adam(True)),
    "rmsprop": Optimizer(torch.optim.RMSprop, ("momentum", "eps", "weight_decay"),
                         ("lr", "alpha", "eps", "momentum", "weight_decay"), _rmsprop),
    "adagrad": Optimizer(torch.optim.Adagrad, ("eps", "weight_decay"),
                         ("lr", "lr_decay", "eps", "weight_decay", "initial_accumulator_value"), _adagrad),
}


def _betas(text: str) -> tuple[float, float]:
    try:
        b1, b2 = (float(v) for v in text.split(","))
    except ValueError:
        raise GradexplainError(Msg("--betas {text}: give two numbers, e.g. --betas 0.9,0.999", text=text)) from None
    return b1, b2


def make_optimizer(t: TrainOptions, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    spec = OPTIMIZERS.get(t.optimizer)
    if spec is None:
        raise GradexplainError(Msg("--step {name}: unknown optimizer (one of {choices})", name=t.optimizer,
                                   choices=", ".join(OPTIMIZERS)))
    kwargs: dict[str, Any] = {} if t.lr is None else {"lr": t.lr}
    for opt in ("momentum", "nesterov", "betas", "eps", "weight_decay"):
        value = getattr(t, opt)  # fixed field names, never user text
        if value is None or value is False:
            continue
        if opt not in spec.options:
            users = [n for n, s in OPTIMIZERS.items() if opt in s.options]
            raise GradexplainError(Msg("--{option} does not apply to {name} (it applies to {users})",
                                       option=opt.replace("_", "-"), name=t.optimizer, users=", ".join(users)))
        kwargs[opt] = _betas(value) if opt == "betas" else value
    try:
        return spec.cls(params, **kwargs)
    except ValueError as e:
        raise GradexplainError(Msg("--step {name}: {reason}", name=t.optimizer, reason=str(e))) from None


# ======================================================================== LR schedules


@dataclass(frozen=True)
class Schedule:
    cls: type
    params: dict[str, type]
    required: tuple[str, ...]
    formula: str  # the lr of step t+1 after t scheduler steps
    positive: tuple[str, ...] = ()  # integer periods torch divides by: 0 raises ZeroDivisionError mid-run


SCHEDULES: dict[str, Schedule] = {
    "step": Schedule(torch.optim.lr_scheduler.StepLR, {"step_size": int, "gamma": float}, ("step_size",),
                     "lr = lr₀·γ^⌊t/step_size⌋", positive=("step_size",)),
    "exponential": Schedule(torch.optim.lr_scheduler.ExponentialLR, {"gamma": float}, ("gamma",), "lr = lr₀·γ^t"),
    "cosine": Schedule(torch.optim.lr_scheduler.CosineAnnealingLR, {"T_max": int, "eta_min": float}, ("T_max",),
                       "lr = η_min + (lr₀ − η_min)·(1 + cos(π·t/T_max))/2", positive=("T_max",)),
    "linear": Schedule(torch.optim.lr_scheduler.LinearLR,
                       {"start_factor": float, "end_factor": float, "total_iters": int}, (),
                       "lr = lr₀·(start + (end − start)·min(t, total_iters)/total_iters)"),
}


def parse_schedule(text: str) -> tuple[str, dict[str, Any]]:
    """``step:step_size=1,gamma=0.5`` → ("step", {"step_size": 1, "gamma": 0.5}), validated."""
    name, _, rest = text.partition(":")
    spec = SCHEDULES.get(name.strip().lower())
    if spec is None:
        raise GradexplainError(Msg("--schedule {text}: unknown schedule {name!r} (one of {choices})", text=text,
                                   name=name, choices=", ".join(SCHEDULES)))
    params: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in spec.params:
            raise GradexplainError(Msg("--schedule {text}: expected KEY=VALUE with KEY one of {keys}, got {part!r}",
                                       text=text, keys=", ".join(spec.params), part=part))
        try:
            params[key] = spec.params[key](value.strip())
        except ValueError:
            raise GradexplainError(Msg("--schedule {text}: {key} must be {kind}, not {value!r}", text=text, key=key,
                                       kind=spec.params[key].__name__, value=value.strip())) from None
    missing = [k for k in spec.required if k not in params]
    if missing:
        raise GradexplainError(Msg("--schedule {text}: {name} needs {key}=…", text=text, name=name, key=missing[0]))
    for key in spec.positive:
        if key in params and params[key] < 1:
            raise GradexplainError(Msg("--schedule {text}: {key} must be at least 1 (torch divides by it)", text=text,
                                       key=key))
    return name.strip().lower(), params


def make_scheduler(text: str | None, opt: torch.optim.Optimizer) -> Any:
    if text is None:
        return None
    name, params = parse_schedule(text)
    try:
        return SCHEDULES[name].cls(opt, **params)
    except ValueError as e:
        raise GradexplainError(Msg("--schedule {text}: {reason}", text=text, reason=str(e))) from None


# ============================================================================ dropout


def dropout_masks(program: Program, shape_of: Callable[[Node], tuple[int, ...]]) -> list[DropoutMask]:
    """The mask each training-mode dropout draws under the current seed (0 or 1/(1-p) per element)."""
    masks: list[DropoutMask] = []
    for node in walk([s.node for s in program.statements]):
        if isinstance(node, Call) and node.op == "dropout" and node.params.get("training", True):
            p = node.params.get("p", 0.5)
            if p:
                masks.append(DropoutMask(node.src or to_text(node), p,
                                         dropout_mask(shape_of(node.args[0]), p, node.params.get("seed", 0))))
    return masks


# ========================================================================== the run


@dataclass
class StepRecord:
    """One step of one run, as torch did it."""

    lr: float
    group: dict[str, Any]  # the optimizer's hyperparameters for this step
    loss: torch.Tensor
    value: dict[str, torch.Tensor]
    grad: dict[str, torch.Tensor | None]  # .grad as optimizer.step() saw it
    own: dict[str, torch.Tensor | None]  # this step's backward alone (what zero_grad() would leave)
    after: dict[str, torch.Tensor]
    masks: list[DropoutMask] = field(default_factory=list)


def check_trainable(output: torch.Tensor, wrt: list[str], grad_output: str | None) -> None:
    """``--step`` minimises a scalar loss over at least one parameter."""
    if grad_output is not None:
        raise GradexplainError(Msg("--step minimises a scalar loss: it does not combine with --grad-output"))
    if output.dim() != 0:
        raise GradexplainError(Msg("--step needs a scalar loss, but the output has shape {shape} "
                                   "(reduce it, e.g. with .sum() or .mean())", shape=list(output.shape)))
    if not wrt or not output.requires_grad:
        raise GradexplainError(Msg("--step: no parameter to train — every input reaching the output is --const"))


def run_steps(program: Program, init: dict[str, torch.Tensor], params: list[str], t: TrainOptions, zero_grad: bool,
              seed: int, opts: EvalOptions) -> list[StepRecord]:
    """A real training loop: [zero_grad], forward, backward, step, [scheduler.step]."""
    leaves = {n: v.detach().clone().requires_grad_(n in params) for n, v in init.items()}
    shapes = Shapes(leaves, opts.limits)
    opt = make_optimizer(t, [leaves[n] for n in params])
    scheduler = make_scheduler(t.schedule, opt)
    records = []
    for step in range(1, t.steps + 1):
        torch.manual_seed(seed + step - 1)
        if zero_grad:
            opt.zero_grad()
        loss = run_program(program, leaves, opts.limits)[program.output]
        own = torch.autograd.grad(loss, [leaves[n] for n in params], retain_graph=True, allow_unused=True)
        loss.backward()
        group = {k: v for k, v in opt.param_groups[0].items() if k in OPTIMIZERS[t.optimizer].shown}
        value = {n: leaves[n].detach().clone() for n in params}
        grad = {n: leaves[n].grad.detach().clone() if leaves[n].grad is not None else None for n in params}
        opt.step()
        if scheduler is not None:
            scheduler.step()
        records.append(StepRecord(group["lr"], group, loss.detach(), value, grad,
                                  {n: g.detach() if g is not None else None for n, g in zip(params, own)},
                                  {n: leaves[n].detach().clone() for n in params}, dropout_masks(program, shapes.shape)))
    return records


def _symbolic_nodes(report: Report, params: list[str], opts: EvalOptions) -> dict[str, Node | None]:
    """The report's SymPy gradient formulas, read back from their EXPR text (formula.read_formula)."""
    nodes: dict[str, Node | None] = {}
    for n in params:
        entry = report.grads.get(n)
        text = entry.symbolic.expr if entry is not None and entry.symbolic is not None else None
        nodes[n] = read_formula(text, opts.limits) if text else None
    return nodes


def _step_entry(k: int, rec: StepRecord, zeroed: StepRecord | None, sym: dict[str, Node | None],
                env: dict[str, torch.Tensor], states: dict[str, dict], t: TrainOptions, seed: int,
                opts: EvalOptions, tol: float) -> dict[str, Any]:
    entry: dict[str, Any] = {"step": k, "lr": rec.lr, "loss": rec.loss, "params": {}}
    if rec.masks:
        entry["dropout"] = rec.masks
    flags: list[bool | None] = []
    torch.manual_seed(seed + k - 1)  # the symbolic side sees this step's dropout masks
    values = dict(env, **rec.value)
    for n, value in rec.value.items():
        grad, own, after = rec.grad[n], rec.own[n], rec.after[n]
        p: dict[str, Any] = {"value": value, "grad": grad, "update": after - value, "after": after}
        if sym[n] is not None:
            s = evaluate(sym[n], values, opts.limits).to(value.dtype)
            s = s.reshape(value.shape) if s.numel() == value.numel() == 1 else s
            ok, diff = compare(own if own is not None else torch.zeros_like(value), s, tol)
            p["symbolic"] = {"value": s, "max_abs_diff": diff, "agree": ok}
        else:
            p["symbolic"] = None
        flags.append(p["symbolic"]["agree"] if p["symbolic"] else None)
        if grad is None:
            p["formula"] = {"lines": [Msg("{name}.grad is None: the optimizer skips {name}", name=n)], "after": value,
                            "agree": True}
        else:
            by_hand, lines = OPTIMIZERS[t.optimizer].rule(n, value, grad, states[n], rec.group)
            p["formula"] = {"lines": lines, "after": by_hand, "agree": agrees(by_hand, after, tol)}
        flags.append(p["formula"]["agree"])
        if zeroed is not None:
            carried = grad - own if grad is not None and own is not None else None
            p.update(step_grad=own, carried=carried,
                     accumulated=carried is not None and bool((carried != 0).any()),
                     zeroed={"grad": zeroed.grad[n], "after": zeroed.after[n]})
        entry["params"][n] = p
    entry["agree"] = all_agree(flags)
    return entry


def check_step_memory(param_elements: int, steps: int, runs: int, most_recorded: int = DEFAULT.max_step_record) -> None:
    """Predict what the steps will record before running them (``--step adam --steps 1000`` on 10^6
    parameters would keep ~8·10^9 numbers, 64 GB) and refuse past ``most_recorded`` (``--max-step-record``)."""
    recorded = param_elements * steps * runs * RECORDED_PER_STEP
    if recorded > most_recorded:
        most = most_recorded // (param_elements * runs * RECORDED_PER_STEP)
        fewer = Msg("lower --steps (at most {most} here)", most=most) if most else Msg("even one step is over it")
        raise LimitError(Msg("--steps {steps} on {elements} parameter elements would record {recorded} numbers "
                             "(about {per} per parameter element per step), over the limit of {limit}: {fewer}, "
                             "train fewer elements, or raise the limit with --max-step-record", steps=steps,
                             elements=f"{param_elements:,}", recorded=f"{recorded:,}", per=RECORDED_PER_STEP,
                             limit=f"{most_recorded:,}", fewer=fewer))


def check_steps(opts: EvalOptions, param_elements: int) -> None:
    """``--steps`` in range, and what the steps will record within ``--max-step-record``: checked
    before any work (run_torch), and again before the steps."""
    t = opts.train
    assert t is not None
    if not 1 <= t.steps <= MAX_STEPS:
        raise GradexplainError(Msg("--steps must be between 1 and {most}, not {steps}", most=MAX_STEPS, steps=t.steps))
    check_step_memory(param_elements, t.steps, runs=1 if t.zero_grad else 2, most_recorded=opts.limits.max_step_record)


def explain_steps(report: Report, program: Program, leaves: dict[str, torch.Tensor], wrt: list[str],
                  opts: EvalOptions, tol: float) -> None:
    """Fill the Report's ``steps`` and ``training``, and fold the checks into ``report.agree``."""
    t = opts.train
    assert t is not None
    check_steps(opts, sum(leaves[n].numel() for n in wrt))
    init = {n: v.detach().clone() for n, v in leaves.items()}
    records = run_steps(program, init, wrt, t, t.zero_grad, opts.seed, opts)
    zeroed = run_steps(program, init, wrt, t, True, opts.seed, opts) if not t.zero_grad else None
    sym = _symbolic_nodes(report, wrt, opts)
    env = {n: v for n, v in init.items() if n not in wrt}
    states: dict[str, dict] = {n: {} for n in wrt}
    steps = [_step_entry(k, rec, zeroed[k - 1] if zeroed else None, sym, env, states, t, opts.seed, opts, tol)
             for k, rec in enumerate(records, start=1)]
    report.steps = steps
    schedule = None
    if t.schedule is not None:
        name, params = parse_schedule(t.schedule)
        schedule = {"name": name, "params": params, "formula": SCHEDULES[name].formula}
    report.training = TrainingInfo(t.optimizer, records[0].group, t.zero_grad, schedule)
    report.agree = all_agree([report.agree] + [s["agree"] for s in steps])
    if not t.zero_grad:
        report.notes.append(Msg("zero_grad() was not called: .grad kept the gradients of earlier steps and each "
                                "backward() added its own, so from step 2 the optimizer used their sum (marked "
                                "accumulated); 'zeroed' shows the same loop with zero_grad()"))
    if any(s.get("dropout") for s in steps):
        report.notes.append(Msg("dropout draws a fresh mask every step (torch.manual_seed(--seed + step − 1)), as a "
                                "training loop does; the SymPy formula is evaluated with the same mask"))
    if any(s["params"][n]["symbolic"] is None for s in steps[:1] for n in wrt):
        report.notes.append(Msg("steps: no SymPy formula for some parameter, so its gradients are checked by torch "
                                "only"))
