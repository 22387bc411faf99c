"""Write-ups to paste into a homework or a notebook: ``--format markdown`` and ``--format latex``.

Both show the expression, each derivative formula (LaTeX from SymPy's ``latex()``), the values
(torch, SymPy, exact, finite differences) and the verdict.  Markdown uses GitHub's pipe tables and
``$$`` math; LaTeX is a complete ``article`` using only ``amsmath``/``amssymb``/``graphicx`` (wide tables are scaled to the line), ASCII only, so it
compiles with pdflatex as it is.  In Chinese (``--lang zh``) the words are the catalog's and the
document also loads ``ctex`` (:data:`LATEX_PACKAGES`), which typesets CJK text: compile it with
xelatex (or lualatex), as its first line says.

Formulas: maximal elementwise subtrees go through :class:`symbolic.ToSympy` and ``sympy.latex``;
the rest (``W @ x``, ``.T``, ``sum``) is written here with its usual notation; anything else
falls back to ``\\texttt{EXPR}``.
"""
from __future__ import annotations

import re
from typing import Any

import sympy

from .. import sanitize
from ..format import fmt_value
from ..formula import read_formula
from ..i18n import N_, _, current_language
from ..ir import Call, Const, Input, Node
from ..parse import parse_program
from ..printer import to_text
from ..report import Report, exact_text
from ..symbolic import SHAPE_ONLY, ToSympy, is_elementwise


# ============================================================================ formulas as LaTeX


def formula_latex(node: Node) -> str:
    """LaTeX for an IR formula; ``\\texttt`` of its EXPR text when it has no nicer form."""
    try:
        return LatexWriter().latex(node)
    except Exception:  # noqa: BLE001 - a write-up never fails over one formula
        return texttt(to_text(node))


def text_latex(text: str) -> str:
    """LaTeX for EXPR text (a gradient formula from the Report)."""
    try:
        return formula_latex(read_formula(text))
    except Exception:  # noqa: BLE001
        return texttt(text)


class LatexWriter:
    """IR → LaTeX: SymPy for elementwise parts, matrix notation for the rest."""

    def latex(self, node: Node) -> str:
        if isinstance(node, Call) and node.op in SHAPE_ONLY:
            return "\\mathbf{%d}" % SHAPE_ONLY[node.op]
        if isinstance(node, Call) and not is_elementwise(node):
            return self.opaque(node)
        to = ToSympy(None)
        expr = to.convert(node)
        powered = {p.base for p in expr.atoms(sympy.Pow)}
        names = {sym: self.leaf(leaf, sym in powered) for sym, leaf in to.leaves.items()}
        return sympy.latex(expr, symbol_names=names)

    def leaf(self, node: Node, powered: bool) -> str:
        """A tensor SymPy saw as one symbol; ``(W x)^2`` needs the parentheses a symbol never gets."""
        if isinstance(node, Input):
            return sympy.latex(sympy.Symbol(node.name))
        return self.wrap(node) if powered else self.latex(node)

    def wrap(self, node: Node) -> str:
        """An argument inside matrix notation, parenthesised unless it is a single term."""
        text = self.latex(node)
        atomic = isinstance(node, Input) or (isinstance(node, Const) and not str(node.value).startswith("-")) or \
            (isinstance(node, Call) and node.op in ("t", "index", "sum", "mean", "trace", "norm", "stack", "dot"))
        return text if atomic else f"\\left({text}\\right)"

    def opaque(self, node: Call) -> str:
        a = node.args
        if node.op in ("matmul", "mm", "mv") and len(a) == 2:
            return f"{self.wrap(a[0])} {self.wrap(a[1])}"
        if node.op == "t" and len(a) == 1:
            return f"{self.wrap(a[0])}^{{\\top}}"
        if node.op == "dot":
            return f"{self.wrap(a[0])}^{{\\top}} {self.wrap(a[1])}"
        if node.op == "outer":
            return f"{self.wrap(a[0])} {self.wrap(a[1])}^{{\\top}}"
        if node.op == "index" and all(isinstance(k, int) for k in _key(node)):
            return f"{self.wrap(a[0])}_{{{','.join(map(str, _key(node)))}}}"
        if node.op == "stack" and not node.params:
            return self.matrix(node)
        name = {"trace": "tr"}.get(node.op, node.op)
        args = [self.latex(x) for x in a] + [f"\\text{{{tex_escape(k)}}}={tex_escape(_param(v))}"
                                            for k, v in node.params.items()]
        return f"\\operatorname{{{tex_escape(name)}}}\\left({', '.join(args)}\\right)"

    def matrix(self, node: Call) -> str:
        """``stack([...])`` (per-element formulas) as a bmatrix: a column, or rows of a matrix."""
        rows = node.args
        if all(isinstance(r, Call) and r.op == "stack" and not r.params for r in rows):
            if any(isinstance(c, Call) and c.op == "stack" for r in rows for c in r.args):
                raise ValueError("more than two dimensions")
            body = " \\\\ ".join(" & ".join(self.latex(c) for c in r.args) for r in rows)  # type: ignore[union-attr]
        else:
            body = " \\\\ ".join(self.latex(r) for r in rows)
        return f"\\begin{{bmatrix}} {body} \\end{{bmatrix}}"


def _key(node: Call) -> tuple[Any, ...]:
    key = node.params.get("key")
    return key if isinstance(key, tuple) else (key,)


def _param(v: Any) -> str:
    return ", ".join(map(str, v)) if isinstance(v, tuple) else str(v)


def writes_cjk() -> bool:
    """Whether this document is in a language that needs a CJK package (and keeps its characters)."""
    return current_language() in LATEX_PACKAGES


def texttt(text: str) -> str:
    return f"\\texttt{{{tex_escape(text)}}}"


def tex_escape(text: str) -> str:
    """Text for LaTeX text mode (see :func:`gradexplain.sanitize.latex`)."""
    return sanitize.latex(text, cjk=writes_cjk())


def tex_fill(template: str, **latex: str) -> str:
    """A (translated) sentence in LaTeX: its own words escaped; its ``$math$`` and its ``{fields}``
    (LaTeX already) as they are."""
    pieces = re.split(r"(\$[^$]*\$|\{\w+\})", template)
    return "".join(tex_escape(p) if i % 2 == 0 else latex[p[1:-1]] if p.startswith("{") else p
                   for i, p in enumerate(pieces))


def md_escape(text: str) -> str:
    """Text for a GitHub table cell or list item (see :func:`gradexplain.sanitize.markdown`):
    ``x**2`` stays ``x**2`` when rendered, ``<b>`` stays text, newlines are escaped."""
    return sanitize.markdown(text)


# ============================================================================ the pieces of a Report


def statement_lines(report: Report) -> list[str]:
    """One aligned LaTeX line per statement (``z &= 3 y^{2}``), earlier statements referred to by name;
    indexed and in-place assignments as their EXPR text."""
    try:
        program = parse_program(report.expr)
    except Exception:  # noqa: BLE001
        return [f"&{texttt(report.expr)}"]
    named: dict[int, Node] = {}
    lines = []
    for stmt in program.statements:
        if stmt.src.startswith(f"{stmt.name}[") or (isinstance(stmt.node, Call) and stmt.node.inplace):
            lines.append(f"&{texttt(stmt.src)}")
        else:
            lines.append(f"{_sym(stmt.name)} &= {formula_latex(_with_names(stmt.node, named))}")
        named[id(stmt.node)] = Input(stmt.name)
    return lines


def _with_names(node: Node, named: dict[int, Node]) -> Node:
    """``node`` with earlier statements' nodes replaced by their names (``z = 3 y^2``, not ``3 (2x)^2``)."""
    if id(node) in named:
        return named[id(node)]
    if isinstance(node, Call):
        args = tuple(_with_names(a, named) for a in node.args)
        if any(x is not y for x, y in zip(args, node.args)):
            return Call(node.op, args, node.params, node.src, node.inplace)
    return node


def verdict_text(report: Report, failures: list[str] | None = None) -> str:
    """What the verdict says: agreement, then whether every expectation (and, for a problem set,
    the problem's ``output``) holds — a failure is never reported as a success."""
    if report.agree is None:
        agreement = _("torch computed; the symbolic check was unavailable")
    else:
        agreement = _("torch and SymPy agree") if report.agree else _("torch and SymPy disagree")
    failed = list(failures) if failures is not None else [e.message for e in report.expect if not e.passed]
    if failed:
        return _("the answer does not hold: {failures} ({agreement})").format(
            failures=_("; ").join(_(f) for f in failed), agreement=agreement)
    if report.expect:
        return _("{agreement}; every expectation holds").format(agreement=agreement)
    return agreement


def value_columns(report: Report) -> list[tuple[str, list[str]]]:
    """Per input: torch, symbolic value, exact value, finite differences, agreement (plain text cells)."""
    rows = []
    for name, g in report.grads.items():
        sym = g.symbolic
        numeric = g.numeric
        if isinstance(numeric, dict):
            numeric_text = _("directional: {pairs}").format(pairs=", ".join(
                _("{estimate} vs {grad_dot_u}").format(estimate=f"{e:.6g}", grad_dot_u=f"{p:.6g}")
                for e, p in zip(numeric["estimates"], numeric["grad_dot_u"])))
        else:
            numeric_text = fmt_value(numeric)
        if g.numeric_agree is False:
            numeric_text += _(" (disagrees)")
        rows.append((name, [fmt_value(g.torch) if g.torch is not None else "None",
                            fmt_value(sym.value) if sym is not None else "—",
                            exact_text(sym.exact) if sym is not None and sym.exact is not None else "—",
                            numeric_text, {True: _("yes"), False: _("NO"), None: "—"}[g.agree]]))
    return rows


VALUE_HEADERS = [N_("input"), "torch (.grad)", "SymPy", N_("exact"), N_("finite differences"), N_("agree")]
INPUT_HEADERS = [N_("input"), N_("shape"), N_("value"), N_("requires grad")]
CHECK_HEADERS = [N_("problem"), N_("result"), N_("details")]


def input_rows(report: Report) -> list[list[str]]:
    return [[n, str(i.shape), fmt_value(i.value), _("yes") if i.requires_grad else _("no (const)")]
            for n, i in report.inputs.items()]


def output_fields(report: Report, code: Any, value: Any) -> dict[str, str]:
    """The output line's fields (its name made by ``code``, values by ``value``)."""
    fields = {"name": code(report.output.name), "value": value(fmt_value(report.output.value))}
    return fields if report.grad_output is None else {**fields, "v": value(fmt_value(report.grad_output))}


def derivative_lines(report: Report) -> list[tuple[str, str | None, str | None]]:
    """``(input, EXPR text, LaTeX)`` per gradient (or Jacobian when the output is not a scalar)."""
    entries: dict[str, Any] = report.grads or (report.jacobian or {})
    out = []
    for name, g in entries.items():
        text = g.symbolic.expr if g.symbolic is not None else None
        out.append((name, text, text_latex(text) if text is not None else None))
    return out


def lhs(report: Report, name: str) -> str:
    out, var = sympy.latex(sympy.Symbol(report.output.name)), sympy.latex(sympy.Symbol(name))
    if report.grad_output is not None:
        return f"v^{{\\top}} \\frac{{\\partial {out}}}{{\\partial {var}}}"
    return f"\\frac{{\\partial {out}}}{{\\partial {var}}}"


# ============================================================================ Markdown


def markdown(report: Report, level: int = 2, failures: list[str] | None = None, problem: str | None = None) -> str:
    """One Report as a Markdown section (``problem``: its name in a problem set, in the heading)."""
    h = "#" * level
    expr = f"`{report.expr.replace('`', chr(39))}`"
    title = _("Gradient of {expr}").format(expr=expr) if problem is None else \
        _("{problem}: gradient of {expr}").format(problem=md_escape(problem), expr=expr)
    lines = [f"{h} {title}", ""]
    lines += ["$$", "\\begin{aligned}", " \\\\\n".join(statement_lines(report)), "\\end{aligned}", "$$", ""]
    lines += md_table(INPUT_HEADERS, input_rows(report))
    output = _("Output {name} = {value}") if report.grad_output is None else \
        _("Output {name} = {value}, backward with gradient v = {v}")
    lines += ["", output.format(**output_fields(report, lambda name: f"`{name}`", str)), ""]
    derivs = derivative_lines(report)
    if derivs:
        lines += [f"{h}# {_('Derivatives')}", ""]
        for name, text, tex in derivs:
            if text is None:
                lines += ["- " + _("{name}: no symbolic formula").format(name=name), ""]
                continue
            lines += ["$$", f"{lhs(report, name)} = {tex}", "$$", "", f"EXPR: `{text}`", ""]
    if report.grads:
        lines += md_table(VALUE_HEADERS, [[n, *cells] for n, cells in value_columns(report)]) + [""]
    lines += [f"- {_mark_md(e)} {md_escape(_(e.message))}" for e in report.expect]
    lines += ["- " + _("note: {note}").format(note=md_escape(_(n))) for n in report.notes if "finite differences" in n]
    lines += ["", f"**{_('Verdict:')}** {_verdict_mark(report, failures)} {md_escape(verdict_text(report, failures))}"]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip() + "\n"


def _sym(name: str) -> str:
    return sympy.latex(sympy.Symbol(name))


def md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(md_escape(_(h)) for h in headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return out


def _mark_md(e: Any) -> str:
    return "✗" if not e.passed else ("?" if e.outcome == "unproved" else "✓")


def _verdict_mark(report: Report, failures: list[str] | None = None) -> str:
    failed = report.agree is False or any(not e.passed for e in report.expect) or bool(failures)
    return "✗" if failed else ("✓" if report.agree else "?")


# ============================================================================ LaTeX


PREAMBLE = ("\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage{amssymb}\n"
            "\\usepackage{graphicx}\n\\usepackage[margin=2cm]{geometry}\n\\begin{document}\n")
ENDING = "\\end{document}\n"
# a language whose text pdflatex cannot set: (the first line that says how to compile, its package)
LATEX_PACKAGES = {"zh": (N_("% Chinese text (ctex): compile with xelatex or lualatex, e.g. xelatex gradient.tex"),
                         "\\usepackage{ctex}\n")}


def preamble() -> str:
    """The document's start; in a language of :data:`LATEX_PACKAGES`, its comment and CJK package too."""
    if not writes_cjk():
        return PREAMBLE
    comment, package = LATEX_PACKAGES[current_language()]
    head, begin = PREAMBLE.split("\\begin{document}")
    return _(comment) + "\n" + head + package + "\\begin{document}" + begin


def latex_body(report: Report, heading: str = "\\section*", failures: list[str] | None = None,
               problem: str | None = None) -> str:
    """One Report as a LaTeX section (``problem``: its name in a problem set, in the heading)."""
    title = tex_fill(_("Gradient of {expr}"), expr=texttt(report.expr)) if problem is None else \
        tex_fill(_("{problem}: gradient of {expr}"), problem=tex_escape(problem), expr=texttt(report.expr))
    lines = [f"{heading}{{{title}}}", "", "\\begin{align*}"]
    lines.append(" \\\\\n".join(statement_lines(report)))
    lines += ["\\end{align*}", ""]
    lines += tex_table(INPUT_HEADERS, input_rows(report))
    output = _("Output {name} $= $ {value}.") if report.grad_output is None else \
        _("Output {name} $= $ {value}, backward with gradient $v = $ {v}.")
    lines += ["", tex_fill(output, **output_fields(report, texttt, tex_escape)), ""]
    derivs = [(n, tex) for n, text, tex in derivative_lines(report) if tex is not None]
    if derivs:
        lines += ["\\begin{align*}", " \\\\\n".join(f"{lhs(report, n)} &= {tex}" for n, tex in derivs),
                  "\\end{align*}", ""]
    if report.grads:
        lines += tex_table(VALUE_HEADERS, [[n, *cells] for n, cells in value_columns(report)]) + [""]
    if report.expect:
        lines += ["\\begin{itemize}"] + [f"\\item {tex_escape(_mark_md(e))} {tex_escape(_(e.message))}"
                                          for e in report.expect] + ["\\end{itemize}", ""]
    verdict = tex_fill(_("{sentence}."), sentence=tex_escape(verdict_text(report, failures)))
    lines.append(f"\\textbf{{{tex_escape(_('Verdict:'))}}} {tex_escape(_verdict_mark(report, failures))} {verdict}")
    return "\n".join(lines) + "\n"


def tex_table(headers: list[str], rows: list[list[str]], spec: str | None = None) -> list[str]:
    spec = spec or "l" * len(headers)
    # wider than the line: scaled down to fit (a narrow table keeps its size)
    out = ["\\begin{center}", "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%",
           f"\\begin{{tabular}}{{{spec}}}", "\\hline",
           " & ".join(f"\\textbf{{{tex_escape(_(h))}}}" for h in headers) + " \\\\", "\\hline"]
    out += [" & ".join(tex_escape(c) for c in row) + " \\\\" for row in rows]
    return out + ["\\hline", "\\end{tabular}}", "\\end{center}"]


# ============================================================================ entry points


def render(report: Report, fmt: str) -> str:
    """An eval Report as a Markdown section or a complete LaTeX document."""
    if fmt == "markdown":
        return markdown(report)
    return preamble() + latex_body(report) + ENDING


def render_check(result: Any, fmt: str) -> str:
    """A check result: a summary table, then each problem that ran, as for eval."""
    rows = [[p.name, _("pass") if p.passed else _("FAIL"), _("; ").join(_(m) for m in p.failures or p.warnings) or "—"]
            for p in result.problems]
    title = _("Problem set {file}: {passed} passed, {failed} failed").format(
        file=result.file, passed=result.passed, failed=result.failed)
    reports: list[Any] = [p for p in result.problems if p.result is not None]
    if fmt == "markdown":
        parts = [f"## {md_escape(title)}", ""] + md_table(CHECK_HEADERS, rows) + [""]
        parts += [markdown(p.result, level=3, failures=p.failures, problem=p.name) for p in reports]
        return "\n".join(parts).rstrip() + "\n"
    body = [f"\\section*{{{tex_escape(title)}}}", ""] + tex_table(CHECK_HEADERS, rows, "llp{11cm}") + [""]
    body += [latex_body(p.result, heading="\\subsection*", failures=p.failures, problem=p.name) for p in reports]
    return preamble() + "\n".join(body) + ENDING

