"""The sample problem sets and programs shipped inside the package (``gradexplain samples``).

In a clone, ``gradexplain/samples`` is a link to the repository's ``samples/`` folder; an
installed wheel carries the files themselves.  Either way they are found next to this module,
so ``gradexplain check "$(gradexplain samples --path)/seeds.toml"`` works after any install.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import GradexplainError
from .i18n import Msg

SAMPLES = Path(__file__).resolve().parent / "samples"
KINDS = (".toml", ".sh", ".py")


@dataclass(frozen=True)
class Sample:
    name: str  # path inside the samples folder: "seeds.toml", "scripts/seed003_vjp.py"
    summary: str  # the file's first comment line

    @property
    def path(self) -> Path:
        return SAMPLES / self.name


def summary(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#!"):
            continue
        return line.lstrip("#").strip() if line.startswith("#") else ""
    return ""


def all_samples() -> list[Sample]:
    if not SAMPLES.is_dir():
        raise GradexplainError(Msg("the samples folder is missing from this installation ({folder})",
                                   folder=str(SAMPLES)))
    files = sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.suffix in KINDS)
    return [Sample(p.relative_to(SAMPLES).as_posix(), summary(p)) for p in files]


def find_sample(name: str) -> Sample:
    """A sample by its name as listed, or without its folder or extension when that is unique."""
    samples = all_samples()
    for match in (lambda s: s.name == name, lambda s: Path(s.name).name == name,
                  lambda s: Path(s.name).stem == name):
        found = [s for s in samples if match(s)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise GradexplainError(Msg("sample {name!r} is ambiguous: {found}", name=name,
                                       found=", ".join(s.name for s in found)))
    raise GradexplainError(Msg("no sample named {name!r} (`gradexplain samples` lists them)", name=name))
