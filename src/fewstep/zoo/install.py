"""Copy a finished `fewstep zoo train` run into the package's shipped weights."""

from __future__ import annotations

import shutil
from pathlib import Path

from fewstep.fsutil import atomic_dir
from fewstep.zoo.registry import WEIGHTS


def install_trained(train_dir: Path) -> list[Path]:
    """Install the trained pipeline as zoo:shapes and the evaluator as zoo:shapes-evaluator."""
    train_dir = Path(train_dir)
    pairs = [(train_dir / "pipeline", WEIGHTS / "shapes"), (train_dir / "evaluator", WEIGHTS / "shapes-evaluator")]
    installed = []
    for src, dest in pairs:
        if not src.exists():
            continue
        with atomic_dir(dest) as tmp:
            shutil.copytree(src, tmp, dirs_exist_ok=True)
        installed.append(dest)
    if not installed:
        raise FileNotFoundError(f"nothing to install: {train_dir} has no finished pipeline/ or evaluator/")
    return installed
