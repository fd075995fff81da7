"""Cached compile steps. Export and quantize each write a directory under the compile's work
directory, named by the hash of everything the step depends on, and a `step.json` when it is
complete. A later compile whose inputs to a step are unchanged reuses its directory: a changed
gate threshold re-gates without re-exporting or re-quantizing, and a changed scheme re-quantizes
without re-exporting. An interrupted step (no `step.json`) is redone from scratch."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from fewstep import __version__

RECORD = "step.json"


def step_key(step: str, **inputs: Any) -> str:
    blob = json.dumps({"step": step, "fewstep": __version__, **inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def lookup(work: Path, step: str, key: str) -> tuple[Path, dict[str, Any] | None]:
    """The step's directory and its record if complete; an incomplete one is cleared."""
    folder = Path(work) / step / key
    record = folder / RECORD
    if record.is_file():
        return folder, json.loads(record.read_text())
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder, None


def complete(folder: Path, record: dict[str, Any]) -> None:
    tmp = folder / f".{RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(folder / RECORD)
