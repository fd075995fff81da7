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
