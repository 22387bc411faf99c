"""Hostile and broken inputs, run through the real CLI: the table in docs/hostile-inputs.md.

    python bench/hostile.py             # every case: the table in docs/hostile-inputs.md
    python bench/hostile.py --readme    # the README's selection (README_ROWS per kind)

Each case is one command line.  ``{sentinel}`` in an argument becomes a path that a payload
would create if anything of the user's text were executed; ``{toml}`` becomes a file holding
the case's TOML text.  tests/test_hostile.py runs the same cases and checks every outcome: the
expected exit code, exactly one ``error:`` line (plus a caret for parse errors), no traceback,
under 5 s, and no sentinel file.
"""
from __future__ import annotations

import shlex
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from gradexplain.cli import main

TIME_LIMIT_S = 5.0


@dataclass(frozen=True)
class Case:
    kind: str
    args: tuple[str, ...]
    codes: tuple[int, ...] = (2,)  # allowed exit codes (0/1 where the input is legitimately valid)
    toml: str | None = None
    caret: bool = False  # a parse error: the caret line must follow the error line


def ev(kind: str, *args: str, codes: tuple[int, ...] = (2,), caret: bool = False) -> Case:
    return Case(kind, ("eval", *args), codes, caret=caret)


def chk(kind: str, toml: str, codes: tuple[int, ...] = (2,)) -> Case:
    return Case(kind, ("check", "{toml}"), codes, toml=toml)


INJECT = "code injection"
BOMB = "resource bomb"
VALUE = "malformed value"
SHAPE = "shape error"
UNI = "unicode trick"
CLI = "option / file"
TOUCH = '__import__("os").system("touch {sentinel}")'

CASES: tuple[Case, ...] = (
    # the first README_ROWS[kind] cases of each kind also go in the README's table
    ev(INJECT, TOUCH, caret=True),
    ev(INJECT, "().__class__.__bases__[0].__subclasses__()", caret=True),
    ev(INJECT, "x.grad_fn", "x=1", caret=True),
    ev(INJECT, "x.backward()", "x=1", caret=True),
    ev(INJECT, "eval('1')", caret=True),
    ev(INJECT, "(lambda: 1)()", caret=True),
    ev(INJECT, "[i for i in range(3)]", caret=True),
    ev(INJECT, "f'{x}'", "x=1", caret=True),
    ev(INJECT, "pow(x, 'a')", "x=1", caret=True),
    ev(INJECT, "(y := x) * 2", "x=1", caret=True),
    ev(INJECT, "dot(x, **{'other': x})", "x=1,2", caret=True),
    ev(INJECT, "torch.load('f')", caret=True),
    ev(INJECT, "getattr(x, 'grad')", "x=1", caret=True),
    ev(INJECT, "import os", caret=True),
    ev(INJECT, 'torch.os.system("touch {sentinel}")', caret=True),
    ev(INJECT, "2*x", "x=" + TOUCH, caret=True),
    ev(INJECT, "x.__class__", "x=1", caret=True),
    ev(INJECT, "x.data", "x=1", caret=True),
    ev(INJECT, "x.grad", "x=1", caret=True),
    ev(INJECT, "exec('import os')", caret=True),
    ev(INJECT, "compile('1', 'f', 'eval')", caret=True),
    ev(INJECT, "sum(x for x in [1])", caret=True),
    ev(INJECT, "'abc'", caret=True),
    ev(INJECT, "dot(*[x, x])", "x=1,2", caret=True),
    ev(INJECT, "from os import system", caret=True),
    ev(INJECT, "torch.nn.Module()", caret=True),
    ev(INJECT, "x.sum.__globals__", "x=1", caret=True),
    ev(INJECT, "__builtins__", caret=True),
    ev(INJECT, "open('{sentinel}', 'w')", caret=True),
    ev(INJECT, "x[0].__class__", "x=1,2", caret=True),
    ev(INJECT, "2*x", "x=1", "-g", "__import__('os')", caret=True),
    ev(INJECT, "2*dot(x,x)", "x=1,2", "--expect", "x=x.__class__", caret=True),
    ev(INJECT, "sum(x, dim=__import__('os'))", "x=1,2", caret=True),
    ev(INJECT, "sum(x, dim='0')", "x=1,2", caret=True),
    ev(INJECT, "del x", "x=1", caret=True),
    ev(INJECT, "x if x else x", "x=1", caret=True),
    ev(INJECT, "x; assert x", "x=1", caret=True),
    ev(BOMB, "9**9**9", caret=True),
    ev(BOMB, "2*x", "x=9**9**9", caret=True),
    ev(BOMB, "sum(x*ones(10**9))", "x=1"),
    ev(BOMB, "sum(x)", "x=randn(10**8)"),
    ev(BOMB, "sum(x)", "x=eye(10**6)"),
    ev(BOMB, "(x[:,None]*y).sum()", "x=ones(10**5)", "y=ones(10**5)"),
    ev(BOMB, "x" + "+x" * 6000, "x=1"),
    ev(BOMB, "--", "-(" * 150 + "x" + ")" * 150, "x=1"),
    ev(BOMB, "; ".join(["y = x"] * 10_000) + "; y", "x=1", "--max-chars", "1000000"),
    ev(BOMB, "x*9**9**9", "x=1", caret=True),
    ev(BOMB, "2**10**5", caret=True),
    ev(BOMB, "sum(x)", "x=ones(10**9)"),
    ev(BOMB, "sum(x)", "x=zeros(10**4, 10**4)"),
    ev(BOMB, "sum(x)", "x=arange(10**12)"),
    ev(BOMB, "x*one_hot(tensor([10**8])).sum()", "x=1"),
    ev(BOMB, "(" * 150 + "x" + ")" * 150, "x=1", caret=True),  # brackets count as nesting (--max-depth)
    ev(BOMB, "(" * 5000 + "x" + ")" * 5000, "x=1", "--max-chars", "100000"),
    ev(BOMB, "-" * 500 + "x", "x=1"),
    ev(BOMB, "--", "-" * 5000 + "x", "x=1"),
    ev(BOMB, "exp(" * 150 + "x" + ")" * 150, "x=1"),
    ev(BOMB, "sum(x)", "x=" + "[" * 300 + "1" + "]" * 300),
    ev(VALUE, "sum(x)", "x=[[1,2],[3]]", caret=True),
    ev(VALUE, "sum(x)", "x=[1,'a']", caret=True),
    ev(VALUE, "2*x", "x="),
    ev(VALUE, "2*x", "=3"),
    ev(VALUE, "2*x", "x=nan", codes=(0, 1)),
    ev(VALUE, "sum(x)", "x=[[]]", codes=(0, 1)),
    ev(VALUE, "", "x=1", caret=True),
    ev(VALUE, "2*x"),
    ev(VALUE, "2*x", "x=10**400"),
    ev(VALUE, "sum(x)", "x=[1,[2]]", caret=True),
    ev(VALUE, "2*x", "x=y", caret=True),
    ev(VALUE, "2*x", "x=1,,2", caret=True),
    ev(VALUE, "2*x", "x=True", caret=True),
    ev(VALUE, "2*x", "x=1e999", codes=(0, 1)),
    ev(VALUE, "x/0", "x=1", codes=(0, 1)),
    ev(VALUE, "2*x", "x=1/0", codes=(0, 1)),
    ev(VALUE, "x*(-1)**0.5", "x=2", codes=(0, 1)),
    ev(VALUE, "sum(x*x)", "x=1,inf,nan", codes=(0, 1)),
    ev(VALUE, "   ", caret=True),
    ev(VALUE, "2*x", "3"),
    ev(VALUE, "2*x", "x=1", "x=2"),
    ev(VALUE, "x +", "x=1", caret=True),
    ev(VALUE, "x )", "x=1", caret=True),
    ev(VALUE, "x\x00", "x=1", caret=True),
    ev(VALUE, "2*x", "x=1\x1b]0;title\x07"),
    ev(VALUE, "x*tensor([])", "x=1", codes=(0,)),
    ev(SHAPE, "dot(x, y)", "x=1,2", "y=1,2,3"),
    ev(SHAPE, "mm(a, b).sum()", "a=ones(2,3)", "b=ones(2,4)"),
    ev(SHAPE, "sum(x, dim=5)", "x=1,2"),
    ev(SHAPE, "x[5]", "x=1,2"),
    ev(SHAPE, "dot(x)", "x=1,2", caret=True),
    ev(SHAPE, "dot(x, x, x)", "x=1,2", caret=True),
    ev(SHAPE, "x*2", "x=1,2", "-g", "1,2,3"),
    ev(SHAPE, "x + y", "x=1,2", "y=1,2,3"),
    ev(SHAPE, "softmax(x, dim=3).sum()", "x=1,2"),
    ev(SHAPE, "x[0, 0]", "x=1,2"),
    ev(SHAPE, "exp()", caret=True),
    ev(SHAPE, "x.reshape(3)", "x=1,2"),
    ev(SHAPE, "x @ y", "x=1,2", "y=1,2,3"),
    ev(SHAPE, "x*2", "x=1,2", "-g", "[[1,2]]"),
    ev(SHAPE, "cross_entropy(z, tensor([5]))", "z=[[1,2]]"),
    ev(SHAPE, "x.unsqueeze(7)", "x=1,2"),
    ev(SHAPE, "cat([x, y])", "x=1,2", "y=[[1]]"),
    ev(SHAPE, "x.expand_as(y)", "x=1,2", "y=1,2,3"),
    ev(UNI, "\uff58*2", "x=1", caret=True),
    ev(UNI, "\u0445*2", "x=1", caret=True),
    ev(UNI, "x\u200b*2", "x=1", caret=True),
    ev(UNI, "x*2\u202e", "x=1", caret=True),
    ev(UNI, "x*\u0663", "x=1", caret=True),
    ev(UNI, "2*x", "x=\u0663", caret=True),
    ev(UNI, "2*x", "\u0445=1"),
    ev(UNI, "x\ufeff", "x=1", caret=True),
    ev(UNI, "\U0001d431*2", "x=1", caret=True),
    Case(CLI, ("check", "/nonexistent/problems.toml")),
    chk(CLI, "[[problem]\nname = 'x'"),
    ev(CLI, "2*x", "x=1", "--const", "y"),
    ev(CLI, "2*x", "x=1", "--dtype", "int64"),
    ev(CLI, "2*x", "x=1", "--seed", "99999999999999999999"),
    ev(CLI, "--", "-----x", "x=1", codes=(0,)),
    ev(CLI, "-----x", "x=1"),
    ev(CLI, "2*x", "x=1", "--dtype", "float16"),
    ev(CLI, "2*x", "x=1", "--output", "nope"),
    ev(CLI, "2*x", "x=1", "--format", "html"),
    ev(CLI, "2*x", "x=1", "--max-elements", "abc"),
    ev(CLI, "2*x", "x=1", "--max-elements", "-1"),
    ev(CLI, "2*x", "x=1", "--symbolic-timeout", "1e300"),
    ev(CLI, "2*x", "x=1", "--tol", "nan"),
    ev(CLI, "2*x", "x=1", "--expect", "y=1"),
    ev(CLI, "2*x", "x=1", "--expect", "x=1,2", codes=(1,)),
    chk(CLI, "title = 'no problems'"),
    chk(CLI, "problem = 3"),
    chk(CLI, "[[problem]]\nname = 'a'\nexpr = '__import__(\"os\").system(\"touch {sentinel}\")'\n", codes=(1,)),
    chk(CLI, "[[problem]]\nname = 'a'\nexpr = 'dot(x, y)'\ninputs = {{ x = '1,2', y = '1,2,3' }}\n", codes=(1,)),
    chk(CLI, "[[problem]]\nname = 'a'\nexpr = '2*x'\ninputs = {{ x = 1 }}\nseed = 'abc'\n", codes=(1,)),
    chk(CLI, "[[problem]]\nname = 'a'\nexpr = '2*x'\ninputs = {{ x = 1 }}\nbogus = 1\n", codes=(1,)),
    chk(CLI, "[[problem]]\nname = 'a'\nexpr = '2*x'\ninputs = {{ x = 1 }}\noutput = '[1,'\n", codes=(1,)),
    chk(CLI, "[[problem]]\nname = 'a'\nexpr = '2*x'\ninputs = {{ x = 1 }}\ntol = 'tight'\n", codes=(1,)),
)
README_ROWS = {INJECT: 16, BOMB: 9, VALUE: 9, SHAPE: 8, UNI: 7, CLI: 6}  # 55 rows in the README, all in docs/


@dataclass
class Outcome:
    code: int
    stderr: str
    stdout: str
    seconds: float  # CPU time: the machine this runs on is shared, so wall time measures the neighbours
    wall: float
    exception: BaseException | None  # anything other than SystemExit escaping the CLI

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


def materialise(case: Case, workdir: Path) -> tuple[list[str], Path]:
    """The command line with ``{sentinel}``/``{toml}`` filled in, and the sentinel path."""
    sentinel = workdir / "PWNED"
    toml = workdir / "problems.toml"
    if case.toml is not None:
        toml.write_text(case.toml.format(sentinel=sentinel))
    return [a.replace("{sentinel}", str(sentinel)).replace("{toml}", str(toml)) for a in case.args], sentinel


def run_main(args: list[str]) -> Outcome:
    """The installed entry point (:func:`gradexplain.cli.main`) in-process, streams captured.

    ``main`` is what the ``gradexplain`` command runs, usage errors included; running it here
    instead of in a fresh process saves the ~2 s start-up per case.
    """
    runner = CliRunner()
    code, exc = 0, None
    with runner.isolation(env={"COLUMNS": "300"}) as (out, err, _):  # check's lines unwrapped
        argv, sys.argv = sys.argv, ["gradexplain", *args]
        start, cpu = time.perf_counter(), time.process_time()
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException as e:  # noqa: BLE001 - escaping the CLI is exactly what we look for
            code, exc = 1, e
        finally:
            seconds, wall = time.process_time() - cpu, time.perf_counter() - start
            sys.argv = argv
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(errors="replace"), err.getvalue().decode(errors="replace")
    return Outcome(code, stderr, stdout, seconds, wall, exc)


def run_case(case: Case, workdir: Path) -> Outcome:
    args, _ = materialise(case, workdir)
    return run_main(args)


def visible(text: str) -> str:
    """Non-ASCII and invisible characters as escapes, so a look-alike letter shows in the table."""
    return "".join(c if c.isprintable() and (c.isascii() or c in "✓✗") else ascii(c)[1:-1] for c in text)


def shell_word(arg: str, width: int = 60) -> str:
    """One argument as a user would type it (quoted), long ones abbreviated."""
    if len(arg) > width:
        arg = f"{arg[:40]}...{arg[-12:]}  ({len(arg):,} chars)"
    if arg and all(c.isalnum() or c in "=,._-/+$" for c in arg):
        return arg
    if "'" not in arg:
        return f"'{arg}'"
    return f'"{arg}"' if not any(c in arg for c in '"$`\\!') else shlex.quote(arg)


def cell(text: str) -> str:
    """A markdown table cell holding code (which may itself contain backticks and pipes)."""
    return f"`` {visible(text)} ``".replace("|", "\\|")


def message(out: Outcome, case: Case) -> str:
    """The line a user sees: the ``error:`` line, a check's failure line, or that it ran."""
    if out.exception is not None:
        return f"UNCAUGHT {type(out.exception).__name__}: {out.exception}"
    if out.error_lines:
        return out.error_lines[0]
    failed = [line for line in out.stdout.splitlines() if line.startswith("✗")]
    return failed[0] if failed and case.args[0] == "check" else f"(valid input: evaluated, exit {out.code})"


def selected(readme: bool) -> list[tuple[int, Case]]:
    """All cases, or for the README the first README_ROWS[kind] of each kind."""
    seen: Counter[str] = Counter()
    chosen = []
    for i, case in enumerate(CASES, 1):
        seen[case.kind] += 1
        if not readme or seen[case.kind] <= README_ROWS[case.kind]:
            chosen.append((i, case))
    return chosen


def table(readme: bool = False) -> str:
    """The markdown table of every (selected) case, from actually running it."""
    rows = ["| # | kind | command line | exit | what the user sees (stderr; stdout for `check`) | CPU s |",
            "|---|---|---|---|---|---|"]
    run_main(["eval", "2*dot(x,x)", "x=1,2,3"])  # warm up: imports are not part of any case's time
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in selected(readme):
            out = run_case(case, Path(tmp))
            args, _ = materialise(case, Path(tmp))
            command = " ".join(["gradexplain", *(shell_word(a.replace(tmp, "$TMP")) for a in args)])
            if case.toml is not None:
                command += f"   # problems.toml: {case.toml.format(sentinel='$TMP/PWNED')}"
            text = message(out, case).replace(tmp, "$TMP")
            rows.append(f"| {i} | {case.kind} | {cell(command)} | {out.code} | {cell(text)} | {out.seconds:.2f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(readme="--readme" in sys.argv[1:]))
