"""Scores from a caption evaluator: domain FID against the held-out real images and
caption-concept alignment, GenEval-style: an image is aligned when every concept of its prompt
that the evaluator checks is detected (probability >= that concept's calibrated threshold)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from fewstep.families.base import Evaluation, cycled_prompts, drawn_prompts
from fewstep.families.captioned.store import CaptionEvaluator
from fewstep.families.frechet import frechet_distance


def concept_checks(evaluator: CaptionEvaluator, probs: np.ndarray, captions: list[str]) -> dict[str, Any]:
    """Alignment ("all" concepts found), concept recall, recall per concept kind, and how many
    prompts had no concept the evaluator knows (left out of the means)."""
    aligned, recall, kinds = [], [], {"word": [], "pair": []}
    for p, caption in zip(probs, captions):
        idx = evaluator.known(caption)
        if not idx:
            continue
        hit = p[idx] >= evaluator.cutoffs[idx]
        aligned.append(bool(hit.all()))
        recall.append(float(hit.mean()))
        for i, h in zip(idx, hit):
            kinds["pair" if " " in evaluator.vocabulary[i] else "word"].append(bool(h))
    if not aligned:
        raise ValueError("no prompt has a concept the caption evaluator knows: nothing to score")
    return {
        "alignment": float(np.mean(aligned)),
        "concept_recall": float(np.mean(recall)),
        "per_category": {k: float(np.mean(v)) for k, v in kinds.items() if v},
        "unscored_prompts": len(captions) - len(aligned),
    }


class CaptionEvaluation(Evaluation):
    """Held-out prompts are the captions of the held-out real images (cycled when more are asked
    for); specs are the prompts themselves."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @cached_property
    def evaluator(self) -> CaptionEvaluator:
        return CaptionEvaluator.load(self.path)

    def inputs(self) -> dict[str, Path]:
        return {"evaluator": self.path}

    def held_out(self, n: int) -> tuple[list[str], list[Any]]:
        return cycled_prompts(self.evaluator.held_out, n)

    def training(self, n: int, seed: int) -> tuple[list[str], list[Any]]:
        return drawn_prompts(self.evaluator.training, n, seed)

    def score(self, images: np.ndarray, specs: list[Any]) -> dict[str, Any]:
        if not np.isfinite(images).all():
            raise FloatingPointError("generated images contain NaN or Inf")
        ev = self.evaluator
        probs, feats = ev.predict(images)
        result = concept_checks(ev, probs, [str(s) for s in specs])
        ref, train = ev.reference["held_out"], ev.reference["training"]
        result["fid"] = frechet_distance(feats, ref)
        result["fid_real"] = frechet_distance(train[: max(2, min(len(feats), len(train)))], ref)
        result["alignment_real"] = ev.info.get("real", {}).get("alignment")
        return result
