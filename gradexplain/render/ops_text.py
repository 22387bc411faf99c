"""``gradexplain ops``: the registry as a table (or JSON), one row per user-visible op."""
from __future__ import annotations

import json

from rich import box
from rich.markup import escape
from rich.table import Table

from ..i18n import _
from ..ops import REGISTRY, REQUIRED
from .style import make_console


def print_ops(as_json: bool) -> None:
    rows = []
    for name, spec in sorted(REGISTRY.items()):
        if not spec.user:
            continue
        args = list(spec.tensor_args) if not spec.variadic else ["tensors"]
        params = [n if d is REQUIRED else f"{n}={d!r}" for n, d in spec.params
                  if n not in spec.hidden_params and n != "seed"]
        signature = f"{name}({', '.join(args + params)})"
        rules = {a: spec.shown_rule(a) for a in (args if not spec.variadic else ["t_i"])}
        rows.append({"name": name, "signature": signature, "doc": spec.doc,
                     "rules": {k: v for k, v in rules.items() if v}})
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title=_("gradexplain ops — each rule is the vector-Jacobian product in EXPR (g: incoming gradient)"),
                  box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("op", style="bold")
    table.add_column(_("what it does"))
    table.add_column(_("backward rule per argument"))
    for r in rows:
        rules = "\n".join(f"{k}: {v}" for k, v in r["rules"].items()) or _("(no gradient)")
        table.add_row(escape(r["signature"]), escape(_(r["doc"])), escape(rules))
    make_console().print(table)
