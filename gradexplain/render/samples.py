"""``gradexplain samples``: the list of shipped samples, one per line."""
from __future__ import annotations

from ..i18n import _
from ..sample_files import Sample


def samples_text(samples: list[Sample]) -> str:
    width = max((len(s.name) for s in samples), default=0)
    lines = [f"{s.name:<{width}}  {s.summary}".rstrip() for s in samples]
    hint = "\n" + _("Print one with `gradexplain samples NAME`; the folder is `gradexplain samples --path` "
                    "(e.g. gradexplain check \"$(gradexplain samples --path)/seeds.toml\").")
    return "\n".join(lines) + "\n" + hint + "\n"
