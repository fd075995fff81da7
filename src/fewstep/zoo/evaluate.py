"""`fewstep eval`: generate held-out prompts with a pipeline and score them.

Each image i uses the i-th held-out prompt (balanced over prompt kinds) and initial noise
from seed + i, so results do not depend on the batch size. The FID reference set is drawn
for the same prompts from a fixed reference seed; `fid_real` is the FID between two such
real sets of the same size (the floor for this number of images).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from fewstep.distill.api import student_info
from fewstep.pipelines import load_pipeline, resolve_model, text_length
from fewstep.runtime.noise import initial_noise as runtime_noise
from fewstep.zoo import shapes_data as sd
from fewstep.zoo.evaluator import ShapesEvaluator, alignment, frechet_distance, predict
from fewstep.zoo.registry import zoo_path

REFERENCE_SEEDS = (1_000_003, 2_000_003)


@dataclass(frozen=True)
class EvalConfig:
    steps: int = 28
    num_images: int = 1000
    seed: int = 0
    guidance: float = 2.0
    batch: int = 200
    drop_t5: bool = False
    progress: bool = True
    sigmas: tuple[float, ...] | None = None  # custom schedule (a distilled student's)


def initial_noise(pipe, seed: int, n: int) -> torch.Tensor:
    """Per-image noise from seed + i (fewstep's numpy convention, shared with the bundle runtime)."""
    cfg = pipe.transformer.config
    shape = (cfg.in_channels, cfg.sample_size, cfg.sample_size)
    return torch.from_numpy(runtime_noise(seed, n, shape))


@torch.no_grad()
def generate(pipe, prompts: list[str], cfg: EvalConfig) -> np.ndarray:
    """Images (N, H, W, 3) in [0, 1] from the diffusers pipeline call."""
    noise = initial_noise(pipe, cfg.seed, len(prompts))
    res = pipe.vae_scale_factor * pipe.transformer.config.sample_size
    out = []
    bar = tqdm(range(0, len(prompts), cfg.batch), desc=f"generate {cfg.steps} steps", disable=not cfg.progress)
    for i in bar:
        images = pipe(
            prompts[i : i + cfg.batch],
            latents=noise[i : i + cfg.batch],
            num_inference_steps=cfg.steps,
            guidance_scale=cfg.guidance,
            sigmas=list(cfg.sigmas) if cfg.sigmas else None,
            height=res,
            width=res,
            max_sequence_length=text_length(pipe),
            output_type="np",
        ).images
        out.append(images.astype(np.float32))
    return np.concatenate(out)


def score(images: np.ndarray, specs: list[sd.SceneSpec], evaluator: ShapesEvaluator | None = None) -> dict:
    """Alignment and domain FID of images generated for `specs`."""
    evaluator = evaluator or ShapesEvaluator.load(zoo_path("shapes-evaluator"))
    if not np.isfinite(images).all():
        raise FloatingPointError("generated images contain NaN or Inf")
    pred = predict(evaluator, images)
    ref_a, ref_b = (sd.reference_images(specs, s, images.shape[1]) for s in REFERENCE_SEEDS)
    feats_a = predict(evaluator, ref_a)["features"]
    feats_b = predict(evaluator, ref_b)["features"]
    result = alignment(specs, pred)
    result["fid"] = frechet_distance(pred["features"], feats_a)
    result["fid_real"] = frechet_distance(feats_b, feats_a)
    return result


def save_grid(images: np.ndarray, path: Path, captions: list[str] | None = None, cols: int = 8, scale: int = 4) -> Path:
    """Write up to 64 images as a PNG grid (nearest-neighbour upscaled)."""
    images = images[: cols * cols]
    rows = -(-len(images) // cols)
    h, w = images.shape[1:3]
    grid = np.zeros((rows * h, cols * w, 3), np.float32)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = im
    pil = Image.fromarray((grid.clip(0, 1) * 255).round().astype(np.uint8))
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pil.save(path)
    return path


def evaluate(model: str | Path, cfg: EvalConfig, grid: Path | None = None) -> dict:
    """Generate `cfg.num_images` held-out prompts with `model` and score them."""
    info = student_info(resolve_model(model))
    if info and cfg.steps == info["steps"] and cfg.sigmas is None:
        # A distilled student samples on its own timesteps, without CFG.
        cfg = replace(cfg, sigmas=tuple(info["sigmas"]), guidance=info["guidance"])
    pipe = load_pipeline(model, drop_t5=cfg.drop_t5)
    specs = sd.eval_prompts(cfg.num_images)
    prompts = [sd.caption(s) for s in specs]
    start = time.perf_counter()
    images = generate(pipe, prompts, cfg)
    seconds = time.perf_counter() - start
    result = score(images, specs)
    result.update(
        steps=cfg.steps,
        images=len(images),
        guidance=cfg.guidance,
        seed=cfg.seed,
        drop_t5=cfg.drop_t5,
        student=bool(info),
        seconds_per_image=seconds / len(images),
    )
    if grid is not None:
        result["grid"] = str(save_grid(images, grid))
    return result
