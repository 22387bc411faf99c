"""Benchmark gradexplain against the import floor, side by side in one run.

    .venv/bin/python bench/run.py            # print the table
    .venv/bin/python bench/run.py --readme   # also write it into README.md

Every row is timed as the median of --repeat fresh processes, interleaved with runs of the
floor (``python -c "import torch, sympy, rich, typer"``) so machine load affects both alike;
ratios, not seconds, are the result.  Peak memory is the child's max RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
GX = [PY, "-m", "gradexplain.cli"]
FLOOR = [PY, "-c", "import torch, sympy, rich, typer"]
ENV = dict(os.environ, NO_COLOR="1", COLUMNS="120")
CNN = ("h = max_pool2d(relu(conv2d(x, W1, b1)), 2); "
       "cross_entropy(linear(h.reshape(1, -1), W2, b2), tensor([1]))")


def cnn_args(n: int) -> list[str]:
    """The 2-layer CNN of issue 14 on a 1×1×n×n image (symbolic and torch only: the finite-difference
    third opinion is per element by design, so it alone would grow with the image)."""
    side = (n - 2) // 2
    return ["eval", CNN, f"x=randn(1,1,{n},{n})", "W1=randn(2,1,3,3)", "b1=randn(2)", f"W2=randn(3,{2 * side * side})",
            "b2=randn(3)", "--const", "x", "--seed", "0", "--no-numeric", "--json"]


BIG_MLP = ["mse_loss(W@x + b, t)", "W=randn(1000,1000)", "x=randn(1000)", "b=randn(1000)", "t=randn(1000)", "--const", "t"]


def run(cmd: list[str]) -> tuple[float, int, str, int]:
    """Wall seconds, exit code, stdout, and the child's peak RSS in bytes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, p.returncode, p.stdout, max(peak, before) * 1024


def peak_rss(cmd: list[str]) -> int:
    """Max RSS of one process, measured in a fresh interpreter so earlier children do not count."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)")
    p = subprocess.run([PY, "-c", code, *cmd], capture_output=True, text=True, env=ENV, cwd=ROOT)
    return int(p.stdout.strip())


def median_ratio(cmd: list[str], repeat: int) -> tuple[float, float, float, str]:
    """Median wall time of cmd and of the floor (interleaved), their ratio, and one stdout."""
    times, floors, out = [], [], ""
    for _ in range(repeat):
        floors.append(run(FLOOR)[0])
        wall, code, stdout, _ = run(cmd)
        if code not in (0, 1):
            raise SystemExit(f"benchmark command failed ({code}): {' '.join(cmd)}")
        times.append(wall)
        out = stdout
    t, f = statistics.median(times), statistics.median(floors)
    return t, f, t / f, out


def per_element_baseline(n: int) -> float:
    """What a user does by hand today: torch backward + per-element SymPy diff (n symbols)."""
    code = f"""
import time, torch, sympy
t0 = time.perf_counter()
x = torch.arange({n}, dtype=torch.float64, requires_grad=True)
(2 * torch.dot(x, x)).backward()
xs = sympy.symbols('x0:{n}')
f = 2 * sum(v**2 for v in xs)
grads = [sympy.diff(f, v) for v in xs]
values = [g.subs(v, float(i)) for i, (g, v) in enumerate(zip(grads, xs))]
print(time.perf_counter() - t0)
"""
    start = time.perf_counter()
    subprocess.run([PY, "-c", code], capture_output=True, text=True, env=ENV, check=True)
    return time.perf_counter() - start


CHAIN_W = [[0.5, -0.2, 0.1], [0.3, 0.4, -0.6], [0.2, 0.1, 0.3]]


def deep_chain(k: int) -> tuple[float, int, bool]:
    """``h1 = tanh(W1 @ x + b1); …; hK = …; (hK*hK).sum()``: seconds of symbolic derivation (reverse
    mode, simplification, let-form program, in-process) and the length of ∂/∂x's ``symbolic.program``,
    and whether that program read back gives torch's gradient."""
    sys.path.insert(0, str(ROOT))
    import torch

    from gradexplain.autograd import run_program
    from gradexplain.formula import formula_limits
    from gradexplain.options import EvalOptions
    from gradexplain.parse import parse_program
    from gradexplain.program import gradient_programs
    from gradexplain.symbolic import gradients
    from gradexplain.torch_report import run_torch

    stmts = ["h1 = tanh(W1 @ x + b1)"] + [f"h{i} = tanh(W{i} @ h{i - 1} + b{i})" for i in range(2, k + 1)]
    values = ["x=[0.1,0.2,-0.3]"] + [f"W{i}={CHAIN_W}" for i in range(1, k + 1)] + \
        [f"b{i}=[0.1,0,-0.1]" for i in range(1, k + 1)]
    stage = run_torch(EvalOptions(expr="; ".join(stmts + [f"(h{k}*h{k}).sum()"]), values=values, numeric=False))
    shapes = {n: tuple(t.shape) for n, t in stage.leaves.items()}
    start = time.perf_counter()
    adjoints: dict = {}
    grads = gradients(stage.program.output_node, stage.seed_node, stage.wrt, stage.shapes, shapes,
                      stage.opts.limits, adjoints)
    program = gradient_programs(stage.program, grads, adjoints, stage.shapes)["x"]
    seconds = time.perf_counter() - start
    back = parse_program(program, formula_limits())
    value = run_program(back, {n: t.detach() for n, t in stage.leaves.items()}, formula_limits())[back.output]
    return seconds, len(program), bool(torch.allclose(value, stage.run.grads["x"]))


def table(repeat: int) -> tuple[str, bool]:
    rows: list[tuple[str, str, str, bool]] = []

    t, f, r, _ = median_ratio(GX + ["--help"], repeat)
    rows.append(("`gradexplain --help`", f"{r:.2f} × floor ({t:.2f} s)", "≤ 0.2 ×", r <= 0.2))

    t, f, r, _ = median_ratio(GX + ["eval", "2*dot(x,x)", "x=1,2,3"], repeat)
    rows.append(('`eval "2*dot(x,x)" x=1,2,3`', f"{r:.2f} × ({t:.2f} s)", "≤ 1.15 ×", r <= 1.15))

    t6, f, r, out = median_ratio(GX + ["eval", "2*dot(x,x)", "x=randn(1000000)", "--seed", "0", "--json"], repeat)
    expr = json.loads(out)["grads"]["x"]["symbolic"]["expr"]
    rows.append(('`eval "2*dot(x,x)" x=randn(1000000) --seed 0`', f"{r:.2f} × ({t6:.2f} s), formula `{expr}`",
                 "≤ 2.5 ×, `4*x`", r <= 2.5 and expr == "4*x"))

    t, f, r, _ = median_ratio(GX + ["eval", "sigmoid(x).sum()", "x=randn(1000000)"], repeat)
    rows.append(('`eval "sigmoid(x).sum()" x=randn(1000000)`', f"{r:.2f} × ({t:.2f} s)", "≤ 2.5 ×", r <= 2.5))

    t, f, r, out = median_ratio(GX + ["eval", *BIG_MLP, "--json"], repeat)
    w_expr = json.loads(out)["grads"]["W"]["symbolic"]["expr"]
    outer = "outer(" in w_expr or "@" in w_expr
    rows.append(("`eval \"mse_loss(W@x + b, t)\"` W 1000×1000", f"{r:.2f} × ({t:.2f} s), ∂/∂W `{w_expr}`",
                 "≤ 2.5 ×, outer product", r <= 2.5 and outer))

    small, _, _, _ = median_ratio(GX + cnn_args(6), repeat)
    large, _, _, out = median_ratio(GX + cnn_args(28), repeat)
    closed = "stack(" not in out and json.loads(out)["agree"] is True
    rows.append(("2-layer CNN 6×6 → 28×28 (conv2d, max_pool2d, linear, cross_entropy)",
                 f"{large / small:.2f} × ({small:.2f} s → {large:.2f} s)", "≤ 1.5 ×, closed form",
                 large / small <= 1.5 and closed))

    t4, _, _, _ = median_ratio(GX + ["eval", "2*dot(x,x)", "x=randn(10000)", "--seed", "0", "--json"], repeat)
    growth = t6 / t4
    rows.append(("growth 10^4 → 10^6 elements (`2*dot(x,x)`)", f"{growth:.2f} × wall time", "≤ 2 ×", growth <= 2))

    mem_text = peak_rss(GX + ["eval", "2*dot(x,x)", "x=randn(1000000)"])
    mem_json = peak_rss(GX + ["eval", "2*dot(x,x)", "x=randn(1000000)", "--json"])
    mem = max(mem_text, mem_json)
    rows.append(("peak memory at 10^6 elements (text / `--json`)",
                 f"{mem_text / 2**20:.0f} MiB / {mem_json / 2**20:.0f} MiB", "≤ 1024 MiB", mem <= 2**30))

    baseline = per_element_baseline(1000)
    ours, _, _, _ = median_ratio(GX + ["eval", "2*dot(x,x)", "x=arange(1000)", "--json"], 1)
    speedup = baseline / ours
    rows.append(("vs. torch + per-element SymPy by hand, n=1000", f"{speedup:.1f} × faster ({baseline:.1f} s vs {ours:.2f} s)",
                 "≥ 10 ×", speedup >= 10))

    lines = run(GX + ["eval", "2*dot(x,x)", "x=randn(1000000)"])[2].count("\n")
    rows.append(("text output at 10^6 elements", f"{lines} lines", "≤ 200 lines", lines <= 200))

    chain = {k: min((deep_chain(k) for _ in range(repeat)), key=lambda r: r[0]) for k in (8, 16, 32, 64)}
    ks = sorted(chain)
    time_growth = max(chain[b][0] / chain[a][0] for a, b in zip(ks, ks[1:]))
    length_growth = max(chain[b][1] / chain[a][1] for a, b in zip(ks, ks[1:]))
    round_trip = all(r[2] for r in chain.values())
    rows.append(("tanh chain K = 8/16/32/64: ∂/∂x `symbolic.program` length, symbolic time",
                 " / ".join(f"{chain[k][1]} chars, {chain[k][0]:.2f} s" for k in ks)
                 + f"; per doubling ≤ {length_growth:.2f} × length, ≤ {time_growth:.2f} × time"
                 + ("" if round_trip else "; round trip FAILED"),
                 "≤ 2.2 × length, ≤ 2.5 × time, round trip", length_growth <= 2.2 and time_growth <= 2.5 and round_trip))

    floor = statistics.median(run(FLOOR)[0] for _ in range(repeat))
    head = (f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}; import floor `python -c \"import torch, sympy, rich, typer\"` = "
            f"{floor:.2f} s (median of {repeat}).\n\n")
    body = "| measure | result | target | ok |\n|---|---|---|---|\n" + "\n".join(
        f"| {m} | {res} | {target} | {'✓' if ok else '✗'} |" for m, res, target, ok in rows)
    return head + body, all(ok for *_, ok in rows)


def write_readme(text: str) -> None:
    readme = ROOT / "README.md"
    content = readme.read_text()
    block = f"<!-- bench:start -->\n{text}\n<!-- bench:end -->"
    if "<!-- bench:start -->" in content:
        content = re.sub(r"<!-- bench:start -->.*?<!-- bench:end -->", lambda m: block, content, flags=re.S)
    else:
        raise SystemExit("README.md has no <!-- bench:start --> marker")
    readme.write_text(content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()
    text, ok = table(args.repeat)
    print(text)
    if args.readme:
        write_readme(text)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
