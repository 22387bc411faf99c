"""Fuzz the CLI: random bytes, token soup from the grammar, well-formed expressions with random shapes.

    python bench/fuzz.py                 # 10,000 cases, seed 0 (the run recorded in the README)
    python bench/fuzz.py -n 500 --seed 7

Every case runs the real entry point in-process (:func:`hostile.run_main`) and must end with
exit 0, 1 or 2, never an escaping exception or a traceback, within 5 s of CPU; the process's peak RSS
must stay under 1 GiB.  A watchdog ends the run if one case hangs.  tests/test_fuzz.py drives
the same generators from hypothesis (``st.randoms()``) for the fast CI profile.
"""
from __future__ import annotations

import argparse
import faulthandler
import random
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from hostile import TIME_LIMIT_S, Outcome, run_main

RSS_LIMIT_BYTES = 1 << 30
INTERNAL = "rerun with --debug"  # the boundary's wording for an exception that is not a GradexplainError
HANG_S = 120  # the watchdog: far above TIME_LIMIT_S, only for a case that never returns

NAMES = ["x", "y", "W", "b", "t", "z", "a"]
FUNCS = ["dot", "mm", "mv", "matmul", "sum", "mean", "pow", "exp", "log", "sqrt", "abs", "sin", "cos", "tanh",
         "sigmoid", "relu", "softmax", "log_softmax", "mse_loss", "linear", "max", "min", "norm", "trace", "outer",
         "stack", "cat", "logsumexp", "sign", "where", "ones_like", "zeros_like", "tensor", "zeros", "ones", "eye",
         "arange", "full", "one_hot", "dropout", "layer_norm", "cross_entropy", "binary_cross_entropy", "numel",
         "eval", "exec", "getattr", "__import__", "open", "lambda", "torch", "F", "os", "sys"]
TOKENS = (NAMES + FUNCS + ["torch.", "F.", ".T", ".sum()", ".mean()", ".reshape(", ".t()", ".grad", ".data",
                           ".__class__", ".backward()", ".grad_fn"]
          + list("+-*/@()[],.:;=<>") + ["**", "==", "+=", "->", "\n", " ", "dim=", "keepdim=True", "reduction=",
                                       "'sum'", "None", "True", "inf", "nan", "0", "1", "2", "-1", "0.5", "1e9",
                                       "10**9", "9**9**9", "1/3", "[", "]", "[[1,2],[3,4]]", "\\", "#", "'", "\"",
                                       "...", "if", "for", "in", "import", "λ", "ｘ", "\u200b", "\u202e", "\x00"])
OPTIONS = [["--json"], ["--jacobian"], ["--dtype", "float32"], ["--no-numeric"], ["--format", "markdown"],
           ["--format", "latex"], ["--seed", "3"], ["--tol", "1e-3"],
           ["--max-elements", "1000"], ["--max-depth", "5"]]
# The contract's symbolic budget is 10 s, so a run may take that long by design; the fuzz gives SymPy
# 2 s so that the 5 s ceiling checks everything else (parsing, torch, finite differences, rendering).
BUDGET = ["--symbolic-timeout", "2"]
SHAPES = [(), (2,), (3,), (2, 3), (3, 2), (2, 2)]


# ------------------------------------------------------------------------- random inputs


def raw_text(rng: random.Random) -> list[str]:
    """Arbitrary bytes decoded leniently: EXPR and a VALUE of garbage."""
    def blob() -> str:
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        return data.decode("utf-8", errors="surrogateescape" if rng.random() < 0.2 else "replace").replace("\x00", "")

    args = ["eval", *BUDGET, blob() or "x"]
    if rng.random() < 0.5:
        args.append(f"x={blob()}")
    return args


def token_soup(rng: random.Random) -> list[str]:
    """Tokens of the grammar (and of attacks on it) in random order: mostly parse errors."""
    expr = "".join(rng.choice(TOKENS) for _ in range(rng.randrange(1, 25))).replace("\x00", "")
    args = ["eval", *BUDGET, "--", expr]
    for name in rng.sample(NAMES, rng.randrange(4)):
        args.append(f"{name}={rng.choice(['1', '1,2', '[[1,2],[3,4]]', 'ones(2,3)', '1,2,3', 'nan', '[]'])}")
    return args


@dataclass
class Builder:
    """Builds a random expression of a wanted shape; inputs get shapes as they are first used."""

    rng: random.Random
    inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def var(self, shape: tuple[int, ...]) -> str:
        same = [n for n, s in self.inputs.items() if s == shape]
        if same and self.rng.random() < 0.6:
            return self.rng.choice(same)
        free = [n for n in NAMES if n not in self.inputs]
        if not free:
            return self.rng.choice(list(self.inputs))  # may mismatch: a shape error is a valid outcome
        self.inputs[free[0]] = shape
        return free[0]

    def expr(self, shape: tuple[int, ...], depth: int) -> str:
        rng = self.rng
        if depth <= 0 or rng.random() < 0.25:
            return self.var(shape) if shape or rng.random() < 0.8 else rng.choice(["2", "0.5", "1/3", "-1"])
        d = depth - 1
        choices = [self.unary, self.binary, self.power]
        if shape == ():
            choices += [self.reduce, self.dot]
        if len(shape) == 2:
            choices += [self.mm, self.transpose]
        if shape:
            choices += [self.softmax]
        return rng.choice(choices)(shape, d)

    def unary(self, shape: tuple[int, ...], d: int) -> str:
        f = self.rng.choice(["exp", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "log", "sqrt", "-"])
        inner = self.expr(shape, d)
        if f in ("log", "sqrt"):
            inner = f"(({inner})**2 + 1)"
        return f"-({inner})" if f == "-" else f"{f}({inner})"

    def binary(self, shape: tuple[int, ...], d: int) -> str:
        op = self.rng.choice(["+", "-", "*", "/"])
        right_shape = shape if self.rng.random() < 0.7 else ()
        right = self.expr(right_shape, d)
        if op == "/":
            right = f"(({right})**2 + 1)"
        return f"({self.expr(shape, d)} {op} {right})"

    def power(self, shape: tuple[int, ...], d: int) -> str:
        base, k = self.expr(shape, d), self.rng.choice(["2", "3", "2.5"])
        return f"({base})**{k}" if self.rng.random() < 0.5 else f"({base}).pow({k})"

    def reduce(self, shape: tuple[int, ...], d: int) -> str:
        inner = self.expr(self.rng.choice(SHAPES[1:]), d)
        return self.rng.choice([f"sum({inner})", f"({inner}).mean()", f"({inner}).sum()", f"logsumexp({inner}, 0).sum()",
                                f"norm({inner})", f"mse_loss({inner}, {inner} * 0.5)"])

    def dot(self, shape: tuple[int, ...], d: int) -> str:
        n = self.rng.choice([(2,), (3,)])
        return f"dot({self.expr(n, d)}, {self.expr(n, d)})"

    def mm(self, shape: tuple[int, ...], d: int) -> str:
        k = self.rng.choice([2, 3])
        return f"({self.expr((shape[0], k), d)} @ {self.expr((k, shape[1]), d)})"

    def transpose(self, shape: tuple[int, ...], d: int) -> str:
        return f"({self.expr((shape[1], shape[0]), d)}).T"

    def softmax(self, shape: tuple[int, ...], d: int) -> str:
        return f"{self.rng.choice(['softmax', 'log_softmax'])}({self.expr(shape, d)}, dim=-1)"


def well_formed(rng: random.Random) -> list[str]:
    """A random expression over inputs of random shapes, with random options: mostly valid."""
    builder = Builder(rng)
    shape = rng.choice(SHAPES) if rng.random() < 0.3 else ()
    body = builder.expr(shape, rng.randrange(1, 5))
    expr = f"y = {body}; y" if rng.random() < 0.2 else body
    args = ["eval", *BUDGET, "--", expr]
    for name, s in builder.inputs.items():
        args.append(f"{name}={value_text(rng, s)}")
    for opt in rng.sample(OPTIONS, rng.randrange(3)):
        args[1:1] = opt
    if builder.inputs and rng.random() < 0.1:
        args[1:1] = ["--const", rng.choice(list(builder.inputs))]
    if expr.startswith("y =") and rng.random() < 0.3:
        args[1:1] = ["--output", "y"]
    if shape and rng.random() < 0.5:
        args[1:1] = ["--grad-output", value_text(rng, shape)]
    return args


def value_text(rng: random.Random, shape: tuple[int, ...]) -> str:
    if not shape:
        return rng.choice(["2", "-1.5", "1/3", "0", "0.25", "nan"] if rng.random() < 0.2 else ["2", "-1.5", "1/3", "0.7"])
    if rng.random() < 0.3:
        return f"randn({', '.join(map(str, shape))})"

    def nested(s: tuple[int, ...]) -> str:
        if not s:
            return str(rng.choice([1, 2, -1, 0.5, 3]))
        return "[" + ",".join(nested(s[1:]) for _ in range(s[0])) + "]"

    return nested(shape)


GENERATORS = {"bytes": raw_text, "soup": token_soup, "well-formed": well_formed}


# ------------------------------------------------------------------------- checking


def problems(out: Outcome) -> list[str]:
    """What is wrong with one run's outcome (empty when it ended as the contract says)."""
    found = []
    if out.exception is not None:
        found.append(f"escaped {type(out.exception).__name__}: {out.exception}")
    if out.code not in (0, 1, 2):
        found.append(f"exit {out.code}")
    if "Traceback (most recent call last)" in out.stderr + out.stdout:
        found.append("traceback")
    if out.code == 2 and len(out.error_lines) != 1:
        found.append(f"exit 2 without exactly one error: line: {out.stderr[:200]!r}")
    if out.seconds > TIME_LIMIT_S:
        found.append(f"took {out.seconds:.1f} s of CPU")
    return found


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def run(n: int, seed: int) -> int:
    rng = random.Random(seed)
    codes: Counter[tuple[str, int]] = Counter()
    internal: Counter[str] = Counter()  # exceptions the CLI's boundary caught: clean, but worth a look
    failures: list[tuple[list[str], list[str]]] = []
    slowest = (0.0, 0.0, [""])
    run_main(["eval", "2*dot(x,x)", "x=1,2,3"])  # warm up: imports are not part of any case's time
    start = time.perf_counter()
    kinds = list(GENERATORS)
    for i in range(n):
        kind = kinds[i % len(kinds)]
        args = GENERATORS[kind](rng)
        faulthandler.dump_traceback_later(HANG_S, exit=True)
        out = run_main(args)
        faulthandler.cancel_dump_traceback_later()
        found = problems(out)
        if peak_rss_bytes() > RSS_LIMIT_BYTES:
            found.append(f"peak RSS {peak_rss_bytes() / 2**20:.0f} MiB")
        codes[(kind, out.code)] += 1
        if INTERNAL in out.stderr:
            internal[out.error_lines[0] if out.error_lines else out.stderr[:200]] += 1
        slowest = max(slowest, (out.seconds, out.wall, args))
        if found:
            failures.append((args, found))
            print(f"FAIL {args!r}: {'; '.join(found)}", flush=True)
        if (i + 1) % 1000 == 0:
            print(f"  {i + 1} cases, {len(failures)} failures, {time.perf_counter() - start:.0f} s", flush=True)
    print(f"fuzz: {n} cases (seed {seed}) in {time.perf_counter() - start:.0f} s: {len(failures)} failures")
    for kind in kinds:
        print(f"  {kind}: " + ", ".join(f"exit {c}: {codes[(kind, c)]}" for c in (0, 1, 2) if codes[(kind, c)]))
    print(f"  slowest case {slowest[0]:.2f} s CPU ({slowest[1]:.2f} s wall): {' '.join(slowest[2])[:160]!r}")
    for message, count in internal.most_common():
        print(f"  caught at the boundary ({count}x): {message[:200]}")
    print(f"  peak RSS {peak_rss_bytes() / 2**20:.0f} MiB (limit {RSS_LIMIT_BYTES / 2**20:.0f})")
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="number of cases")
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args()
    sys.exit(run(ns.n, ns.seed))


if __name__ == "__main__":
    main()
