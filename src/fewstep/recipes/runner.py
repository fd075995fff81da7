"""The stage runner: directories in, one directory out, cached, resumable, atomic.

Each stage writes `<run_dir>/<stage name>/` through a temporary directory that is renamed
when complete, with a `manifest.json` recording the fewstep version, the stage config, the
digests of its inputs, the sha256 of every output file and the wall time. A stage whose
cache key (version + config + input digests) matches a verified manifest is skipped, so a
run killed at any point resumes at the first incomplete stage. Long stages can keep
checkpoints in `ctx.work_dir(name)`, which survives an interrupted attempt.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fewstep import __version__
from fewstep.fsutil import atomic_dir, hash_tree, tree_digest
from fewstep.recipes.context import MANIFEST, STAGES, StageContext
from fewstep.recipes.schema import Recipe, stage_name


@dataclass
class StageResult:
    name: str
    kind: str
    status: str  # "ran" | "cached"
    seconds: float
    out: Path
    summary: dict[str, Any]


def cache_key(kind: str, config: dict[str, Any], input_digests: dict[str, str]) -> str:
    blob = json.dumps({"version": __version__, "kind": kind, "config": config, "inputs": input_digests}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def verify_outputs(out: Path, manifest: dict[str, Any]) -> bool:
    """True when every file the manifest lists is present with its recorded sha256."""
    files = hash_tree(out)
    files.pop(MANIFEST, None)
    return files == manifest.get("outputs")


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another fewstep run is using {run_dir}") from None
        clean_stale(run_dir)
        yield


def clean_stale(run_dir: Path) -> list[str]:
    """Remove the temporary stage outputs a killed run left (`.<stage>.tmp-*`, `.<stage>.old-*`).
    Only called with the run lock held, so no live run owns them."""
    import shutil

    removed = []
    for path in run_dir.iterdir():
        if path.is_dir() and path.name.startswith(".") and (".tmp-" in path.name or ".old-" in path.name):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def run_recipe(
    recipe: Recipe,
    run_dir: Path,
    force: set[str] | None = None,
    progress: bool = True,
    model_override: Path | None = None,
    on_stage: Callable[[str, str], None] | None = None,
) -> list[StageResult]:
    """Run every stage in order, skipping those whose verified outputs are current."""
    force = set(force or ())
    names = [stage_name(s, i) for i, s in enumerate(recipe.stages)]
    unknown = force - set(names)
    if unknown:
        raise ValueError(f"--force: unknown stage(s) {sorted(unknown)}; stages: {', '.join(names)}")
    ctx = StageContext(recipe, Path(run_dir), progress=progress, model_override=model_override)
    results = []
    with run_lock(ctx.run_dir):
        for name, stage in zip(names, recipe.stages):
            impl = STAGES[stage.kind]
            config = stage.model_dump(mode="json")
            inputs = impl.inputs(stage, ctx)
            digests = {k: tree_digest(v) for k, v in inputs.items()}
            key = cache_key(stage.kind, config, digests)
            out = ctx.run_dir / name
            manifest = read_manifest(out)
            if name not in force and manifest and manifest.get("key") == key and verify_outputs(out, manifest):
                ctx.outputs[name] = out
                results.append(StageResult(name, stage.kind, "cached", 0.0, out, manifest.get("summary", {})))
                if on_stage:
                    on_stage(name, "cached")
                continue
            if on_stage:
                on_stage(name, "running")
            start = time.perf_counter()
            ctx.stage = name
            with atomic_dir(out) as tmp:
                summary = impl.run(stage, ctx, tmp)
                seconds = time.perf_counter() - start
                manifest = {
                    "fewstep_version": __version__,
                    "stage": name,
                    "kind": stage.kind,
                    "config": config,
                    "inputs": {k: {"path": str(inputs[k]), "digest": d} for k, d in digests.items()},
                    "key": key,
                    "outputs": hash_tree(tmp),
                    "wall_time_s": round(seconds, 3),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "summary": summary,
                }
                (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
            ctx.outputs[name] = out
            results.append(StageResult(name, stage.kind, "ran", seconds, out, summary))
            if on_stage:
                on_stage(name, "done")
    return results
