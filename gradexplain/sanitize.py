"""One sanitizer for user text at the render boundary, for every output format.

Text that came from the user — a problem's name, an input's VALUE text, a claim quoted in a
failure, an error message quoting any of them — reaches terminals, Markdown, LaTeX, DOT,
Mermaid and HTML.  Raw, it can forge output: an ESC sequence or a newline in a ``check`` problem's
name prints a fake "✓ fake-pass" line; ``<script>`` in a name is live HTML in rendered Markdown.
Every renderer escapes user text through the functions here:

* :func:`visible` — control characters (C0/C1, ESC, bidi overrides, newlines: everything
  ``str.isprintable`` rejects) written as Python escapes (``\\x1b``, ``\\n``), so user text is
  always one line and can never move the cursor or colour the terminal;
* :func:`markdown`, :func:`html`, :func:`latex`, :func:`dot`, :func:`mermaid` — :func:`visible`
  first, then the format's special characters.

Structure the renderer itself adds (its own newlines between the lines of a box) is not user
text: the format functions take ``lines`` and join them the format's way.
"""
from __future__ import annotations

import html as _html
import re
from typing import Iterable

MD_SPECIAL = re.compile(r"[\\|*_`~]")
MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
TEX_SPECIAL = {"\\": "\\textbackslash{}", "{": "\\{", "}": "\\}", "$": "\\$", "&": "\\&", "#": "\\#", "%": "\\%",
               "_": "\\_", "^": "\\^{}", "~": "\\~{}", "<": "\\textless{}", ">": "\\textgreater{}", "|": "\\textbar{}"}
UNICODE_TEX = {"—": "---", "–": "--", "…": "\\ldots{}", "✓": "$\\checkmark$", "✗": "$\\times$", "·": "$\\cdot$",
               "ᵀ": "$^{\\top}$", "−": "-", "≤": "$\\le$", "≥": "$\\ge$", "←": "$\\leftarrow$", "→": "$\\to$",
               "⟶": "$\\to$", "∂": "$\\partial$", "∅": "$\\emptyset$", "±": "$\\pm$", "×": "$\\times$"}
MERMAID_CODES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "|": "#124;", "`": "#96;", "&": "#amp;"}


def visible(text: object) -> str:
    """One printable line: each character ``str.isprintable`` rejects as its Python escape."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


def markdown(text: object) -> str:
    """A Markdown table cell or list item: Markdown specials backslash-escaped, HTML's as entities
    (``<b>`` stays text in every Markdown renderer)."""
    escaped = MD_SPECIAL.sub(r"\\\g<0>", visible(text))
    return "".join(MD_ENTITIES.get(c, c) for c in escaped)


def html(text: object) -> str:
    return _html.escape(visible(text), quote=True)


def latex(text: object, cjk: bool = False) -> str:
    """LaTeX text mode: specials escaped, common symbols as macros, other non-ASCII as ``?``; with
    ``cjk`` (a document typeset with ctex or xeCJK) Chinese, Japanese and Korean text is kept."""
    out = []
    for ch in visible(text):
        if ch in TEX_SPECIAL:
            out.append(TEX_SPECIAL[ch])
        elif ch in UNICODE_TEX:
            out.append(UNICODE_TEX[ch])
        else:
            out.append(ch if ord(ch) < 128 or (cjk and is_cjk(ch)) else "?")
    return "".join(out)


CJK_RANGES = ((0x3000, 0x303F), (0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF),
              (0xF900, 0xFAFF), (0xFF00, 0xFFEF))  # punctuation, kana, ideographs, hangul, full-width forms


def is_cjk(ch: str) -> bool:
    return any(lo <= ord(ch) <= hi for lo, hi in CJK_RANGES)


def dot(lines: Iterable[str] | str) -> str:
    """A DOT double-quoted string of the given lines (joined by DOT's ``\\n``)."""
    parts = [lines] if isinstance(lines, str) else list(lines)
    body = [visible(p).replace("\\", "\\\\").replace('"', '\\"') for p in parts]
    return '"' + "\\n".join(body or [""]) + '"'


def mermaid(lines: Iterable[str] | str) -> str:
    """Mermaid label text of the given lines: entity codes for its specials, lines joined by ``<br/>``."""
    parts = [lines] if isinstance(lines, str) else list(lines)
    return "<br/>".join("".join(MERMAID_CODES.get(c, c) for c in visible(p)) for p in parts or [""])
