"""A torch function of the user's own code that the registry does not know (a custom layer, an op not
yet covered): recorded by ``gradexplain run`` / the API and replayed by torch as recorded.

It has no derivative rule, so the symbolic side has no closed form for it, and only torch and finite
differences speak for its gradient (a note names the step).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .spec import op


@dataclass(frozen=True)
class OpaqueSlot:
    """Where the i-th tensor argument sits in a recorded call's (args, kwargs)."""

    index: int


def _opaque_torch(*tensors: Any, fn: Callable[..., Any], template: Any, index: int | None = None,
                  name: str = "") -> Any:
    """Call a recorded torch function again with new tensors in the slots its tensor arguments held."""
    def fill(item: Any) -> Any:
        if isinstance(item, OpaqueSlot):
            return tensors[item.index]
        if isinstance(item, (list, tuple)) and not isinstance(item, torch.Size):
            return type(item)(fill(i) for i in item)
        return item

    args, kwargs = template
    out = fn(*fill(args), **fill(kwargs))
    return out[index] if index is not None else out


op("opaque", "", "fn, template, index=None, name=''", torch=_opaque_torch, variadic=True, user=False,
   hidden_params=("fn", "template", "index", "name"), doc="a recorded torch function outside the registry")
