"""--format markdown / latex for eval and check: GitHub tables, balanced LaTeX with known macros."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import SAMPLES, run_cli

# what the write-ups may use: LaTeX kernel, amsmath, amssymb, geometry, and what sympy.latex emits for our ops
KNOWN_MACROS = {
    "documentclass", "usepackage", "begin", "end", "section", "subsection", "textbf", "texttt", "text", "item",
    "hline", "frac", "left", "right", "operatorname", "top", "partial", "mathbf", "checkmark", "times", "cdot",
    "sqrt", "log", "exp", "sin", "cos", "tan", "tanh", "theta", "ldots", "textless", "textgreater", "textbar",
    "textbackslash", "le", "ge", "to", "leftarrow", "emptyset", "pm", "max", "min", "sigma", "infty", "pi",
    "operatorname", "quad", "wedge", "vee", "neq", "otherwise", "for",
    "resizebox", "ifdim", "width", "linewidth", "else", "fi",  # graphicx: wide tables scaled to the line
}
ENVIRONMENTS = {"document", "align*", "center", "tabular", "itemize", "bmatrix", "cases", "aligned"}


def assert_valid_latex(tex: str) -> None:
    assert tex.isascii()
    body = re.sub(r"\\[\\{}$&#%_]", "", tex)  # escaped characters and line breaks
    depth = 0
    for ch in body:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, "a } closes nothing"
    assert depth == 0, "unbalanced braces"
    assert body.count("\\left") == body.count("\\right")
    assert body.count("$") % 2 == 0
    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{([^}]*)\}", tex):
        assert env in ENVIRONMENTS, env
        if kind == "begin":
            stack.append(env)
        else:
            assert stack.pop() == env
    assert not stack
    unknown = set(re.findall(r"\\([a-zA-Z]+)", body)) - KNOWN_MACROS
    assert not unknown, unknown
    assert tex.startswith("\\documentclass") and tex.rstrip().endswith("\\end{document}")


def maybe_compile(tex: str, tmp_path) -> None:
    if shutil.which("pdflatex") is None:
        return
    (tmp_path / "w.tex").write_text(tex)
    p = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "w.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-2000:]


def table_rows(markdown: str) -> list[list[str]]:
    """Rows of the first pipe table, split on unescaped pipes."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [re.split(r"(?<!\\)\|", line)[1:-1] for line in lines]


def test_eval_markdown_has_github_tables_and_math():
    r = run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--expect", "x=4*x", "--format", "markdown")
    assert r.code == 0
    md = r.stdout
    assert md.startswith("## Gradient of `2*dot(x,x)`")
    assert "\\frac{\\partial out}{\\partial x} = 4 x" in md
    assert md.count("$$") % 2 == 0
    lines = md.splitlines()
    separators = [i for i, line in enumerate(lines) if re.fullmatch(r"\|(---\|)+", line)]
    assert len(separators) == 2  # inputs, gradients
    for i in separators:  # header, separator and rows have the same number of cells
        width = lines[i].count("|") - 1
        j = i - 1
        assert len(re.split(r"(?<!\\)\|", lines[j])) - 2 == width
        j = i + 1
        while j < len(lines) and lines[j].startswith("|"):
            assert len(re.split(r"(?<!\\)\|", lines[j])) - 2 == width
            j += 1
    assert "| x | [4, 8, 12] | [4, 8, 12] | [4, 8, 12] | [4, 8, 12] | yes |" in md
    assert "**Verdict:** ✓" in md


def test_eval_latex_is_balanced_and_uses_known_macros(tmp_path):
    for args in (["y = x*2; z = y*y*3; z.mean()", "x=1,2,3"],
                 ["mse_loss(W@x + b, t)", "W=[[1,2],[3,4]]", "x=1,2", "b=0,1", "t=1,1", "--expect", "b=[1,1]"],
                 ["b = zeros(1,2); b[0,0] = a[0,0]**2 + a[0,1]; b[0,1] = a[0,1]**3 + a[0,0]; 2*b", "a=[[2,4]]",
                  "-g", "[[1,2]]"],
                 ["relu(x).sum() + sigmoid(x).sum()", "x=1/3,-1"]):
        r = run_cli("eval", *args, "--format", "latex")
        assert r.code in (0, 1), r.stderr
        assert_valid_latex(r.stdout)
        maybe_compile(r.stdout, tmp_path)


def test_formula_latex_uses_matrix_notation():
    from gradexplain.render.writeup import text_latex

    assert text_latex("4*x") == "4 x"
    assert text_latex("W.T @ (W @ x - t)") == "W^{\\top} \\left(W x - t\\right)"
    assert text_latex("ones_like(x)") == "\\mathbf{1}"
    assert text_latex("stack([stack([1, a[0, 1]])])") == "\\begin{bmatrix} 1 & a_{0,1} \\end{bmatrix}"


def test_check_writeups(tmp_path):
    seeds = str(SAMPLES / "seeds.toml")
    md = run_cli("check", seeds, "--format", "markdown")
    assert md.code == 0
    rows = table_rows(md.stdout)
    assert [c.strip() for c in rows[0]] == ["problem", "result", "details"]
    assert [c.strip() for c in rows[2]][:2] == ["mean-of-3y2", "pass"]
    assert "### vjp-12-194: gradient of" in md.stdout
    tex = run_cli("check", seeds, "--format", "latex")
    assert tex.code == 0
    assert_valid_latex(tex.stdout)
    assert "vjp-12-194" in tex.stdout
    maybe_compile(tex.stdout, tmp_path)


@pytest.mark.parametrize("text", ["x**2 | y", "a_b <c> [1]"])
def test_markdown_cells_escape_pipes_and_emphasis(text):
    from gradexplain.render.writeup import md_table

    header, _, row = md_table(["a"], [[text]])
    assert len(re.split(r"(?<!\\)\|", row)) == 3
    assert not re.search(r"(?<!\\)[*_<>]", row)  # no unescaped emphasis or HTML


def write_problems(tmp_path, body: str):
    path = tmp_path / "p.toml"
    path.write_text(body)
    return str(path)


def test_writeup_verdict_of_a_problem_that_fails_on_its_output(tmp_path):
    path = write_problems(tmp_path, '[[problem]]\nname = "out"\nexpr = "2*dot(x,x)"\ninputs = { x = "1,2,3" }\n'
                                    'output = "29"\nexpect = { x = "4*x" }\n')
    for fmt in ("markdown", "latex"):
        r = run_cli("check", path, "--format", fmt)
        assert r.code == 1
        assert "every expectation holds" not in r.stdout
        assert "output: expected 29" in r.stdout.replace("\\", "")
    md = run_cli("check", path, "--format", "markdown").stdout
    verdict = next(line for line in md.splitlines() if line.startswith("**Verdict:**"))
    assert "✗" in verdict and "does not hold" in verdict


def test_writeup_verdict_of_a_failed_expectation_does_not_read_as_agreement(tmp_path):
    path = write_problems(tmp_path, '[[problem]]\nname = "half"\nexpr = "2*dot(x,x)"\ninputs = { x = "1,2,3" }\n'
                                    'expect = { x = "2*x" }\n')
    md = run_cli("check", path, "--format", "markdown").stdout
    verdict = next(line for line in md.splitlines() if line.startswith("**Verdict:**"))
    assert not verdict.startswith("**Verdict:** ✗ torch and SymPy agree")
    assert "does not hold" in verdict and "4\\*x" in verdict and "factor of 2" in verdict


def test_latex_tables_fit_the_page():
    tex = run_cli("eval", "2*dot(x,x)", "x=1,2,3", "--format", "latex").stdout
    assert "\\usepackage{graphicx}" in tex
    assert tex.count("\\resizebox") == tex.count("\\begin{tabular}") > 0
    assert_valid_latex(tex)
