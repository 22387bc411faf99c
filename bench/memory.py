"""Peak memory and wall time of whole runs at the default limits (issue 19: under 1 GiB).

    .venv/bin/python bench/memory.py                       # this checkout
    .venv/bin/python bench/memory.py --before ../main      # and another checkout, side by side
    .venv/bin/python bench/memory.py --only 0,1            # some rows

Each row is one fresh ``python -m gradexplain.cli`` process (its own tree first on PYTHONPATH);
its peak RSS comes from ``wait4`` (the child's own ``ru_maxrss``), its output goes to a file whose
size is reported.  Rows run one at a time, "before" and "now" interleaved, so that machine load
affects both alike.  The table printed at the end is the README's "Measured costs" format.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GIB = 2**30
CHECK_TOML = '''[[problem]]
name = "big-square"
expr = "(x*x).sum()"
inputs = { x = "ones(10**7)" }
expect = { x = "2*x" }
'''


@dataclass(frozen=True)
class Row:
    what: str
    args: tuple[str, ...]


ROWS = [
    Row("elementwise, 10^7", ("eval", "--json", "(x*x).sum()", "x=ones(10**7)")),
    Row("elementwise, 10^7, text", ("eval", "(x*x).sum()", "x=ones(10**7)")),
    Row("product of 6, 10^7", ("eval", "--json", "(x*x*x*x*x*x).sum()", "x=ones(10**7)")),
    Row("product of 12, 10^7", ("eval", "--json", "(x*x*x*x*x*x*x*x*x*x*x*x).sum()", "x=ones(10**7)")),
    Row("statements, 10^7", ("eval", "--json", "y = x*2; z = y*y*3; z.mean()", "x=ones(10**7)")),
    Row("matrix-vector, 9·10^6", ("eval", "--json", "(W @ x).sum()", "W=randn(3000,3000)", "x=randn(3000)")),
    Row("matmul, 4·10^6 each", ("eval", "--json", "mm(A, B).sum()", "A=randn(2000,2000)", "B=randn(2000,2000)")),
    Row("--hessian, 1000 inputs", ("eval", "--json", "(x*x*x).sum()", "x=randn(1000)", "--hessian")),
    Row("--jacobian, 1000×1000", ("eval", "--json", "x*x", "x=randn(1000)", "--jacobian")),
    Row("--step adam, 10^6 × 4 steps", ("eval", "--json", "(w*w).sum()", "w=ones(10**6)", "--step", "adam",
                                        "--steps", "4")),
    Row("--step adam, 10^7 × 1 step", ("eval", "--json", "(w*w).sum()", "w=ones(10**7)", "--step", "adam")),
    Row("check, 10^7 input", ("check", "--json", "{toml}")),
    Row("Jacobian of a long output", ("eval", "--json", "x*ones(100000)", "x=2")),
    Row("outer product 3000×3000", ("eval", "--json", "outer(x,y).sum()", "x=ones(3000)", "y=ones(3000)")),
]


@dataclass
class Result:
    code: int
    seconds: float
    peak: int  # bytes
    out: int  # bytes written to stdout
    error: str


def run(tree: Path, args: tuple[str, ...], toml: Path, timeout: float) -> Result:
    """One fresh process of ``tree``'s gradexplain; its own peak RSS (wait4), wall time and output size."""
    argv = [sys.executable, "-m", "gradexplain.cli", *(str(toml) if a == "{toml}" else a for a in args)]
    env = dict(os.environ, PYTHONPATH=str(tree), NO_COLOR="1", COLUMNS="120", GRADEXPLAIN_LANG="en")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        child = subprocess.Popen(argv, cwd=tree, env=env, stdout=out, stderr=err)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                child.kill()
                pid, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.monotonic() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0, 2)
        err.seek(0)
        lines = [ln for ln in err.read().decode(errors="replace").splitlines() if ln.startswith("error:")]
        return Result(child.returncode, seconds, usage.ru_maxrss * 1024, out.tell(), lines[0] if lines else "")


def cell(r: Result, timeout: float) -> str:
    if r.seconds > timeout:
        return f"> {timeout:.0f} s (killed), {r.peak / 1e9:.1f} GB"
    size = f", {r.out / 1e6:.1f} MB out" if r.out > 10**6 else ""
    exit_text = "" if r.code == 0 else f"exit {r.code}, "
    return f"{exit_text}{r.seconds:.1f} s, {r.peak / 2**20:,.0f} MiB{size}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, help="another checkout to measure beside this one (e.g. ../main)")
    ap.add_argument("--only", help="comma-separated row numbers")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per run before it is killed")
    a = ap.parse_args()
    rows = [ROWS[int(i)] for i in a.only.split(",")] if a.only else ROWS
    trees = ([("before", a.before.resolve())] if a.before else []) + [("now", ROOT)]
    with tempfile.TemporaryDirectory() as tmp:
        toml = Path(tmp) / "big.toml"
        toml.write_text(CHECK_TOML)
        table = []
        for row in rows:
            results = {}
            for label, tree in trees:
                results[label] = r = run(tree, row.args, toml, a.timeout)
                print(f"{row.what:<30} {label:<6} exit {r.code}  {r.seconds:6.1f} s  {r.peak / 2**20:7,.0f} MiB"
                      + ("  over 1 GiB" if r.peak > GIB else "") + (f"  {r.error}" if r.error else ""),
                      file=sys.stderr, flush=True)
            table.append((row, results))
    head = "| command | " + " | ".join(label for label, _ in trees) + " |"
    print(head)
    print("|---|" + "---|" * len(trees))
    for row, results in table:
        command = "gradexplain " + " ".join(_quote(x) for x in row.args).replace("{toml}", "big.toml")
        print(f"| `{command}` | " + " | ".join(cell(results[label], a.timeout) for label, _ in trees) + " |")


def _quote(word: str) -> str:
    return f'"{word}"' if any(c in word for c in " ()*@;,") else word


if __name__ == "__main__":
    main()
