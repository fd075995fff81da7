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


def install_student(student_dir: Path, name: str = "shapes-flash") -> Path:
    """Ship a distilled student as a zoo overlay: its transformer (fp16) and student record."""
    import torch
    from diffusers import SD3Transformer2DModel

    student_dir = Path(student_dir)
    record = student_dir / "fewstep_student.json"
    if not record.exists():
        raise FileNotFoundError(f"not a fewstep student (no fewstep_student.json): {student_dir}")
    transformer = SD3Transformer2DModel.from_pretrained(str(student_dir / "transformer"))
    dest = WEIGHTS / name
    with atomic_dir(dest) as tmp:
        transformer.to(torch.float16).save_pretrained(str(tmp / "transformer"))
        shutil.copy2(record, tmp / record.name)
    return dest
