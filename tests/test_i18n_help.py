"""--help and the write-ups in Chinese: our texts, click's and typer's words, the layout at 80 columns,
LaTeX with ctex; English unchanged."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import SAMPLES, run_cli
from gradexplain.i18n import language

COMMANDS = ["eval", "check", "graph", "run", "ops", "samples"]


def zh_subprocess(*args: str, **env: str) -> subprocess.CompletedProcess:
    """The entry point in a fresh process, the language left to ``env`` (GRADEXPLAIN_LANG removed)."""
    full = {k: v for k, v in os.environ.items() if k not in ("GRADEXPLAIN_LANG", "LC_ALL", "LC_MESSAGES", "LANG")}
    full.update(NO_COLOR="1", COLUMNS="80", **env)
    return subprocess.run([sys.executable, "-m", "gradexplain.cli", *args], capture_output=True, text=True,
                          env=full, timeout=120)


def test_eval_help_with_lang_zh_is_chinese_and_keeps_the_option_names():
    p = zh_subprocess("eval", "--help", "--lang", "zh")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for chinese in ("用法:", "解释 EXPR 的梯度", "示例：", "选项", "参数", "[默认: text]", "显示本帮助并退出。"):
        assert chinese in out, chinese
    for name in ("--json", "--grad-output", "-g", "--const", "--expect", "--lang", "--help", "EXPR [NAME=VALUE]..."):
        assert name in out, name
    assert 'gradexplain eval "2*dot(x,x)" x=1,2,3' in out  # the examples stay runnable as they are
    assert "Usage:" not in out and "Options" not in out and "Show this message" not in out


def test_the_locale_chooses_chinese_help():
    p = zh_subprocess("check", "--help", LANG="zh_CN.UTF-8")
    assert p.returncode == 0, p.stderr
    assert "核对一个题集" in p.stdout and "[必填]" in p.stdout and "FILE.toml" in p.stdout
    assert "--format" in p.stdout and "Usage:" not in p.stdout


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_chinese_help_fits_80_columns_without_cropping(command, monkeypatch):
    """rich measures CJK as two cells; nothing may be cut off ('…') or run past 80 columns.
    (rich's Text.rstrip_end counts characters, not cells: a wrapped line of CJK text that fills the
    width exactly loses its last character to '…' — wording is what keeps 80 columns clean.)"""
    from rich.cells import cell_len

    monkeypatch.setenv("COLUMNS", "80")
    with language("zh"):
        r = run_cli(*([command] if command else []), "--help")
    assert r.code == 0
    assert "用法:" in r.stdout and "选项" in r.stdout
    assert "…" not in r.stdout
    assert max(cell_len(line) for line in r.stdout.splitlines()) <= 80


def test_top_level_help_lists_the_commands_and_typers_options_in_chinese(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with language("zh"):
        out = run_cli("--help").stdout
    assert "命令" in out and "梯度解释器" in out and "为当前 shell 安装命令补全。" in out
    assert all(c in out for c in COMMANDS) and "--install-completion" in out


def test_english_help_is_unchanged_after_chinese(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with language("zh"):
        run_cli("eval", "--help")
    out = run_cli("eval", "--help").stdout
    assert "Usage:" in out and "Options" in out and "Show this message and exit." in out and "[default: text]" in out
    assert not re.search(r"[\u4e00-\u9fff]", out)


# ---------------------------------------------------------------------------------------- write-ups

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def test_markdown_writeup_in_chinese():
    md = run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--format", "markdown", "--lang", "zh").stdout
    assert md.startswith("## `2*dot(x,x)` 的梯度")
    assert "### 导数" in md and "| 输入 | 形状 | 值 | requires\\_grad |" in md and "**结论：** ✓" in md
    assert "有限差分" in md and "4 x" in md and "[4, 8, 12]" in md  # formulas and values as they are


def test_check_writeup_in_chinese_names_each_problem():
    md = run_cli("check", str(SAMPLES / "seeds.toml"), "--format", "markdown", "--lang", "zh").stdout
    assert md.startswith("## 题集 ") and "| 题目 | 结果 | 详情 |" in md and "| 通过 |" in md
    assert re.search(r"^### \S+：`.+` 的梯度$", md, re.M)


def zh_latex() -> str:
    r = run_cli("eval", "mm(a, w)", "a=[[2,3],[1,2]]", "w=ones(2,1)", "-g", "[[1],[1]]", "--format", "latex",
                "--lang", "zh")
    assert r.code == 0
    return r.stdout


def test_latex_writeup_in_chinese_loads_ctex_and_keeps_the_math():
    tex = zh_latex()
    first, *rest = tex.splitlines()
    assert first.startswith("%") and "xelatex" in first  # how to compile it, where a reader looks first
    assert "\\usepackage{ctex}" in rest and rest.index("\\usepackage{ctex}") < rest.index("\\begin{document}")
    assert "\\section*{\\texttt{mm(a, w)} 的梯度}" in tex and "\\textbf{结论：}" in tex
    assert "$= $" in tex and "$v = $" in tex and "?" not in tex.replace("\\ifdim", "")  # no CJK lost to '?'
    body = re.sub(r"\\[\\{}$&#%_]", "", tex)
    assert body.count("{") == body.count("}") and body.count("$") % 2 == 0


def test_english_writeups_have_no_cjk_package():
    tex = run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--format", "latex").stdout
    assert tex.startswith("\\documentclass{article}") and "ctex" not in tex and tex.isascii()
    assert not CJK.search(run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--format", "markdown").stdout)


def test_json_is_the_same_in_chinese():
    args = ("eval", "2*dot(x,x)", "x=1,2,3", "--json")
    assert run_cli(*args, "--lang", "zh").stdout == run_cli(*args).stdout


@pytest.mark.skipif(shutil.which("xelatex") is None, reason="no xelatex here")
def test_chinese_latex_compiles_with_xelatex(tmp_path):
    (tmp_path / "w.tex").write_text(zh_latex(), encoding="utf-8")
    p = subprocess.run(["xelatex", "-interaction=nonstopmode", "-halt-on-error", "w.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:]


def test_the_chinese_readme_opens_with_the_same_two_commands():
    from conftest import ROOT

    def first_block(name: str) -> str:
        return re.search(r"```\n(.*?)```", (ROOT / name).read_text(encoding="utf-8"), re.S).group(1)

    assert first_block("README.zh.md") == first_block("README.md")
    assert "README.zh.md" in (ROOT / "README.md").read_text(encoding="utf-8").split("## ")[0]  # linked near the top
