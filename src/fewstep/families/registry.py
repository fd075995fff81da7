"""Families are found through the `fewstep.families` entry-point group (the toy zoo included)
plus in-process registrations; the generic SD3 family answers for every other pipeline."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path

from fewstep.families.base import DataSource, Family
from fewstep.families.sd3 import SD3Family

GROUP = "fewstep.families"
_EXTRA: dict[str, type[Family]] = {}


def register_family(cls: type[Family]) -> type[Family]:
    """Register a family class in this process (entry points are the durable way)."""
    _EXTRA[cls.name] = cls
    _families.cache_clear()
    return cls


@lru_cache(maxsize=1)
def _families() -> tuple[Family, ...]:
    found: dict[str, Family] = {}
    for ep in entry_points(group=GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Family)):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a fewstep.families.Family subclass")
        found[ep.name] = cls()
    found.update({name: cls() for name, cls in _EXTRA.items()})
    return tuple(found.values())


def families() -> tuple[Family, ...]:
    """The captioned family first (a pipeline carrying a caption evaluator was given one on
    purpose), then every registered family, the generic SD3 family last."""
    from fewstep.families.captioned.family import CaptionedFamily

    return (CaptionedFamily(), *_families(), SD3Family())


def family_for(model_dir: str | Path) -> Family:
    """The family of a pipeline directory (the generic SD3 family when no other claims it)."""
    return next(f for f in families() if f.matches(Path(model_dir)))


def carry_family_files(source_dir: str | Path, target_dir: str | Path) -> list[str]:
    """Copy what the source pipeline's family needs its derived pipelines to carry (a caption
    evaluator, say) into `target_dir`; returns the relative paths copied."""
    import shutil

    source_dir, target_dir = Path(source_dir), Path(target_dir)
    copied = []
    for rel in family_for(source_dir).carried(source_dir):
        src, dst = source_dir / rel, target_dir / rel
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        else:
            continue
        copied.append(rel)
    return copied


def family_named(name: str) -> Family:
    for f in families():
        if f.name == name:
            return f
    raise ValueError(f"unknown model family {name!r}; installed: {', '.join(f.name for f in families())}")


def data_family(spec: str) -> Family | None:
    """The family that provides the `--data` source `spec` (None if none does)."""
    name = spec.partition(":")[0]
    return next((f for f in families() if name in f.data_sources), None)


def resolve_prefixed(text: str) -> Path | None:
    """`<prefix>:<name>` resolved by the family that owns the prefix; None if no family does."""
    prefix, sep, name = text.partition(":")
    if not sep:
        return None
    owner = next((f for f in families() if f.model_prefix == prefix), None)
    return None if owner is None else owner.resolve(name)


def open_source(spec: str, resolution: int = 32) -> DataSource:
    """Parse a `--data` spec (`shapes`, `imagefolder:PATH`, ...) into a captioned data source."""
    name, _, arg = spec.partition(":")
    owner = data_family(spec)
    if owner is None:
        allowed = [n + (":PATH" if n == "imagefolder" else "") for f in families() for n in f.data_sources]
        raise ValueError(f"--data {spec!r}: unknown source {name!r}; allowed: {', '.join(allowed)}")
    return owner.data_source(name, arg, resolution)
