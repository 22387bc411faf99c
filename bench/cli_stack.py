"""What the CLI stack (typer + click) costs per run, for two environments side by side.

    .venv/bin/python bench/cli_stack.py OTHER_PYTHON [--repeat 9]

OTHER_PYTHON is the interpreter of a second virtual environment that differs only in its
typer/click versions (e.g. ``python3 -m venv /tmp/t && /tmp/t/bin/pip install torch==2.13.0 &&
/tmp/t/bin/pip install typer==0.29.2 && /tmp/t/bin/pip install --no-deps -e .``).  Each row is
the median CPU time (user + sys, which machine load disturbs far less than wall time) of fresh
processes, the two environments interleaved.  ``eval`` runs are measured with ``--help`` (only
the parser and the help text, no torch) and as a full small ``eval``; the import of typer alone
is measured in-process.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, NO_COLOR="1", COLUMNS="120")
CASES = {
    "`gradexplain --help`": ["-m", "gradexplain", "--help"],
    "`gradexplain eval --help`": ["-m", "gradexplain", "eval", "--help"],
    '`eval "2*dot(x,x)" x=1,2,3`': ["-m", "gradexplain", "eval", "2*dot(x,x)", "x=1,2,3"],
    "`import typer` + build the eval command": [
        "-c", "import gradexplain.cli as c, typer.main as m; m.get_command(c.app)"],
}


def cpu_seconds(python: str, args: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([python, *args], capture_output=True, env=ENV, cwd=ROOT, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def versions(python: str) -> str:
    code = "import importlib.metadata as m; print(m.version('typer'), m.version('click'))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, env=ENV, check=True).stdout.split()
    return f"typer {out[0]} / click {out[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", help="python of the second environment")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    pythons = [sys.executable, args.other]
    names = [versions(p) for p in pythons]
    print(f"| measure (median CPU s of {args.repeat}) | {names[0]} | {names[1]} | difference |")
    print("|---|---|---|---|")
    for label, case in CASES.items():
        times: list[list[float]] = [[], []]
        for _ in range(args.repeat):
            for i, py in enumerate(pythons):
                times[i].append(cpu_seconds(py, case))
        a, b = (statistics.median(t) for t in times)
        print(f"| {label} | {a:.3f} | {b:.3f} | {b - a:+.3f} s |", flush=True)


if __name__ == "__main__":
    main()
