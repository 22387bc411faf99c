"""Differential fuzz: generated programs over every user op in the registry, each checked against
plain torch run directly.

    python bench/differential.py               # 10,000 cases, seed 0 (the run recorded in the README)
    python bench/differential.py -n 500 --seed 7 -v
    python bench/differential.py -n 3000 --seed 1 --dump cases.jsonl   # every case not ok, one JSON line each

Programs are generated from :data:`gradexplain.ops.REGISTRY` (an op added later is covered with
no change here): one to three statements calling random user ops on inputs of random shapes
(0-d, size-1, broadcast, empty), with values drawn from exact rationals, huge and tiny
magnitudes, NaN/Inf, ties and kinks, sometimes an in-place statement, usually reduced to a
scalar.  The EXPR text is also Python, so its plain-torch twin is that text evaluated with each
op name bound to torch's own function (``torch.nn.functional.NAME``, else ``torch.NAME``, or
the tensor method; see :func:`twin_function`) — not gradexplain's evaluator.  Where EXPR
deliberately differs from torch (README, "deviations": ``heaviside`` has a gradient), the twin is
written out in plain torch (:data:`TWIN_DEFINED`).  For each case:

* exit 0 ⇒ the output and every ``.grad`` equal the twin's, and SymPy's value agrees with it;
* exit 1 ⇒ SymPy's value really differs from torch's gradient;
* exit 2 ⇒ the twin raises too, or the message names a documented limit / unsupported form;
* never a traceback; each case within :data:`TIME_LIMIT_S` and the process under 1 GiB.
"""
from __future__ import annotations

import argparse
import inspect
import json
import random
import re
import resource
import sys
import time
import traceback
from collections import Counter
from fractions import Fraction
from typing import Any, TextIO

import torch

from hostile import run_main

TIME_LIMIT_S = 15.0
RSS_LIMIT_BYTES = 1 << 30
NAMES = ["x", "y", "w"]
SHAPES = [(), (1,), (2,), (3,), (2, 3), (3, 2), (2, 2), (1, 3), (0,), (2, 0)]
VALUES = ["0", "1", "-1", "2", "0.5", "0.25", "1/3", "-2/7", "3", "1e300", "-1e300", "1e-300", "1e10", "inf", "-inf",
          "nan", "-0.0", "7", "1.5"]
DIM_PARAMS = ("dim", "dim0", "dim1")
# Messages of exit 2 that are documented limits or forms refused on purpose (README, CONTRACT)
DOCUMENTED = ("limit", "not supported", "not allowed", "not model", "at most", "must be", "needs", "cannot",
              "expected", "shape", "no value", "requires grad", "leaf", "in place", "unknown")


def user_ops() -> list[Any]:
    from gradexplain.ops import REGISTRY

    return [s for s in REGISTRY.values() if s.user and not s.constructor and (s.tensor_args or s.variadic)]


def twin_function(spec: Any) -> Any:
    """The op as plain torch spells it: ``torch.nn.functional.NAME`` where it exists (``softmax(x)``
    with its implicit dim, as a user calls the function), the torch function the registry names
    where torch has two (``solve`` is ``torch.linalg.solve``: ``torch.solve`` was removed), the
    tensor method for a method op (EXPR allows ``reshape(y, -1)`` like ``y.reshape(-1)``), else
    ``torch.NAME``.  A tensor argument torch requires positionally but EXPR lets one leave out
    (``batch_norm(x)``'s running statistics, documented in the README) is passed as None.  What it
    returns is torch's own: a size or a number stays a Python value (``x.numel().sum()`` raises)."""
    if spec.name in TWIN_DEFINED:
        return TWIN_DEFINED[spec.name]
    own = getattr(spec.torch, "__wrapped__", None)
    homes = (torch.nn.functional, torch, torch.special, torch.linalg)
    fn = next((getattr(home, spec.name) for home in homes if callable(getattr(home, spec.name, None))), None)
    functional = fn is not None and fn is getattr(torch.nn.functional, spec.name, None)
    if own is not None and own is getattr(torch.linalg, spec.name, None):
        fn = own
    required = omitted_required(fn, spec) if functional else set()

    def call(*args: Any, **kw: Any) -> Any:
        if not functional and (spec.method or fn is None) and args and isinstance(args[0], torch.Tensor) \
                and hasattr(args[0], spec.name):
            return getattr(args[0], spec.name)(*args[1:], **kw)
        given = len(args) - (1 if spec.variadic else 0)
        fill = {a: None for i, a in enumerate(spec.tensor_args) if i >= given and a in required}
        return fn(*args, **fill, **kw)

    return call


def omitted_required(fn: Any, spec: Any) -> set[str]:
    """Optional tensor args of the registry that torch's function requires (no default)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return set()
    return {a for a in spec.optional_args if a in params and params[a].default is inspect.Parameter.empty}


def twin_heaviside(a: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """EXPR's heaviside (README, deviations): torch.heaviside's value, slope 0 in ``a`` and 1 in ``values``
    where ``a == 0``; torch's own has no backward, yet gradient formulas (``relu`` → ``heaviside(x, 0)``)
    must read back through eval."""
    step = torch.heaviside(a.detach(), torch.as_tensor(values).detach())
    everywhere = torch.ones_like(step, dtype=torch.bool)
    return torch.where(a == 0, values, torch.where(everywhere, step, a))  # a's graph kept, gradient 0


TWIN_DEFINED = {"heaviside": twin_heaviside}


def value_text(rng: random.Random, shape: tuple[int, ...]) -> str:
    if not shape:
        return rng.choice(VALUES)
    if rng.random() < 0.3:  # ties: every entry the same
        v = rng.choice(VALUES)
        return nested(shape, lambda: v)
    return nested(shape, lambda: rng.choice(VALUES))


def nested(shape: tuple[int, ...], leaf: Any) -> str:
    if not shape:
        return leaf()
    return "[" + ",".join(nested(shape[1:], leaf) for _ in range(shape[0])) + "]"


def parse_number(text: str) -> float:
    return float(Fraction(text)) if "/" in text else float(text)


def as_tensor(text: str) -> torch.Tensor:
    """A VALUE text of this generator as a float64 tensor (rationals and non-finite words as floats)."""
    quoted = re.sub(r"-?inf|nan|-?\d+/\d+", lambda m: f'"{m.group(0)}"', text)
    data = json.loads(quoted) if text.startswith("[") else text

    def conv(d: Any) -> Any:
        return [conv(x) for x in d] if isinstance(d, list) else parse_number(str(d))

    return torch.tensor(conv(data), dtype=torch.float64)


def call_text(rng: random.Random, spec: Any, operands: list[str]) -> str | None:
    args: list[str] = []
    if spec.variadic:
        args.append("[" + ", ".join(rng.sample(operands, k=min(len(operands), 2))) + "]")
    for a in spec.tensor_args:
        if a in spec.optional_args and rng.random() < 0.5:
            break
        if a == "cond":
            args.append(f"{rng.choice(operands)} > 0")
        elif a == "target":
            args.append(rng.choice(["tensor([0, 1])", "tensor([1])", "tensor(0)", "tensor([2, 0])"]))
        else:
            args.append(rng.choice(operands))
    defaults = spec.param_defaults
    for p in spec.param_names:
        if p in spec.hidden_params:
            continue
        if p == "training":
            args.append("training=False")  # dropout as identity: the twin can have the same mask
        elif p in DIM_PARAMS and (p not in defaults or rng.random() < 0.3):
            args.append(f"{p}={rng.choice([0, -1, 1])}")
        elif p == "shape" and p not in defaults:
            args.append("-1")
        elif p not in defaults:
            return None  # a required parameter this generator cannot invent
    text = f"{spec.name}({', '.join(args)})"
    # an op that can return several tensors (cummin(x, 0) -> values, indices): take the first, as a user does
    return f"{text}[0]" if spec.outputs is not None else text


def program(rng: random.Random) -> tuple[str, dict[str, str]]:
    ops = user_ops()
    inputs = {n: value_text(rng, rng.choice(SHAPES)) for n in rng.sample(NAMES, k=rng.randint(1, 3))}
    operands = list(inputs)
    statements = []
    for i in range(rng.randint(1, 3)):
        text = None
        while text is None:
            text = call_text(rng, rng.choice(ops), operands)
        name = f"s{i}"
        statements.append(f"{name} = {text}")
        operands.append(name)
        if rng.random() < 0.15:
            statements.append(f"{name} = {name}*1; {name} += {rng.choice(operands)}")
    last = operands[-1]
    statements.append(f"{last}.sum()" if rng.random() < 0.85 else last)
    return "; ".join(statements), inputs


def plain_torch(expr: str, inputs: dict[str, str]) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
    """The twin: the EXPR text as Python, each op torch's own, each input a float64 leaf."""
    from gradexplain.ops import REGISTRY

    leaves = {n: as_tensor(v).requires_grad_(True) for n, v in inputs.items()}
    env: dict[str, Any] = {n: twin_function(spec) for n, spec in REGISTRY.items()}
    env["tensor"] = torch.tensor
    env.update(leaves)
    *stmts, last = [s.strip() for s in expr.split(";")]
    for s in stmts:
        exec(s, {"__builtins__": {}}, env)  # noqa: S102 - the generator's own text, never user input
    out = eval(last, {"__builtins__": {}}, env)  # noqa: S307
    # an output that is a number or a size (numel(x), x.size()) is shown as a constant tensor
    out = out if isinstance(out, torch.Tensor) else torch.tensor(out, dtype=torch.float64)
    grads: dict[str, torch.Tensor | None] = {n: None for n in leaves}
    if out.requires_grad and out.dim() == 0:
        got = torch.autograd.grad(out, list(leaves.values()), allow_unused=True)
        grads = dict(zip(leaves, got))
    return out.detach(), grads


def from_json(v: Any) -> torch.Tensor | None:
    if v is None or isinstance(v, dict):
        return None

    def conv(d: Any) -> Any:
        if isinstance(d, list):
            return [conv(x) for x in d]
        return float(d) if isinstance(d, str) and d in ("nan", "inf", "-inf") else float(Fraction(d)) if isinstance(d, str) else d

    return torch.tensor(conv(v), dtype=torch.float64)


def same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    """Bitwise-close: NaN where both are NaN, an inf only against the same inf."""
    if a is None or b is None:
        return a is None and b is None
    if a.numel() != b.numel():
        return False
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    return bool(torch.isclose(a, b, rtol=1e-9, atol=1e-300, equal_nan=True).all())


def agrees(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-6) -> bool:
    """The contract's agreement with IEEE semantics for inf and NaN."""
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    if a.numel() != b.numel():
        return False
    nan = torch.isnan(a) | torch.isnan(b)
    inf = torch.isinf(a) | torch.isinf(b)
    ok = (torch.isnan(a) & torch.isnan(b)) | (inf & (a == b))
    fin = ~nan & ~inf
    ok |= fin & ((a - b).abs() <= tol * (1 + torch.maximum(a.abs(), b.abs())))
    return bool(ok.all())


def judge(expr: str, inputs: dict[str, str]) -> tuple[str, str]:
    """One case's verdict (ok-0 / ok-1 / ok-2 / ok-2-limit, or what went wrong) and what explains
    it: the exception or error line, torch's own refusal."""
    args = ["eval", "--json", "--symbolic-timeout", "5", expr, *[f"{n}={v}" for n, v in inputs.items()]]
    out = run_main(args)
    if out.exception is not None:
        return "internal error", where(out.exception)
    if "Traceback" in out.stderr + out.stdout or "rerun with --debug" in out.stderr:
        debugged = run_main(["eval", "--debug", *args[1:]]).exception
        return "internal error", where(debugged) if debugged is not None else out.stderr.strip()
    if out.wall > TIME_LIMIT_S:
        return "over time", f"{out.wall:.1f} s"
    try:
        twin_out, twin_grads = plain_torch(expr, inputs)
        twin_error = None
    except Exception as e:  # noqa: BLE001 - torch rejecting the program is an outcome
        twin_error = e
    if out.code == 2:
        if twin_error is not None:
            return "ok-2", ""
        message = out.stderr.lower()
        return ("ok-2-limit" if any(k in message for k in DOCUMENTED) else "refused valid input"), out.stderr.strip()
    if twin_error is not None:
        return "accepted what torch rejects", f"torch: {type(twin_error).__name__}: {twin_error}"
    return judge_values(out, twin_out, twin_grads), ""


def where(e: BaseException) -> str:
    """An exception and its innermost frame: enough to group crashes by cause."""
    frame = traceback.extract_tb(e.__traceback__)[-1]
    return f"{type(e).__name__}: {e} | {frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} {frame.line}"


def judge_values(out: Any, twin_out: torch.Tensor, twin_grads: dict[str, torch.Tensor | None]) -> str:
    """Exit 0 or 1 on input torch accepts: the values against the twin's, the verdict against SymPy's."""
    doc = json.loads(out.stdout)
    if not same(from_json(doc["output"]["value"]), twin_out):
        return "output differs from plain torch"
    for name, g in doc["grads"].items():
        if not same(from_json(g["torch"]), twin_grads.get(name)):
            return "grad differs from plain torch"
    sym_ok = all(agrees(from_json(g["symbolic"]["value"]), twin_grads[name])
                 for name, g in doc["grads"].items()
                 if g.get("symbolic") and g["symbolic"].get("value") is not None and twin_grads.get(name) is not None)
    if out.code == 0:
        return "ok-0" if sym_ok or doc["agree"] is None else "wrong verdict (exit 0)"
    return "ok-1" if not sym_ok or doc["agree"] is False and doc.get("jacobian") else "false disagreement (exit 1)"


def run(n: int, seed: int = 0, verbose: bool = False, dump: TextIO | None = None) -> Counter:
    """Count the verdicts of n generated cases; with ``dump``, one JSON line per case that is not ok
    or that hit a limit where torch accepts the program."""
    rng = random.Random(seed)
    counts: Counter = Counter()
    examples: dict[str, list[str]] = {}
    start = time.monotonic()
    for _ in range(n):
        expr, inputs = program(rng)
        verdict, detail = judge(expr, inputs)
        counts[verdict] += 1
        if dump is not None and verdict not in ("ok-0", "ok-1", "ok-2"):  # limits too: is each one documented?
            dump.write(json.dumps({"verdict": verdict, "expr": expr, "inputs": inputs, "detail": detail}) + "\n")
        if (verdict == "ok-1" or not verdict.startswith("ok")) and \
                len(examples.setdefault(verdict, [])) < (8 if verbose else 1):
            examples[verdict].append(f"{expr!r} {inputs}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    counts["peak RSS MiB"] = rss // 2**20
    counts["seconds"] = int(time.monotonic() - start)
    if rss > RSS_LIMIT_BYTES:
        counts["over memory"] += 1
    for verdict, some in examples.items():
        for example in some:
            print(f"  e.g. {verdict}: {example}")
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--dump", type=argparse.FileType("w"), help="write every case not ok (or ok-2-limit) here, one JSON line each")
    a = ap.parse_args()
    counts = run(a.n, a.seed, a.v, a.dump)
    for k, v in sorted(counts.items()):
        print(f"{k:40s} {v}")
    bad = sum(v for k, v in counts.items() if not k.startswith("ok") and k not in ("peak RSS MiB", "seconds"))
    return 1 if bad else 0


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")  # torch's broadcasting warnings for mse_loss: expected here
    torch.set_default_dtype(torch.float64)
    sys.exit(main())
