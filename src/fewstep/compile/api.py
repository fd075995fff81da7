"""`compile_bundle(model, CompileConfig(...), out)`: the compile entry point. A search scheme
(`mixed`) runs as a search that calls the single-bundle build for each trial; every other
scheme is one build (`build.build_bundle`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fewstep.compile.build import GateFailure, build_bundle
from fewstep.compile.config import CompileConfig
from fewstep.compile.mixed import search_mixed
from fewstep.gates.check import GateReport

__all__ = ["GateFailure", "compile_bundle", "register_search"]

Search = Callable[..., tuple[Path, GateReport]]
_SEARCHES: dict[str, Search] = {}


def register_search(scheme: str) -> Callable[[Search], Search]:
    """Register a search over bundles for a scheme name (called as search(model, cfg, out, work_dir, overwrite))."""

    def deco(fn: Search) -> Search:
        _SEARCHES[scheme] = fn
        return fn

    return deco


register_search("mixed")(search_mixed)


def compile_bundle(
    model: str | Path, cfg: CompileConfig, out: Path, work_dir: Path | None = None, overwrite: bool = False
) -> tuple[Path, GateReport]:
    """Build a gated bundle for `cfg.target` at `out` (an existing directory fewstep did not
    write is refused unless `overwrite`)."""
    from fewstep.fsutil import output_lock

    scheme = cfg.scheme()
    search = _SEARCHES.get(scheme.scheme) if scheme is not None else None
    with output_lock(Path(out)):  # one writer per output; what a killed one left is cleaned
        if search is not None:
            return search(model, cfg, out, work_dir, overwrite)
        return build_bundle(model, cfg, out, work_dir, overwrite=overwrite)
