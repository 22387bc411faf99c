"""Regenerate the example outputs of README.zh.md from the real CLI, in Chinese.

    python scripts/zh_readme.py           # rewrite every block that follows a <!-- zh-run: ARGS --> marker
    python scripts/zh_readme.py --check   # exit 1 if a block is not what the CLI prints now

Each marker names a command line (``ARGS`` as a shell would split them); the fenced block after it
becomes ``$ gradexplain ARGS --lang zh`` and what that prints at 80 columns, without colour.  So the
Chinese README shows what the program says, not a hand-made copy that drifts from it.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.zh.md"
BLOCK = re.compile(r"(<!-- zh-run: (?P<args>.*?) -->\n)```[^\n]*\n(?:.*?\n)??```", re.S)
LANGUAGE_VARIABLES = ("GRADEXPLAIN_LANG", "LC_ALL", "LC_MESSAGES", "LANG")


def output_of(args: str) -> str:
    """What ``gradexplain ARGS --lang zh`` prints (stdout, then stderr), as a reader's terminal shows it."""
    env = {k: v for k, v in os.environ.items() if k not in LANGUAGE_VARIABLES}
    env.update(COLUMNS="80", NO_COLOR="1", PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "gradexplain.cli", *shlex.split(args), "--lang", "zh"], cwd=ROOT,
                       capture_output=True, text=True, env=env, timeout=600)
    text = "\n".join(line.rstrip() for line in (p.stdout + p.stderr).rstrip().splitlines())
    return f"$ gradexplain {args} --lang zh\n{text}"


def regenerated(content: str) -> str:
    return BLOCK.sub(lambda m: f"{m.group(1)}```\n{output_of(m.group('args'))}\n```", content)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; write nothing")
    content = README.read_text(encoding="utf-8")
    new = regenerated(content)
    if parser.parse_args().check:
        print("README.zh.md is up to date" if new == content else "README.zh.md is stale: run python scripts/zh_readme.py")
        return 0 if new == content else 1
    README.write_text(new, encoding="utf-8")
    print(f"README.zh.md: {len(BLOCK.findall(content))} outputs regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
