"""``gradexplain graph``: DOT, Mermaid and SVG pictures of the backward graph."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import run_cli
from gradexplain.render import dot as dot_module

HAVE_DOT = shutil.which("dot") is not None


def test_dot_names_the_nodes_with_labels_values_and_gradients():
    r = run_cli("graph", "2*dot(x,x)", "x=1,2,3", "--format", "dot")
    assert r.code == 0, r.stderr
    assert r.stdout.startswith("digraph")
    assert "DotBackward0" in r.stdout and "dot(x,x)" in r.stdout
    assert "x.grad = [4, 8, 12]" in r.stdout  # by hand: d(2 x·x)/dx = 4x
    assert r.stdout.count('label="a: g*x\\n[2, 4, 6]"') == 1 and r.stdout.count('label="b: g*x\\n[2, 4, 6]"') == 1
    assert "shape=note" in r.stdout  # saved tensors styled apart
    assert "constant: no gradient" in r.stdout


def test_mermaid_is_a_flowchart():
    r = run_cli("graph", "2*dot(x,x)", "x=1,2,3", "--format", "mermaid")
    assert r.code == 0, r.stderr
    body = r.stdout.split("---\n")[-1]
    assert body.startswith("flowchart TD")
    assert "DotBackward0" in r.stdout and "classDef leaf" in r.stdout


def test_mermaid_and_dot_escape_special_characters():
    assert dot_module.dot_quote('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c\\nd"'
    assert dot_module.mermaid_text('x["a"] | <b> #1') == "x[#quot;a#quot;] #124; #lt;b#gt; #35;1"


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot program is not installed")
@pytest.mark.parametrize("expr,values", [
    ("2*dot(x,x)", ["x=1,2,3"]),
    ("b = zeros(1,2); b[0,0] = a[0,0]**2 + a[0,1]; b[0,1] = a[0,1]**3 + a[0,0]; 2*b", ["a=[[2,4]]", "-g", "[[1,2]]"]),
    ("W[:, 0] @ x[:, 0] + mse_loss(W, x)", ["W=[[1,2],[3,4]]", "x=[[0,1],[2,3]]"]),
])
def test_graphviz_reads_the_dot_text(expr, values):
    r = run_cli("graph", expr, *values)
    assert r.code == 0, r.stderr
    done = subprocess.run(["dot", "-Tsvg"], input=r.stdout, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "<svg" in done.stdout


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot program is not installed")
def test_svg_format_runs_graphviz():
    r = run_cli("graph", "2*dot(x,x)", "x=1,2,3", "--format", "svg")
    assert r.code == 0, r.stderr
    assert "<svg" in r.stdout and "DotBackward0" in r.stdout


def test_svg_without_graphviz_says_how_to_install(monkeypatch):
    monkeypatch.setattr(dot_module.shutil, "which", lambda name: None)
    r = run_cli("graph", "2*dot(x,x)", "x=1,2,3", "--format", "svg")
    assert r.code == 2
    assert r.stderr.startswith("error:") and "apt-get install graphviz" in r.stderr and "Traceback" not in r.stderr


def test_big_graphs_are_capped_with_a_note():
    expr = "; ".join(["s = x"] + ["s = tanh(s*w + b)"] * 40 + ["s.sum()"])
    r = run_cli("graph", expr, "x=1,2", "w=0.5", "b=0.1", "--max-nodes", "20")
    assert r.code == 0, r.stderr
    assert "more nodes not drawn" in r.stdout
    assert r.stdout.count("Backward0\\n") <= 20


@pytest.mark.parametrize("args,needle", [
    (["graph", "x.sum()", "x=1", "--format", "png"], "--format must be one of dot, mermaid, svg"),
    (["graph", "ones(2).sum()"], "no backward graph"),
    (["graph", "x*y", "x=1"], "no value for 'y'"),
])
def test_bad_input_is_exit_2(args, needle):
    r = run_cli(*args)
    assert r.code == 2 and needle in r.stderr
