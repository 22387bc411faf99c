"""The renderers in Chinese (``--lang zh``): the explanation a person reads, its terminal layout with
double-width characters, the JSON that stays English byte for byte, and the API's ``lang=``.

The notes, reasons and error messages the pipeline makes are translated in their own areas; these
tests look at what the renderers themselves write (titles, headers, narration, verdicts).
"""
from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys

import pytest
import torch
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

import gradexplain as gx
from conftest import ROOT, SAMPLES, run_cli
from gradexplain.errors import GradexplainError
from gradexplain.render.style import Prose

SEED003 = SAMPLES / "scripts" / "seed003_vjp.py"  # out.backward(torch.FloatTensor([[1, 2]])) → a.grad [[12, 194]]
DOT = ("eval", "2*dot(x,x)", "x=1,2,3")


def wide(monkeypatch) -> None:
    """Content checks read whole sentences: no wrapping."""
    monkeypatch.setenv("COLUMNS", "400")


def test_eval_in_chinese_answer_first_titles_and_narration(monkeypatch):
    wide(monkeypatch)
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (2 * torch.dot(x, x)).backward()
    grad = "[" + ", ".join(f"{v:g}" for v in x.grad.tolist()) + "]"
    r = run_cli(*DOT, "--lang", "zh")
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"x.grad = {grad}  =  4*x  ✓"  # the answer first, formulas as they are
    assert lines[1] == "（梯度与其输入形状相同：x.grad 与 x 一样是 [3]）"
    for said in ("输入", "前向计算", "输出 out：形状 []，值 28，grad_fn MulBackward0",
                 "反向传播：梯度从输出一路流向叶子张量", "为反向传播保存的张量：", "x（作为 self）:  g*x",
                 "（第 1 份贡献，共 2 份）", "梯度最终落在哪里（AccumulateGrad，每个叶子张量一个）",
                 "x 被使用了 2 次", "叶子张量：x", "非叶子张量：out", "retain_graph：", " 符号公式 ", " 一致 "):
        assert said in r.stdout, said
    assert lines[-1] == "✓ torch 与 SymPy 一致"
    english = run_cli(*DOT).stdout
    for title in ("backward pass:", "where the gradients land", "leaves:", "torch and SymPy agree", "gradients"):
        assert title in english and title not in r.stdout, title


def test_the_environment_chooses_chinese_the_same_way():
    """LANG=zh_CN.UTF-8 with no GRADEXPLAIN_LANG (nor LC_ALL / LC_MESSAGES) gives what --lang zh gives."""
    env = {k: v for k, v in os.environ.items() if k not in ("GRADEXPLAIN_LANG", "LC_ALL", "LC_MESSAGES")}
    env.update(LANG="zh_CN.UTF-8", NO_COLOR="1", COLUMNS="100")
    p = subprocess.run([sys.executable, "-m", "gradexplain.cli", *DOT], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert "反向传播：梯度从输出一路流向叶子张量" in p.stdout and p.stdout.rstrip().endswith("✓ torch 与 SymPy 一致")
    explicit = dict(env, LANG="en_US.UTF-8")
    q = subprocess.run([sys.executable, "-m", "gradexplain.cli", *DOT, "--lang", "zh"], capture_output=True,
                       text=True, env=explicit, timeout=120)
    assert q.stdout == p.stdout


@pytest.mark.parametrize("args", [DOT, ("run", str(SEED003))], ids=["eval", "run"])
def test_json_is_byte_identical_in_every_language(args):
    english, chinese = run_cli(*args, "--json"), run_cli(*args, "--json", "--lang", "zh")
    assert english.code == chinese.code == 0
    assert chinese.stdout == english.stdout and english.stdout.startswith("{")


def seed003_torch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """v, J and a.grad of the seed 003 script, by plain torch."""
    def f(a: torch.Tensor) -> torch.Tensor:
        b = torch.zeros(1, 2)
        b[0, 0] = a[0, 0] ** 2 + a[0, 1]
        b[0, 1] = a[0, 1] ** 3 + a[0, 0]
        return 2 * b

    a = torch.tensor([[2.0, 4.0]], requires_grad=True)
    v = torch.tensor([[1.0, 2.0]])
    f(a).backward(v)
    jac = torch.autograd.functional.jacobian(f, torch.tensor([[2.0, 4.0]])).reshape(2, 2)
    return v.reshape(-1), jac, a.grad.reshape(-1)


def test_run_seed003_explains_the_jacobian_and_the_vjp_in_chinese(monkeypatch):
    wide(monkeypatch)
    v, jac, grad = seed003_torch()
    assert grad.tolist() == [12.0, 194.0]
    r = run_cli("run", str(SEED003), "--lang", "zh")
    assert r.code == 0, r.stderr
    text = r.stdout
    assert "第 1 次 backward()，位于 " in text and "叶子张量与常量" in text and "否（常量）" in text
    assert "雅可比矩阵 J = dout/da，形状 [1, 2] + [1, 2]（行：out 的一个元素；列：a 的一个元素）" in text
    assert "torch 与 SymPy 的雅可比矩阵一致" in text
    assert ("向量-雅可比积（vᵀ·J）：backward(v) 得到 a.grad = vᵀ·J（v = [[1, 2]]，展平成向量）；"
            "PyTorch 从不构造雅可比矩阵，而是让每个节点把自己的求导规则直接作用在 g 上") in text
    for col in range(2):
        terms = " + ".join(f"{v[r]:g}·{jac[r, col]:g}" for r in range(2))
        assert f"  a.grad[0,{col}] = {terms} = {grad[col]:g}" in text
    assert f"a.grad = [[{grad[0]:g}, {grad[1]:g}]]" in text
    assert text.rstrip().endswith("1 次 backward() 调用：解释了 1 次  ✓")
    assert "vector-Jacobian product" not in text and "Jacobian J" not in text


def column(line: str, text: str) -> int:
    """The terminal column (in cells) where ``text`` starts in ``line``."""
    return cell_len(line[:line.index(text)])


@pytest.mark.parametrize("args", [
    DOT,
    ("run", str(SEED003)),
    ("eval", "sum(x**3) + dot(x, y)", "x=1,2", "y=3,4", "--hessian", "--hvp", "x=1,0"),
    ("eval", "sum((w*x - y)**2)", "w=0.5", "x=1,2", "y=2,4", "--const", "x,y", "--step", "sgd", "--lr", "0.1",
     "--steps", "5", "--no-zero-grad"),
], ids=["eval", "run", "hessian", "train"])
def test_chinese_text_fits_80_columns_and_tables_stay_aligned(monkeypatch, args):
    """rich measures double-width characters as two cells: nothing passes column 80, and a table's
    header and rows line up in cells (not in characters)."""
    monkeypatch.setenv("COLUMNS", "80")
    r = run_cli(*args, "--lang", "zh")
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(cell_len(line) > len(line) for line in lines)  # double-width text is there
    assert max(cell_len(line) for line in lines) <= 80, max(lines, key=cell_len)
    if args[0] == "eval" and len(args) == 3:
        header = next(line for line in lines if " 符号公式 " in line)
        row = next(line for line in lines if line.startswith(" x ") and "✓" in line)
        assert column(header, "一致") == column(row, "✓") and column(header, "符号公式") == column(row, "4*x")
        assert cell_len(header) == cell_len(row)


def printed(renderable, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None, highlight=False)
    console.print(renderable)
    return console.file.getvalue().splitlines()


def test_chinese_prose_fills_its_lines_and_keeps_punctuation_with_its_neighbour():
    """rich breaks only at spaces; a Chinese sentence has none, so Prose may also break between two
    double-width characters (never before a closing mark, never after an opening one)."""
    sentence = "梯度一旦继续往下传，PyTorch 就会丢弃它们的梯度（除非调用 .retain_grad()），所以它们的 .grad 是 None。"
    lines = printed(Prose(sentence * 3), 30)
    assert "".join(lines).replace(" ", "") == (sentence * 3).replace(" ", "")
    assert all(cell_len(line) <= 30 for line in lines)
    full = [cell_len(line) for line in lines[:-1]]
    assert sum(full) / len(full) >= 25 and full.count(30) >= 2  # filled, not ragged
    for word in ("PyTorch", ".retain_grad()", ".grad", "None"):  # Latin words are never cut
        assert sum(line.count(word) for line in lines) == 3, word
    assert len(lines) <= len(printed(Text(sentence * 3), 30))
    assert not any(line.startswith(tuple("，。）：；")) or line.rstrip().endswith("（") for line in lines)
    english = "gradients flow from the output down to the leaves " * 4
    assert printed(Prose(english), 30) == printed(Text(english), 30)  # no double-width text: rich's own wrap


def test_check_ops_and_samples_in_chinese(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    path = tmp_path / "two.toml"
    path.write_text('[[problem]]\nname = "ok"\nexpr = "2*dot(x,x)"\ninputs = { x = "[1,2,3]" }\n'
                    'expect = { x = "[4,8,12]" }\n\n'
                    '[[problem]]\nname = "off"\nexpr = "x.sum()"\ninputs = { x = "[1,2]" }\nexpect = { x = "[1,2]" }\n')
    r = run_cli("check", str(path), "--lang", "zh")
    assert r.code == 1 and r.stdout.splitlines()[0] == "✓ ok"
    assert r.stdout.splitlines()[-1] == "1 个通过，1 个失败——失败：off"
    ops = run_cli("ops", "--lang", "zh")
    assert "各参数的反向传播规则" in ops.stdout and max(cell_len(line) for line in ops.stdout.splitlines()) <= 80
    assert "用 `gradexplain samples NAME` 打印其中一个" in run_cli("samples", "--lang", "zh").stdout


def test_api_explanation_in_its_language_json_unchanged():
    en = gx.explain("2*dot(x,x)", x=[1, 2, 3])
    zh = gx.explain("2*dot(x,x)", x=[1, 2, 3], lang="zh")
    assert zh.lang == "zh" and en.lang is None
    assert "反向传播" in str(zh) and "backward pass" in str(en) and "反向传播" not in str(en)
    assert "<h4>梯度</h4>" in zh._repr_html_() and "torch 与 SymPy 一致" in zh._repr_html_()
    assert "<h4>gradients</h4>" in en._repr_html_()
    assert zh.to_json() == en.to_json() and "lang" not in zh.to_dict()
    with gx.language("zh"):
        assert "反向传播" in str(en)  # no lang of its own: the current language
    assert "backward pass" in str(en)
    with pytest.raises(GradexplainError, match="--lang must be one of"):
        gx.explain("x*x", x=2, lang="klingon")
    with gx.record(lang="zh_CN.UTF-8") as rec:
        x = torch.tensor([1.0, 2.0], requires_grad=True)
        (x * x).sum().backward()
    assert rec.reports[0].lang == "zh" and "第 1 次 backward()" in str(rec.reports[0])


def test_every_message_of_the_renderers_has_a_chinese_translation():
    spec = importlib.util.spec_from_file_location("build_catalogs", ROOT / "scripts" / "build_catalogs.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    done = build.translations("zh")
    others = ("render/writeup.py", "render/json.py", "render/errors.py")  # other areas (json: never translated)
    mine = {msgid for msgid, where in build.source_messages().items()
            if any("gradexplain/render/" in w and not any(o in w for o in others) for w in where)}
    assert len(mine) > 100
    assert sorted(mine - set(done)) == []
    assert all(sorted(build.FIELD.findall(m)) == sorted(build.FIELD.findall(done[m])) for m in mine)
