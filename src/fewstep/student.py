"""A distilled student's record (`fewstep_student.json` beside its diffusers files): its K,
timesteps, the sigmas to pass to diffusers, guidance, T5-freedom and how it was made."""

from __future__ import annotations

import json
from pathlib import Path

STUDENT_FILE = "fewstep_student.json"


def student_info(path: str | Path) -> dict | None:
    """The student's record, or None for a plain pipeline."""
    f = Path(path) / STUDENT_FILE
    return json.loads(f.read_text()) if f.exists() else None


def check_guidance_interval(value: tuple[float, float] | None) -> tuple[float, float] | None:
    """A sigma range [lo, hi] with 0 <= lo <= hi <= 1 (CFG applies only inside it)."""
    if value is None:
        return None
    lo, hi = value
    if not (0.0 <= lo <= hi <= 1.0):
        raise ValueError(f"guidance_interval {list(value)}: needs 0 <= lo <= hi <= 1 (sigmas run from 1 to 0)")
    return value
