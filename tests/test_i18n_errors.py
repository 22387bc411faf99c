"""Error messages in the reader's language: the same English ``error:`` line as before, a Chinese
one under ``--lang zh`` (the caret still under the right column), the JSON error document English
in both; and no new English-only error can slip in (an AST scan of the package)."""
from __future__ import annotations

import ast
import re
import sys

import click
import pytest

from conftest import ROOT, run_cli
from gradexplain import cli
from gradexplain.i18n import Msg, current_language, set_language, translate
from gradexplain.usage import said_again, usage_message

CJK = re.compile(r"[\u4e00-\u9fff]")

# (command line, its English error line exactly as before, a piece of its Chinese line)
CASES = [
    (["eval", "x +* 2", "x=1"], "syntax: invalid syntax", "语法错误：语法无效"),
    (["eval", "foo(x)", "x=1"], "unknown function 'foo' (see `gradexplain ops`)", "未知的函数 'foo'"),
    (["eval", "mm(a, b)", "a=[[1,2,3]]", "b=[[1,2,3]]"],
     "in mm(a, b) (shape [1, 3] and shape [1, 3]): mat1 and mat2 shapes cannot be multiplied (1x3 and 1x3)",
     "在 mm(a, b)（形状 [1, 3] 和 形状 [1, 3]）中：mat1 and mat2 shapes cannot be multiplied"),  # torch's own words
    (["eval", "x*2", "x=1,2", "--max-elements", "1"],
     "x=1,2: 1,2 would make a tensor of 2 elements (shape [2]), over the limit of 1 (raise it with --max-elements)",
     "超过了上限 1（可用 --max-elements 调高）"),
    (["eval", "x*y", "x=1"], "no value for 'y': give it as y=VALUE", "'y' 没有值"),
    (["eval", "x*x", "x=1", "--dtype", "float16"], "--dtype must be float64 or float32, not 'float16'",
     "--dtype 只能是 float64 或 float32"),
    (["eval", "x*x", "x=1", "--step", "sgd", "--steps", "0"], "--steps must be between 1 and 1000, not 0",
     "--steps 必须在 1 到 1000 之间"),
    (["eval", "2*dot(x,x)", "x=1,2,3", "--expect", "x=(2*"], "syntax: unclosed '('", "语法错误：'(' 没有闭合"),
    (["check", "{missing}"], "{missing}: no such file", "{missing}：文件不存在"),
    (["check", "{folder}"], "{folder}: a directory; give a regular file", "{folder}：是一个文件夹；请给出一个普通文件"),
]


def _filled(args: list[str], tmp_path) -> list[str]:
    return [a.format(missing=tmp_path / "none.toml", folder=tmp_path) for a in args]


@pytest.mark.parametrize("args, english, chinese", CASES, ids=[" ".join(c[0][:2]) for c in CASES])
def test_an_error_line_in_english_and_in_chinese(args, english, chinese, tmp_path):
    args = _filled(args, tmp_path)
    en, zh = run_cli(*args), run_cli(*args, "--lang", "zh")
    assert en.code == zh.code == 2
    en_lines, zh_lines = en.stderr.splitlines(), zh.stderr.splitlines()
    assert en_lines[0] == "error: " + _filled([english], tmp_path)[0]
    assert zh_lines[0].startswith("error: ") and _filled([chinese], tmp_path)[0] in zh_lines[0]
    assert CJK.search(zh_lines[0])
    assert zh_lines[1:] == en_lines[1:]  # the source line and its caret are the same in every language


def test_the_caret_stays_under_the_offending_column():
    zh = run_cli("eval", "y = x*2; z = y @@ x", "x=1,2", "--lang", "zh")
    message, source, caret = zh.stderr.splitlines()
    assert CJK.search(message)
    assert source[caret.index("^")] == "@"  # both lines are indented alike, so the index is the column


@pytest.mark.parametrize("args", [c[0] for c in CASES[:8]], ids=[" ".join(c[0][:2]) for c in CASES[:8]])
def test_the_json_error_document_is_english_in_every_language(args):
    en, zh = run_cli(*args, "--json"), run_cli(*args, "--json", "--lang", "zh")
    assert en.stdout == zh.stdout and en.json()["schema"] == "gradexplain-error/1"
    assert not CJK.search(zh.stdout) and CJK.search(zh.stderr)


def test_a_batch_line_error_is_said_in_chinese_and_its_json_stays_english(tmp_path):
    problems = tmp_path / "p.jsonl"
    problems.write_text('{"expr": "foo(x)", "inputs": {"x": 1}}\n', encoding="utf-8")
    en, zh = run_cli("eval", "--batch", str(problems)), run_cli("eval", "--batch", str(problems), "--lang", "zh")
    assert en.stdout == zh.stdout and not CJK.search(zh.stdout)
    assert en.stderr.splitlines()[0] == "error: line 1: unknown function 'foo' (see `gradexplain ops`)"
    assert zh.stderr.splitlines()[0].startswith("error: 第 1 行：未知的函数 'foo'")


# ------------------------------------------------------------------ click's usage errors

@pytest.fixture
def main(monkeypatch, capsys):
    """cli.main() in-process (usage errors are caught there, not by the command): exit code, stderr."""
    before = current_language()

    def call(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["gradexplain", *args])
        with pytest.raises(SystemExit) as done:
            cli.main()
        return done.value.code, capsys.readouterr().err

    yield call
    set_language(before)


@pytest.mark.parametrize("args, english, chinese", [
    (["eval", "x*x", "x=1", "--tol", "abc"], "Invalid value for '--tol': 'abc' is not a valid float.",
     "'--tol' 的值无效：'abc' 不是有效的浮点数。"),
    (["eval", "x*x", "x=1", "--foo"], "No such option '--foo'. (Did you mean one of: '--format', '--tol'?)",
     "没有选项 '--foo'。（你是想用其中之一吗：'--format', '--tol'？）"),
    (["eval", "x*x", "x=1", "--hvp"], "Option '--hvp' requires an argument.", "选项 '--hvp' 需要一个值。"),
    (["check"], "Missing argument 'FILE.toml'.", "缺少参数 'FILE.toml'。"),
    (["evl"], "No such command 'evl'. Did you mean 'eval'?", "没有命令 'evl'。你是想用 'eval' 吗？"),
], ids=["bad value", "no such option", "needs a value", "missing argument", "no such command"])
def test_click_usage_errors_in_english_and_in_chinese(main, args, english, chinese):
    assert main(*args) == (2, f"error: {english}\n")
    assert main("--lang", "zh", *args) == (2, f"error: {chinese}\n")  # (after --hvp, --lang would be its value)


def test_a_click_message_is_said_again_only_when_its_english_is_exactly_clicks():
    said = said_again("Invalid value for '--steps': '1.5' is not a valid integer.")
    assert isinstance(said, Msg) and isinstance(said.args["message"], Msg)
    assert translate(said, "zh") == "'--steps' 的值无效：'1.5' 不是有效的整数。"
    unknown = "Some wording click may use one day."
    assert said_again(unknown) == unknown and not isinstance(said_again(unknown), Msg)
    error = click.UsageError("Got unexpected extra argument (x)")
    assert translate(usage_message(error), "zh") == "多出了一个参数（x）"


# ------------------------------------------------------------------ no English-only error slips in

ERROR_CALLS = re.compile(r"(Error|^error)$")  # raise XxxError(...), raise self.error(...) / args.error(...)
# Raised messages that stay English on purpose, each for a reason: none reaches an ``error:`` line.
STAYS_ENGLISH = {
    ("gradexplain/__init__.py", "AttributeError"): "Python's module protocol (getattr), worded as Python's own",
    ("gradexplain/api.py", "TypeError"): "a Python caller's mistake, shown by Python's traceback (never rendered)",
    ("gradexplain/record.py", "RuntimeError"): "internal assertions: the recording lost a tensor",
    ("gradexplain/render/json.py", "TypeError"): "json's default() hook: an internal type error",
    ("gradexplain/render/writeup.py", "ValueError"): "internal: formula_latex catches it and writes \\texttt",
}


def _plain_text(node: ast.expr) -> bool:
    """An f-string, a str literal, or text made of them (concatenation, a conditional, .format)."""
    if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return True
    if isinstance(node, ast.BinOp):
        return _plain_text(node.left) or _plain_text(node.right)
    if isinstance(node, ast.IfExp):
        return _plain_text(node.body) or _plain_text(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _plain_text(node.func.value)
    return False


def english_only_raises() -> list[str]:
    found = []
    for path in sorted((ROOT / "gradexplain").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args):
                continue
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if ERROR_CALLS.search(name) and _plain_text(node.exc.args[0]) and (relative, name) not in STAYS_ENGLISH:
                found.append(f"{relative}:{node.lineno}: raise {name}({ast.unparse(node.exc.args[0])[:60]}...)")
    return found


def test_every_raised_message_is_a_msg():
    assert english_only_raises() == [], "write the message as Msg(\"template {field}\", field=...)"


def test_the_scan_finds_an_f_string_message():
    tree = ast.parse('raise GradexplainError(f"bad {x}")\nraise self.error("plain", node)\n'
                     'raise ParseError(Msg("fine {x}", x=x))')
    raises = [n for n in ast.walk(tree) if isinstance(n, ast.Raise)]
    assert [_plain_text(r.exc.args[0]) for r in raises] == [True, True, False]
