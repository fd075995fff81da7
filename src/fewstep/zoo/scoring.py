"""The shapes family's score: alignment per category and domain FID from the shipped evaluator.

The FID reference set is drawn for the same prompts from a fixed reference seed; `fid_real` is
the FID between two such real sets of the same size (the floor for this number of images).
"""

from __future__ import annotations

import numpy as np

from fewstep.zoo import shapes_data as sd
from fewstep.zoo import shapes_render as sr
from fewstep.zoo.evaluator import ShapesEvaluator, alignment, frechet_distance, predict
from fewstep.zoo.registry import zoo_path

REFERENCE_SEEDS = (1_000_003, 2_000_003)


def score(images: np.ndarray, specs: list[sd.SceneSpec], evaluator: ShapesEvaluator | None = None) -> dict:
    """Alignment and domain FID of images generated for `specs`."""
    evaluator = evaluator or ShapesEvaluator.load(zoo_path("shapes-evaluator"))
    if not np.isfinite(images).all():
        raise FloatingPointError("generated images contain NaN or Inf")
    pred = predict(evaluator, images)
    ref_a, ref_b = (sr.reference_images(specs, s, images.shape[1]) for s in REFERENCE_SEEDS)
    feats_a = predict(evaluator, ref_a)["features"]
    feats_b = predict(evaluator, ref_b)["features"]
    result = alignment(specs, pred)
    result["fid"] = frechet_distance(pred["features"], feats_a)
    result["fid_real"] = frechet_distance(feats_b, feats_a)
    return result
