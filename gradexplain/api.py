"""The Python API, for notebooks and tests::

    import gradexplain as gx
    r = gx.explain("2*dot(x,x)", x=[1, 2, 3])     # EXPR mode: the Report `eval` gives
    r = gx.explain(f, x, w)                        # f(x, w) recorded; inputs named after f's parameters
    with gx.record() as rec:                       # the user's own code, as `gradexplain run` records it
        loss = model(x).sum(); loss.backward()
    rec.reports                                    # one Report per backward()
    gx.explain("2*dot(x,x)", x=[1, 2, 3], lang="zh")  # shown in Chinese (print, rich, HTML); JSON stays English
    gx.set_language("zh")                          # or: every explanation shown after this, in Chinese

Every answer is an :class:`Explanation`: the plain :class:`~gradexplain.report.Report` data plus the
ways to show it (text, rich, HTML, JSON), which live here because the report layer knows no
renderer.  An explanation is shown in its ``lang`` (``explain(..., lang="zh")``, ``record(lang=...)``,
or set ``r.lang`` later), else in the current language (:func:`set_language`, or the block of
``with language("zh"):``), which is English unless chosen; ``to_dict``/``to_json`` are the same in
every language.  Explaining leaves the caller's torch state as it was: default dtype, the global random
generator, grad mode, and the ``.grad`` of the caller's tensors (``explain(f, ...)`` runs ``f`` on
copies; ``record()`` only watches).
"""
from __future__ import annotations

import inspect
import io
import json
from dataclasses import dataclass, fields
from typing import Any, Callable, ClassVar, Iterator

import torch
from rich.console import Console

from .recorded import explain_frozen, explain_record, rename, summarise, torch_state_kept
from .record import Recorder, Tape, freeze, scope_names, user_frame
from .report import Report
from .session import DEFAULT_MAX_EXPLAINED, Session
from .explain import EvalOptions
from .explain import explain as explain_eval
from .i18n import current_language, language, resolve_language, set_language  # noqa: F401 - set_language: gx.set_language
from .render import html as render_html
from .render import json as render_json
from .render.run_text import full_renderables
from .render.text import report_renderables


@dataclass(repr=False, eq=False)
class Explanation(Report):
    """A Report that shows itself: ``print(r)``, rich in a terminal, HTML in Jupyter, ``to_dict()``;
    in ``lang`` (``"en"``, ``"zh"``) when set, else in the current language."""

    lang: ClassVar[str | None] = None  # set per instance; not a Report field, so never part of the JSON

    @classmethod
    def of(cls, report: Report, lang: str | None = None) -> "Explanation":
        shown = cls(**{f.name: getattr(report, f.name) for f in fields(Report)})
        shown.lang = _chosen(lang)
        return shown

    def _language(self) -> Any:
        return language(self.lang or current_language())

    def to_dict(self) -> dict[str, Any]:
        """The ``gradexplain/1`` document (plain Python: lists, numbers, strings)."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        return render_json.render(self)

    def _renderables(self) -> list[Any]:
        """Built whole inside the language block: each renderable holds its words already."""
        with self._language():
            if self.call is not None:
                return full_renderables(self, brief=False)
            return report_renderables(self)

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        yield from self._renderables()

    def __str__(self) -> str:
        buffer = io.StringIO()
        console = Console(file=buffer, width=100, color_system=None, highlight=False, soft_wrap=False)
        for item in self._renderables():
            console.print(item)
        return buffer.getvalue()

    def _repr_html_(self) -> str:
        with self._language():
            return render_html.render(self)

    def __repr__(self) -> str:
        return f"<Explanation {self.expr!r}: grads {', '.join(self.grads) or '—'}, agree={self.agree}>"


def _chosen(lang: str | None) -> str | None:
    """``lang`` validated (``"zh"``, ``"zh_CN.UTF-8"`` → ``"zh"``); None: the current language when shown."""
    return None if lang is None else resolve_language(lang, {})


def _value_text(v: Any) -> str:
    """A Python value as the VALUE text eval reads (``[1, 2, 3]``, ``0.5``)."""
    if isinstance(v, str):
        return v
    if isinstance(v, torch.Tensor):
        return repr(v.detach().double().tolist())
    if isinstance(v, (list, tuple)):
        return repr([_plain(i) for i in v])
    return repr(v)


def _plain(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.detach().double().tolist()
    if isinstance(v, (list, tuple)):
        return [_plain(i) for i in v]
    return v


def explain(target: str | Callable[..., Any], /, *args: Any, grad_output: Any = None, const: Any = (),
            dtype: str = "float64", seed: int = 0, lang: str | None = None, **inputs: Any) -> Explanation:
    """Explain an EXPR (``explain("2*dot(x,x)", x=[1, 2, 3])``) or a function of tensors
    (``explain(f, x, w)``: ``f`` is called on copies of its arguments under recording).

    ``lang`` (``"en"`` or ``"zh"``): the language the explanation is shown in; None: the current one."""
    chosen = _chosen(lang)
    if isinstance(target, str):
        if args:
            raise TypeError("an EXPR takes its inputs by name: gx.explain('2*dot(x,x)', x=[1, 2, 3])")
        opts = EvalOptions(expr=target, values=[f"{k}={_value_text(v)}" for k, v in inputs.items()],
                           const={const} if isinstance(const, str) else set(const),
                           grad_output=_value_text(grad_output) if grad_output is not None else None,
                           dtype=dtype, seed=seed)
        with torch_state_kept():
            return Explanation.of(explain_eval(opts), chosen)
    if callable(target):
        return _explain_function(target, args, inputs, grad_output, chosen)
    raise TypeError(f"explain() takes an EXPR string or a function, not {type(target).__name__}")


def _copy(value: Any) -> Any:
    """A fresh leaf for each argument, so the caller's own tensors (and their .grad) stay untouched."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (list, tuple, int, float)) and not isinstance(value, bool):
        return torch.tensor(value, dtype=torch.float64, requires_grad=True)
    return value


def _explain_function(f: Callable[..., Any], args: tuple, kwargs: dict[str, Any], grad_output: Any,
                      lang: str | None) -> Explanation:
    bound = inspect.signature(f).bind(*args, **kwargs)
    copies = {name: _copy(v) for name, v in bound.arguments.items()}
    bound.arguments.update(copies)
    tape = Tape()

    def passthrough(kind: str, func: Any, a: tuple, kw: dict[str, Any], frame: Any) -> Any:
        return func(*a, **kw)

    with torch_state_kept():
        with Recorder(tape, passthrough):
            out = f(*bound.args, **bound.kwargs)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"{getattr(f, '__name__', 'f')} returned {type(out).__name__}, not a tensor")
        names = scope_names(user_frame())
        names.update({id(t): n for n, t in copies.items() if isinstance(t, torch.Tensor)})
        frozen = freeze([tape.node_of(out)], names, output_name="out")
        gout = torch.as_tensor(grad_output, dtype=out.dtype) if grad_output is not None else None
        report = explain_frozen(frozen, gout, list(frozen.tensors))
        rename(report, frozen.display)
    return Explanation.of(report, lang)


class Recording:
    """``with gx.record() as rec:`` — the code inside runs as it would, each backward() is recorded
    (its reports shown in ``lang`` when given)."""

    def __init__(self, explain_all: bool = False, max_explained: int = DEFAULT_MAX_EXPLAINED,
                 lang: str | None = None):
        self.session = Session(explain_all=explain_all, max_explained=max_explained)
        self.lang = _chosen(lang)
        self._reports: list[Explanation] | None = None

    def __enter__(self) -> "Recording":
        self.session.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.session.__exit__(*exc)

    @property
    def reports(self) -> list[Explanation]:
        """One Explanation per backward() explained in full (built once, on first use)."""
        if self._reports is None:
            self._reports = [Explanation.of(explain_record(r), self.lang) for r in self.session.records
                             if r.frozen is not None]
        return self._reports

    @property
    def summaries(self) -> list[Any]:
        """One line's worth per repeated backward() (a training loop after its first call)."""
        return [summarise(r) for r in self.session.records if r.frozen is None]


def record(explain_all: bool = False, max_explained: int = DEFAULT_MAX_EXPLAINED, lang: str | None = None) -> Recording:
    return Recording(explain_all=explain_all, max_explained=max_explained, lang=lang)
