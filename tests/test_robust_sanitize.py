"""Text injection (issue 19): user text never reaches any output format raw."""
from __future__ import annotations

import pytest

from gradexplain import sanitize
from tests.conftest import run_cli

FORGED = 'bad\\u001b[2K\\r\\u2713 fake-pass\\n\\u2713 also-fake<script>alert(1)</script>'
TOML = f'''[[problem]]
name = "{FORGED}"
expr = "x*2"
inputs = {{ x = "1\\u001b[31m" }}

[[problem]]
name = "ok"
expr = "x*2"
inputs = {{ x = "1" }}
'''


@pytest.fixture()
def forged(tmp_path):
    f = tmp_path / "forged.toml"
    f.write_text(TOML)
    return str(f)


def _no_raw_control(text: str) -> None:
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text


def test_check_text_escapes_names_and_values(forged):
    r = run_cli("check", forged)
    assert r.code == 1
    _no_raw_control(r.stdout)
    lines = r.stdout.splitlines()
    assert not any(line.lstrip().startswith("✓ also-fake") or line.startswith("✓ fake-pass") for line in lines)
    assert sum(line.startswith("✓") for line in lines) == 1  # only the real "ok"


def test_check_markdown_escapes_html(forged):
    r = run_cli("check", forged, "--format", "markdown")
    _no_raw_control(r.stdout)
    assert "<script>" not in r.stdout and "&lt;script&gt;" in r.stdout


def test_check_latex_escapes(forged):
    r = run_cli("check", forged, "--format", "latex")
    _no_raw_control(r.stdout)
    assert "<script>" not in r.stdout


def test_check_json_keeps_the_exact_name(forged):
    import json

    doc = json.loads(run_cli("check", forged, "--json").stdout)  # JSON escapes by itself, and keeps it exact
    assert doc["problems"][0]["name"].startswith("bad\x1b[2K")


@pytest.mark.parametrize("fn", [sanitize.visible, sanitize.markdown, sanitize.html, sanitize.latex,
                                sanitize.dot, sanitize.mermaid])
def test_every_format_neutralises_control_characters(fn):
    out = fn("a\x1b[31m\nb\u202ec\x00")
    assert all(c.isprintable() for c in out), repr(out)
    assert "\n" not in out


def test_format_specials():
    assert sanitize.markdown("<b>|x*") == "&lt;b&gt;\\|x\\*"
    assert sanitize.html('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;"
    assert sanitize.latex("50% $x_1$") == "50\\% \\$x\\_1\\$"
    assert sanitize.dot(["a\"b", "c"]) == '"a\\"b\\nc"'
    assert sanitize.mermaid(["<x>", "y"]) == "#lt;x#gt;<br/>y"
