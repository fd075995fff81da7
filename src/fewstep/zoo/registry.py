"""Models that ship inside the package: `zoo:<name>` resolves to a directory here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WEIGHTS = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    kind: str  # "pipeline" or "evaluator"

    @property
    def path(self) -> Path:
        return WEIGHTS / self.name


ZOO: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
    ZOO[entry.name] = entry
    return entry


register(ZooEntry("shapes", "SD3.5-architecture teacher trained on the coloured-shapes set (32 px)", "pipeline"))
register(ZooEntry("shapes-evaluator", "evaluator network for zoo:shapes (domain FID, alignment)", "evaluator"))


def zoo_path(name: str) -> Path:
    """The shipped directory of a zoo entry; errors name the allowed entries and the path."""
    if name not in ZOO:
        raise KeyError(f"unknown zoo model {name!r}; allowed: {', '.join(sorted(ZOO))}")
    path = ZOO[name].path
    marker = "model_index.json" if ZOO[name].kind == "pipeline" else "model.safetensors"
    if not (path / marker).exists():
        raise FileNotFoundError(
            f"zoo:{name} weights are missing: {path / marker} "
            "(reinstall fewstep, or rebuild them with 'fewstep zoo train --install')"
        )
    return path
