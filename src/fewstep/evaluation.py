"""`fewstep eval`: generate a family's held-out prompts with a pipeline or a bundle and score
them with the family's evaluation (the toy family's evaluator network; a family without one is
refused by name, never scored with another family's evaluator).

Each image i uses the i-th held-out prompt and initial noise from seed + i, so results do not
depend on the batch size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from fewstep.families import Evaluation, StandardMetrics, evaluation_with, family_for, family_named
from fewstep.grids import save_grid
from fewstep.sampling import GenerationConfig, generate
from fewstep.sd3_pipeline import load_pipeline, resolve_model
from fewstep.student import student_info


def evaluation_of(
    model_dir: Path | None, family_name: str | None = None, metrics: StandardMetrics | None = None
) -> Evaluation:
    family = family_named(family_name) if family_name else family_for(model_dir)
    evaluation = evaluation_with(family, metrics, model_dir)
    if evaluation is None:
        raise ValueError(
            f"{model_dir}: the {family.name!r} family has no evaluator, so there is nothing to score its images "
            "with; give standard metrics with local networks (`--metrics METRICS.yaml`: reference image folder, "
            "fid_network, clip) or use `fewstep gate` (tensor and image gates against the torch model)"
        )
    return evaluation


def _scored(evaluation: Evaluation, n: int, produce: Callable[[list[str]], Any], grid: Path | None) -> dict:
    """Images for `n` held-out prompts from `produce`, scored, timed and (with `grid`) saved."""
    prompts, specs = evaluation.held_out(n)
    start = time.perf_counter()
    images = produce(prompts)
    seconds = time.perf_counter() - start
    result = evaluation.score(images, specs)
    result.update(images=len(images), seconds_per_image=seconds / len(images))
    if grid is not None:
        result["grid"] = str(save_grid(images, grid, captions=prompts))
    return result


def evaluate_bundle(
    path: Path,
    cfg: GenerationConfig,
    grid: Path | None = None,
    metrics: StandardMetrics | None = None,
    evaluation: Evaluation | None = None,
) -> dict:
    """Score a compiled bundle through the torch-free runtime (its own steps and guidance)."""
    from fewstep.runtime.bundle import Bundle

    bundle = Bundle.open(path)
    p = bundle.pipeline
    evaluation = evaluation or evaluation_of(Path(bundle.manifest.source.path), bundle.manifest.family, metrics)
    result = _scored(
        evaluation, cfg.num_images, lambda prompts: bundle.generate(prompts, seed=cfg.seed, batch=cfg.batch), grid
    )
    result.update(
        steps=p.steps,
        guidance=p.guidance,
        guidance_interval=p.guidance_interval,
        seed=cfg.seed,
        bundle=str(path),
        target=bundle.manifest.target,
        precision=bundle.manifest.precision,
    )
    return result


def evaluate(
    model: str | Path,
    cfg: GenerationConfig,
    grid: Path | None = None,
    metrics: StandardMetrics | None = None,
    evaluation: Evaluation | None = None,
) -> dict:
    """Generate `cfg.num_images` held-out prompts with `model` and score them.

    `model` is a zoo name, a diffusers pipeline directory or a fewstep bundle directory. The
    scores are the family's (or `metrics`'), unless an `evaluation` is given.
    """
    from fewstep.runtime.bundle import is_bundle

    if not str(model).startswith("zoo:") and is_bundle(model):
        return evaluate_bundle(Path(model), cfg, grid, metrics, evaluation)
    model_dir = resolve_model(model)
    evaluation = evaluation or evaluation_of(model_dir, metrics=metrics)
    info = student_info(model_dir)
    if info and cfg.steps == info["steps"] and cfg.sigmas is None:
        # A distilled student samples on its own timesteps, without CFG.
        cfg = replace(cfg, sigmas=tuple(info["sigmas"]), guidance=info["guidance"])
    pipe = load_pipeline(model_dir, drop_t5=cfg.drop_t5)
    result = _scored(evaluation, cfg.num_images, lambda prompts: generate(pipe, prompts, cfg), grid)
    result.update(
        steps=cfg.steps,
        guidance=cfg.guidance,
        guidance_interval=list(cfg.guidance_interval) if cfg.guidance_interval else None,
        seed=cfg.seed,
        drop_t5=cfg.drop_t5,
        student=bool(info),
    )
    return result
