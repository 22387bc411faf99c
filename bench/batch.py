"""``eval --batch`` against separate ``eval`` calls, on the same generated problems, side by side.

    .venv/bin/python bench/batch.py                 # 500 problems, 500 separate calls
    .venv/bin/python bench/batch.py --separate 50   # time 50 separate calls and scale up
    .venv/bin/python bench/batch.py --readme        # also write the rows into README.md

The problems are small (vectors of 3, 2×2 matrices) and varied: several expression shapes with
random integer inputs from a fixed seed.  Throughput after start-up is
``(N - 1) / (t(batch of N) - t(batch of 1))``: the batch of one pays the same start-up.  It is
given for wall time and for CPU time (user + sys of the child): on a machine shared with other
work the CPU figure is the one that does not depend on the neighbours.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GX = [sys.executable, "-m", "gradexplain"]
ENV = dict(os.environ, NO_COLOR="1", COLUMNS="120")
TARGET = 100.0  # problems per second after start-up

SHAPES = [  # (EXPR, {input: shape}, options)
    ("2*dot(x,x)", {"x": (3,)}, []),
    ("y = x*2; z = y*y*3; z.mean()", {"x": (3,)}, []),
    ("(x*w).sum() + b", {"x": (3,), "w": (3,), "b": ()}, []),
    ("z = x*w + b; mse_loss(z, t)", {"x": (), "t": (), "w": (), "b": ()}, ["--const", "x,t"]),
    ("sigmoid(x).sum()", {"x": (3,)}, []),
    ("tanh(W @ x).sum()", {"W": (2, 2), "x": (2,)}, []),
    ("x @ A @ x", {"x": (2,), "A": (2, 2)}, ["--const", "A"]),
    ("exp(x).mean()", {"x": (3,)}, []),
    ("mm(a, w)", {"a": (2, 2), "w": (2, 1)}, ["-g", "[[1],[1]]"]),
    ("relu(x - 1).sum()", {"x": (3,)}, []),
]


def value(rng: random.Random, shape: tuple[int, ...]) -> object:
    if not shape:
        return rng.randint(-3, 3)
    return [value(rng, shape[1:]) for _ in range(shape[0])]


def problems(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        expr, shapes, options = SHAPES[i % len(SHAPES)]
        inputs = {name: value(rng, shape) for name, shape in shapes.items()}
        inputs = {k: (json.dumps(v) if i % 2 else v) for k, v in inputs.items()}  # VALUE text and JSON lists
        out.append({"expr": expr, "inputs": inputs, "options": options})
    return out


def argv(problem: dict) -> list[str]:
    values = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in problem["inputs"].items()]
    return ["eval", "--json", *problem["options"], "--", problem["expr"], *values]


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU seconds of one fresh process."""
    start, start_cpu = time.perf_counter(), cpu()
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT)
    return time.perf_counter() - start, cpu() - start_cpu, p


def batch_time(items: list[dict], folder: Path) -> tuple[float, float, list[dict]]:
    path = folder / f"problems-{len(items)}.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in items))
    wall, used, p = timed(GX + ["eval", "--batch", str(path)])
    docs = [json.loads(line) for line in p.stdout.splitlines()]
    if p.returncode not in (0, 1) or len(docs) != len(items):
        raise SystemExit(f"batch failed ({p.returncode}): {p.stderr[-500:]}")
    return wall, used, docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="problems in the batch")
    parser.add_argument("--separate", type=int, default=None, help="separate eval calls to time (default: n)")
    parser.add_argument("--readme", action="store_true", help="write the rows into README.md")
    args = parser.parse_args()
    items = problems(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        t1, c1, _ = batch_time(items[:1], Path(tmp))
        tn, cn, docs = batch_time(items, Path(tmp))
    agree = sum(d.get("agree") is True for d in docs)
    throughput, cpu_throughput = (args.n - 1) / (tn - t1), (args.n - 1) / (cn - c1)
    k = args.separate or args.n
    separate = separate_cpu = 0.0
    for problem in items[:k]:
        wall, used, p = timed(GX + argv(problem))
        if p.returncode not in (0, 1):
            raise SystemExit(f"eval failed ({p.returncode}): {argv(problem)} {p.stderr[-300:]}")
        separate, separate_cpu = separate + wall, separate_cpu + used
    separate_n, separate_cpu_n = separate * args.n / k, separate_cpu * args.n / k
    scaled = "" if k == args.n else f" ({k} timed, scaled)"
    load = os.getloadavg()[0]
    head = (f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores (load average "
            f"{load:.1f}), Python {platform.python_version()}: {args.n} generated problems (`bench/batch.py`), "
            f"{agree} agree.\n\n")
    ok = throughput >= TARGET  # wall time, as a user sees it; CPU time alongside for a loaded machine
    rows = [
        ("`eval --batch` of 1 problem (start-up)", f"{t1:.2f} s", f"{c1:.2f} s", ""),
        (f"`eval --batch` of {args.n} problems", f"{tn:.2f} s", f"{cn:.2f} s", ""),
        ("throughput after start-up", f"{throughput:.0f} problems/s", f"{cpu_throughput:.0f} problems/s",
         f"≥ {TARGET:.0f} /s {'✓' if ok else '✗'}"),
        (f"{args.n} separate `eval --json` calls{scaled}", f"{separate_n:.0f} s", f"{separate_cpu_n:.0f} s",
         f"batch {separate_n / tn:.0f} × faster"),
    ]
    text = head + "| measure | wall | CPU | target |\n|---|---|---|---|\n" + "\n".join(
        f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    print(text)
    if args.readme:
        readme = ROOT / "README.md"
        content = readme.read_text()
        if "<!-- bench-batch:start -->" not in content:
            raise SystemExit("README.md has no <!-- bench-batch:start --> marker")
        readme.write_text(re.sub(r"<!-- bench-batch:start -->.*?<!-- bench-batch:end -->",
                                 lambda m: f"<!-- bench-batch:start -->\n{text}\n<!-- bench-batch:end -->",
                                 content, flags=re.S))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
