"""The pipeline's sentences (notes, reasons, --expect verdicts and diagnoses, check failures, run notes)
keep their English text (and JSON) and can be said in Chinese: each is a Msg whose every template,
nested ones included, has a translation."""
from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import ROOT, SAMPLES, run_cli
from gradexplain.check import run_check
from gradexplain.explain import explain
from gradexplain.i18n import Msg, translate
from gradexplain.limits import DEFAULT
from gradexplain.options import EvalOptions
from gradexplain.report import Report
from gradexplain.run import outcomes, run_script
from test_i18n import build_script

BUILD = build_script()
ZH = BUILD.translations("zh")
PIPELINE = ("misconceptions", "torch_report", "explain", "symbolic", "numeric", "hessian", "train", "autograd",
            "graph_link", "expect", "check", "record.py", "recorded", "session", "run.py", "phrases", "ops/")


def untranslated(text: str) -> list[str]:
    """Templates in ``text`` (a Msg and the Msg it is built from) that the Chinese catalog lacks."""
    if not isinstance(text, Msg):
        return []
    found = [] if text.template in ZH else [text.template]
    for value in text.args.values():
        found += untranslated(value)
    return found


def says_in_chinese(text: str, english: str) -> str:
    """``text`` is the English ``english`` (byte for byte), kept as a Msg, fully translated."""
    assert text == english
    assert isinstance(text, Msg), f"the template was lost: {text!r}"
    assert untranslated(text) == []
    zh = translate(text, "zh")
    assert zh != english and any("\u4e00" <= c <= "\u9fff" for c in zh), zh
    return zh


def eval_report(expr: str, *values: str, **options) -> Report:
    return explain(EvalOptions(expr=expr, values=list(values), **options))


def test_expect_diagnoses_factor_sign_transpose_and_shape():
    r = eval_report("2*dot(x,x)", "x=1,2,3", expect=["x=2*x", "x=-4*x", "x=4,8"], numeric=False)
    factor, sign, shape = (e.message for e in r.expect)
    zh = says_in_chinese(factor, "x: expected 2*x, torch and sympy give [4,8,12] (differs at [0] 2 instead of 4 (off by "
                         "-2); [1] 4 instead of 8 (off by -4); [2] 6 instead of 12 (off by -6)); the right formula is "
                         "4*x; claim − derivative = -2*x; a factor of 2 off: the claim is 1/2 × the gradient")
    assert "4*x" in zh and "1/2" in zh and "梯度" in zh  # formulas and values kept as they are
    says_in_chinese(r.expect[0].diagnosis, "a factor of 2 off: the claim is 1/2 × the gradient")
    says_in_chinese(r.expect[1].diagnosis, "sign: the claim is the negative of the gradient")
    assert sign.endswith("sign: the claim is the negative of the gradient")
    says_in_chinese(shape, "x: expected [4,8]: shape [2], but the gradient has shape [3]; the right answer is 4*x")
    t = eval_report("(W*W).sum()", "W=[[1,2],[3,4]]", expect=["W=2*W.T"], numeric=False).expect[0]
    assert t.outcome == "transposed"
    says_in_chinese(t.diagnosis, "transposed: the claim is the transpose of the gradient (a gradient has the shape of "
                                 "its input, [2, 2] here)")
    says_in_chinese(t.message, t.message)


def test_misconception_notes():
    r = eval_report("relu(x).sum() + (tensor([1,2]) * x).sum() + (zeros(2) + x).sum()", "x=0,1", "y=1", numeric=False)
    unused, integers, built, integer_tensor, kink = r.notes
    zh = says_in_chinese(integers, "x is written with integers but used as float64 (every NAME=VALUE input is floating, "
                                   "so that it can require grad: torch.tensor([1, 2, 3]) would be int64, and integer "
                                   "tensors cannot require grad)")
    assert "requires_grad" in zh and "torch.tensor([1, 2, 3])" in zh  # PyTorch's terms stay
    says_in_chinese(unused, "y given but not used by the expression")
    assert built.startswith("zeros(2): built inside EXPR") and integer_tensor.startswith("tensor([1,2]): an integer")
    says_in_chinese(built, built)
    says_in_chinese(integer_tensor, integer_tensor)
    says_in_chinese(kink, "relu(x): relu is not differentiable at 0, and x[0] is exactly 0 — PyTorch uses the "
                          "subgradient 0 there; SymPy's derivative Heaviside(x) is 1/2 at 0 (gradexplain writes "
                          "heaviside(x, 0) to match PyTorch)")
    const = eval_report("x @ A @ x", "x=1,2", "A=[[1,2],[3,4]]", const={"A"}, numeric=False).notes[-1]
    says_in_chinese(const, "A: --const, so requires_grad=False — PyTorch computes no gradient for it and .grad stays "
                           "None; in the formulas it stays a symbol with a fixed value")


def test_reasons_symbolic_timeout_jacobian_and_hessian():
    limits = replace(DEFAULT, symbolic_timeout=0.0001)
    r = eval_report("sum(softmax(x, dim=0) * log(x))", "x=1,2,3", numeric=False, limits=limits)
    says_in_chinese(r.grads["x"].reason, "symbolic: skipped — symbolic work exceeded 0.0001 s (raise it with "
                                         "--symbolic-timeout)")
    j = eval_report("x*x", "x=1,2", numeric=False)
    says_in_chinese(j.notes[-1], j.notes[-1])
    assert j.notes[-1].startswith("the output has shape [2], not a scalar: backward() needs a `gradient` argument")
    h = eval_report("(x**3).sum()", "x=1,-1", hessian=True, numeric=False)
    says_in_chinese(h.hessian_info.definiteness, "indefinite: a saddle point shape here (convex along some directions, "
                                                 "concave along others)")


def test_check_failures(tmp_path):
    problems = tmp_path / "p.toml"
    problems.write_text('[[problem]]\nname = "half"\nexpr = "2*dot(x,x)"\ninputs = { x = "1,2,3" }\n'
                        'output = "27"\nexpect = { x = "2*x" }\n'
                        '[[problem]]\nname = "broken"\nexpr = "x +"\ninputs = { x = "1" }\n')
    half, broken = run_check(str(problems)).problems
    wrong, output = half.failures
    assert wrong.endswith("a factor of 2 off: the claim is 1/2 × the gradient")
    says_in_chinese(wrong, wrong)
    says_in_chinese(output, "output: expected 27, got 28 (differs at 27 instead of 28 (off by -1))")
    assert broken.failures[0].startswith("error: ") and isinstance(broken.failures[0], Msg)
    assert broken.failures[0].template == "error: {message}" and "error: {message}" in ZH


def test_run_notes_and_grad_changes():
    run = run_script(str(ROOT / "tests" / "data" / "loop_no_zero_grad.py"), [], explain_all=True, stdout_to_stderr=True)
    second = [o for o in outcomes(run.records) if isinstance(o, Report)][1]
    (piled,) = [n for n in second.notes if "already held" in n]
    zh = says_in_chinese(piled, "w.grad already held [-36, -48] before this backward(): PyTorch adds each backward()'s "
                                "gradient to .grad, so it now holds the sum [-54, -72] — call optimizer.zero_grad() "
                                "(or set .grad = None) before each backward() unless you mean to accumulate")
    assert "optimizer.zero_grad()" in zh and "[-54, -72]" in zh
    run = run_script(str(SAMPLES / "scripts" / "seed001_dot_then_sum.py"), [], stdout_to_stderr=True)
    reports = [o for o in outcomes(run.records) if isinstance(o, Report)]
    (zeroed,) = [n for r in reports for n in r.notes if n.startswith("before this backward()")]
    says_in_chinese(zeroed, zeroed)
    assert zeroed.endswith(", so .grad held zeros and this call's gradient is all it holds now")
    (event,) = [e for r in reports for e in r.grad_changes]
    assert isinstance(event, Msg) and untranslated(event) == []


@pytest.mark.parametrize("args", [
    ("eval", "2*dot(x,x)", "x=1,2,3", "--expect", "x=2*x", "--no-numeric"),
    ("eval", "relu(x).sum()", "x=0,1", "--hessian"),
    ("check", str(SAMPLES / "seeds.toml")),
])
def test_json_is_the_same_in_every_language(args):
    english, chinese = run_cli(*args, "--json", "--lang", "en"), run_cli(*args, "--json", "--lang", "zh")
    assert english.stdout == chinese.stdout and english.code == chinese.code


def test_every_pipeline_message_is_translated():
    mine = {m: where for m, where in BUILD.source_messages().items()
            if any(f"gradexplain/{part}" in w for w in where for part in PIPELINE)}
    assert "a factor of {factor} off: the claim is {ratio} × the gradient" in mine
    assert [m for m in mine if m not in ZH] == []
    assert [p for p in BUILD.problems(mine) if "notes.po" in p or "differ" in p] == []
