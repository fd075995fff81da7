"""Models that ship inside the package: `zoo:<name>` resolves to a directory here."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

WEIGHTS = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    kind: str  # "pipeline", "evaluator", or "student" (an overlay on `base`)
    base: str | None = None  # a student ships only what differs from this pipeline

    @property
    def path(self) -> Path:
        return WEIGHTS / self.name


ZOO: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
    ZOO[entry.name] = entry
    return entry


register(ZooEntry("shapes", "SD3.5-architecture teacher trained on the coloured-shapes set (32 px)", "pipeline"))
register(ZooEntry("shapes-evaluator", "evaluator network for zoo:shapes (domain FID, alignment)", "evaluator"))
register(
    ZooEntry(
        "shapes-flash",
        "4-step SD3.5-Flash student of zoo:shapes (recipes/toy-flash.yaml); transformer stored in fp16",
        "student",
        base="shapes",
    )
)


def cache_root() -> Path:
    return Path(os.environ.get("FEWSTEP_CACHE", Path.home() / ".cache" / "fewstep"))


def _materialize(entry: ZooEntry) -> Path:
    """A full pipeline directory for a student overlay: the base pipeline with the overlay's files.

    Written once per content digest into the cache (atomically); the package keeps only the
    files that differ from the base (the transformer and the student record).
    """
    from fewstep.fsutil import atomic_dir, tree_digest

    base = zoo_path(entry.base or "")
    digest = tree_digest(entry.path)[:12]
    target = cache_root() / "zoo" / f"{entry.name}-{digest}"
    if (target / "model_index.json").exists():
        return target
    with atomic_dir(target) as tmp:
        shutil.copytree(base, tmp, dirs_exist_ok=True)
        for item in entry.path.iterdir():
            dest = tmp / item.name
            if dest.is_dir():
                shutil.rmtree(dest)
            if item.is_dir():
                shutil.copytree(item, dest)
            else:
                shutil.copy2(item, dest)
    return target


def zoo_path(name: str) -> Path:
    """The shipped directory of a zoo entry; errors name the allowed entries and the path."""
    if name not in ZOO:
        raise KeyError(f"unknown zoo model {name!r}; allowed: {', '.join(sorted(ZOO))}")
    path = ZOO[name].path
    marker = {"pipeline": "model_index.json", "student": "fewstep_student.json"}.get(
        ZOO[name].kind, "model.safetensors"
    )
    if not (path / marker).exists():
        raise FileNotFoundError(
            f"zoo:{name} weights are missing: {path / marker} "
            "(reinstall fewstep, or rebuild them with 'fewstep zoo train --install')"
        )
    if ZOO[name].kind == "student":
        return _materialize(ZOO[name])
    return path
