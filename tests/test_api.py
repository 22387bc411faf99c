"""The Python API: gx.explain (EXPR and functions), gx.record, and how a Report shows itself."""
from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
import torch

import gradexplain as gx


def test_expr_mode():
    r = gx.explain("2*dot(x,x)", x=[1, 2, 3])
    assert r.grads["x"].symbolic.expr == "4*x"
    assert r.grads["x"].torch.tolist() == [4, 8, 12] and r.agree is True
    d = r.to_dict()
    assert d["schema"] == "gradexplain/1" and d["grads"]["x"]["torch"] == [4, 8, 12]
    assert json.loads(r.to_json()) == d


def test_function_mode_leaves_the_callers_tensors_alone():
    x = torch.tensor([1., 2.], requires_grad=True)
    r = gx.explain(lambda x: (x * x).sum(), x)
    expected = torch.tensor([1., 2.], requires_grad=True)
    (expected * expected).sum().backward()
    assert torch.equal(r.grads["x"].torch, expected.grad) and r.grads["x"].symbolic.expr == "2*x"
    assert x.grad is None  # explaining ran on a copy


def test_function_inputs_named_after_parameters():
    def loss(w, b, *, target):
        return ((w * 3 + b - target) ** 2).mean()

    w, b = torch.tensor([1., 2.], requires_grad=True), torch.tensor(0.5, requires_grad=True)
    r = gx.explain(loss, w, b, target=torch.tensor([0., 1.]))
    assert list(r.grads) == ["w", "b"] and "target" in r.inputs and r.agree is True
    ref_w, ref_b = w.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    loss(ref_w, ref_b, target=torch.tensor([0., 1.])).backward()
    assert torch.allclose(r.grads["w"].torch.double(), ref_w.grad.double())


def test_record_leaves_grad_as_plain_torch_does():
    x = torch.tensor([1., 2., 3.], requires_grad=True)
    plain = torch.tensor([1., 2., 3.], requires_grad=True)
    (plain * plain * 2).sum().backward()
    with gx.record() as rec:
        y = (x * x * 2).sum()
        y.backward()
    assert torch.equal(x.grad, plain.grad)
    (report,) = rec.reports
    assert torch.equal(report.grads["x"].torch, plain.grad) and report.grads["x"].symbolic.expr == "4*x"
    assert report.call.code == "y.backward()"


def test_explaining_keeps_the_callers_torch_state():
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    with torch.no_grad():
        gx.explain("2*dot(x,x)", x=[1, 2, 3])
        gx.explain("dropout(x, 0.5)", x=[1, 2, 3, 4], seed=7)
        gx.explain(lambda x: (x * x).sum(), torch.tensor([1., 2.], requires_grad=True))
        assert not torch.is_grad_enabled()
    assert torch.get_default_dtype() == torch.float32
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.is_grad_enabled()


def test_display_text_rich_and_html():
    r = gx.explain("2*dot(x,x)", x=[1, 2, 3])
    text = str(r)
    assert "4*x" in text and "agree" in text
    from rich.console import Console

    console = Console(record=True, width=100, color_system=None)
    console.print(r)
    assert "4*x" in console.export_text()
    page = r._repr_html_()

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.text = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

        def handle_data(self, data):
            self.text.append(data)

    parser = Collect()
    parser.feed(page)
    assert "table" in parser.tags and "script" not in parser.tags
    body = "".join(parser.text)
    assert "4*x" in body and "[4, 8, 12]" in body and "✓" in body
    assert ("svg" in parser.tags) == bool(__import__("shutil").which("dot"))
    assert repr(r).startswith("<Explanation")


def test_bad_target():
    with pytest.raises(TypeError):
        gx.explain(42)


@pytest.mark.skipif(not (__import__("shutil").which("chromium") or __import__("shutil").which("chromium-browser")),
                    reason="no headless chromium installed")
def test_html_in_a_real_headless_browser(tmp_path):
    """The page as Jupyter shows it: chromium parses it (no network, no scripts) and the DOM keeps every part."""
    import shutil
    import subprocess

    r = gx.explain("b = zeros(1,2); b[0,0] = a[0,0]**2 + a[0,1]; b[0,1] = a[0,1]**3 + a[0,0]; 2*b", a=[[2, 4]],
                   grad_output=[[1, 2]])
    page = tmp_path / "report.html"
    page.write_text(f"<!doctype html><meta charset='utf-8'><body>{r._repr_html_()}</body>", encoding="utf-8")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    dom = done.stdout
    assert "<table>" in dom and "[[12, 194]]" in dom and "Jacobian" in dom
    if shutil.which("dot"):
        assert "<svg" in dom and "CopySlices" in dom
