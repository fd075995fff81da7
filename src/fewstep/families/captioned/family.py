"""The captioned family: pipelines that carry a caption evaluator (`fewstep_evaluator/`), such as
those `fewstep zoo train --data imagefolder:PATH` writes, their distilled students (which carry it
over) and any pipeline a user attached one to (`fewstep evaluator train --attach`)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from fewstep.families.base import Evaluation, Family
from fewstep.families.captioned.evaluation import CaptionEvaluation
from fewstep.families.captioned.store import EVALUATOR_DIR


def _need_dir(model_dir: Path | None) -> Path:
    if model_dir is None:
        raise ValueError(f"the 'captioned' family's prompts and scores come from a pipeline's {EVALUATOR_DIR}/")
    return Path(model_dir) / EVALUATOR_DIR


class CaptionedFamily(Family):
    name: ClassVar[str] = "captioned"

    def matches(self, model_dir: Path) -> bool:
        return (Path(model_dir) / EVALUATOR_DIR / "config.json").is_file()

    def held_out_prompts(self, n: int, model_dir: Path | None = None) -> list[str]:
        return CaptionEvaluation(_need_dir(model_dir)).held_out(n)[0]

    def training_prompts(self, n: int, seed: int, model_dir: Path | None = None) -> list[str]:
        return CaptionEvaluation(_need_dir(model_dir)).training(n, seed)[0]

    def evaluation(self, model_dir: Path | None = None) -> Evaluation:
        return CaptionEvaluation(_need_dir(model_dir))

    def carried(self, model_dir: Path) -> tuple[str, ...]:
        return (EVALUATOR_DIR,)
