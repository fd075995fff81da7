"""Targets are found through the `fewstep.targets` entry-point group, built-ins included.

Loading a target imports only its module (which must not import its SDK at the top), so
`fewstep targets` works with no SDK installed, and a plugin that fails to load is reported
with its error instead of breaking the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from fewstep.targets.base import Target

GROUP = "fewstep.targets"
_EXTRA: dict[str, type[Target]] = {}  # registered in-process (tests, notebooks)


@dataclass
class TargetEntry:
    name: str
    source: str  # "module:Class" of the entry point, or "in-process"
    target: Target | None
    error: str | None

    def to_json(self, check: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "source": self.source}
        if self.target is None:
            d.update(status="broken", error=self.error)
            return d
        d.update(self.target.info())
        missing = self.target.missing()
        d["status"] = "missing " + ", ".join(missing) if missing else "installed"
        if check and not missing:
            reason = self.target.unavailable_reason()
            d["status"] = reason or "ready"
        return d


def register_target(cls: type[Target]) -> type[Target]:
    """Register a target class in this process (entry points are the durable way)."""
    _EXTRA[cls.name] = cls
    return cls


def discover() -> dict[str, TargetEntry]:
    """Every target: entry points first, then in-process registrations; broken ones kept."""
    found: dict[str, TargetEntry] = {}
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Target)):
                raise TypeError(f"{ep.value} is not a fewstep.targets.Target subclass")
            found[ep.name] = TargetEntry(ep.name, ep.value, cls(), None)
        except Exception as err:  # a broken plugin must not break the others
            found[ep.name] = TargetEntry(ep.name, ep.value, None, f"{type(err).__name__}: {err}")
    for name, cls in _EXTRA.items():
        found[name] = TargetEntry(name, "in-process", cls(), None)
    return found


def get_target(name: str) -> Target:
    """The target registered as `name`; errors list the known ones or the plugin's failure."""
    entries = discover()
    if name not in entries:
        raise ValueError(f"unknown target {name!r}; allowed: {', '.join(sorted(entries)) or 'none installed'}")
    entry = entries[name]
    if entry.target is None:
        raise RuntimeError(f"target {name!r} ({entry.source}) failed to load: {entry.error}")
    return entry.target


def target_names() -> list[str]:
    return sorted(discover())


def accepting_targets(precision: str) -> list[str]:
    """The loadable targets that accept `precision`."""
    return sorted(n for n, e in discover().items() if e.target is not None and precision in e.target.precisions)
