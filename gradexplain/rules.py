"""One op's derivative rule for one argument, instantiated over the nodes of a call.

Shared by reverse mode (:mod:`gradexplain.symbolic`) and by the graph linking
(:mod:`gradexplain.graph_link`, which shows ``mul``'s ``a: g*b`` as ``g*x`` on torch's graph), so
neither has to reach into the other; the rules themselves are the registry's EXPR text.
"""
from __future__ import annotations

import functools
from typing import Any

from .ir import Node, substitute
from .ops import REGISTRY, RuleContext
from .parse import parse_rule


def rule_node(spec_name: str, arg: str, index: int, ctx: RuleContext) -> Node | None:
    """The rule for one argument of one op, instantiated over ``ctx.nodes``."""
    spec = REGISTRY[spec_name]
    if spec.variadic_rule is not None:
        text: Any = spec.variadic_rule(index)(ctx)
    elif arg in spec.rules:
        text = spec.rule_text(arg, ctx)
    else:
        return None
    if text is None:
        return None
    if isinstance(text, Node):
        return text
    return substitute(_template(text), ctx.nodes)


@functools.lru_cache(maxsize=512)
def _template(text: str) -> Node:
    return parse_rule(text)
