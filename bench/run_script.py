"""What recording costs: ``gradexplain run SCRIPT`` next to ``python SCRIPT``, side by side.

    .venv/bin/python bench/run_script.py                       # the seed MLP (49 epochs), 5 rounds
    .venv/bin/python bench/run_script.py --repeat 9 samples/scripts/seed000_backward.py

Each round runs plain python, then gradexplain run, in fresh processes, so machine load hits both
alike; the result is the ratio of the medians, for wall time and for CPU time (user + system of the
child, steadier on a busy machine).  The target (issue 15) is 1.5x on the seed MLP.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = dict(os.environ, NO_COLOR="1", COLUMNS="120")
TARGET = 1.5


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode not in (0, 1):
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("script", nargs="?", default=str(ROOT / "samples" / "scripts" / "seed004_mlp.py"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--options", default="", help="extra options for gradexplain run, e.g. '--json'")
    args = parser.parse_args()
    plain_cmd = [PY, args.script]
    gx_cmd = [PY, "-m", "gradexplain.cli", "run", args.script, *args.options.split()]
    plain, recorded = [], []
    for _ in range(args.repeat):
        plain.append(timed(plain_cmd))
        recorded.append(timed(gx_cmd))
    rows = []
    for label, i in (("wall", 0), ("cpu", 1)):
        p, g = statistics.median(t[i] for t in plain), statistics.median(t[i] for t in recorded)
        rows.append((label, p, g, g / p))
    print(f"{Path(args.script).name}: median of {args.repeat} rounds (target ≤ {TARGET}x)")
    print(f"{'':6}{'python':>10}{'gradexplain run':>18}{'ratio':>8}")
    for label, p, g, ratio in rows:
        print(f"{label:6}{p:>9.2f}s{g:>17.2f}s{ratio:>7.2f}x")


if __name__ == "__main__":
    main()
