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
from fewstep.pipelines import load_pipeline, resolve_model, t5_length
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
    guidance_interval: tuple[float, float] | None = None  # CFG only for sigma in [lo, hi]


def initial_noise(pipe, seed: int, n: int) -> torch.Tensor:
    """Per-image noise from seed + i (fewstep's numpy convention, shared with the bundle runtime)."""
    cfg = pipe.transformer.config
    shape = (cfg.in_channels, cfg.sample_size, cfg.sample_size)
    return torch.from_numpy(runtime_noise(seed, n, shape))


@torch.no_grad()
def sample_torch(pipe, prompts: list[str], noise: torch.Tensor, cfg: EvalConfig) -> np.ndarray:
    """fewstep's Euler loop (the bundle runtime's) over the pipeline's torch components.

    Equal to the diffusers call for plain CFG (tested); needed for interval guidance, which
    the diffusers pipeline does not offer.
    """
    from fewstep.pipelines import encode_prompts
    from fewstep.runtime.sampler import guided, sample

    sched = pipe.scheduler
    if cfg.sigmas:
        sched.set_timesteps(sigmas=list(cfg.sigmas))
    else:
        sched.set_timesteps(num_inference_steps=cfg.steps)
    sigmas = [float(s) for s in sched.sigmas]

    def velocity(x, t, c):
        out = pipe.transformer(
            hidden_states=torch.from_numpy(x),
            timestep=torch.from_numpy(t),
            encoder_hidden_states=torch.from_numpy(c["encoder_hidden_states"]),
            pooled_projections=torch.from_numpy(c["pooled_projections"]),
        ).sample
        return out.numpy()

    def as_dict(pair):
        return {"encoder_hidden_states": pair[0].numpy(), "pooled_projections": pair[1].numpy()}

    cond = as_dict(encode_prompts(pipe, prompts))
    uncond = as_dict(encode_prompts(pipe, [""] * len(prompts))) if cfg.guidance > 1.0 else None
    step = guided(velocity, cfg.guidance, cfg.guidance_interval)
    x = sample(noise.numpy(), sigmas, lambda x, t: step(x, t, cond, uncond))
    vae = pipe.vae
    z = torch.from_numpy(x) / vae.config.scaling_factor + (vae.config.shift_factor or 0.0)
    image = (vae.decode(z).sample / 2 + 0.5).clamp(0, 1)
    return image.permute(0, 2, 3, 1).float().numpy()


@torch.no_grad()
def generate(pipe, prompts: list[str], cfg: EvalConfig) -> np.ndarray:
    """Images (N, H, W, 3) in [0, 1]: the diffusers pipeline call, or fewstep's sampler for
    interval guidance."""
    noise = initial_noise(pipe, cfg.seed, len(prompts))
    if cfg.guidance_interval is not None and cfg.guidance > 1.0:
        bar = tqdm(range(0, len(prompts), cfg.batch), desc=f"generate {cfg.steps} steps", disable=not cfg.progress)
        chunks = [sample_torch(pipe, prompts[i : i + cfg.batch], noise[i : i + cfg.batch], cfg) for i in bar]
        return np.concatenate(chunks)
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
            max_sequence_length=t5_length(pipe),
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


def evaluate_bundle(path: Path, cfg: EvalConfig, grid: Path | None = None) -> dict:
    """Score a compiled bundle through the torch-free runtime (its own steps and guidance)."""
    from fewstep.runtime.bundle import Bundle

    bundle = Bundle.open(path)
    p = bundle.pipeline
    specs = sd.eval_prompts(cfg.num_images)
    prompts = [sd.caption(s) for s in specs]
    start = time.perf_counter()
    images = bundle.generate(prompts, seed=cfg.seed, batch=cfg.batch)
    seconds = time.perf_counter() - start
    result = score(images, specs)
    result.update(
        steps=p["steps"],
        images=len(images),
        guidance=p["guidance"],
        guidance_interval=p.get("guidance_interval"),
        seed=cfg.seed,
        bundle=str(path),
        target=bundle.manifest["target"],
        precision=bundle.manifest["precision"],
        seconds_per_image=seconds / len(images),
    )
    if grid is not None:
        result["grid"] = str(save_grid(images, grid))
    return result


def evaluate(model: str | Path, cfg: EvalConfig, grid: Path | None = None) -> dict:
    """Generate `cfg.num_images` held-out prompts with `model` and score them.

    `model` is a zoo name, a diffusers pipeline directory or a fewstep bundle directory.
    """
    from fewstep.runtime.bundle import is_bundle

    if not str(model).startswith("zoo:") and is_bundle(model):
        return evaluate_bundle(Path(model), cfg, grid)
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
        guidance_interval=list(cfg.guidance_interval) if cfg.guidance_interval else None,
        seed=cfg.seed,
        drop_t5=cfg.drop_t5,
        student=bool(info),
        seconds_per_image=seconds / len(images),
    )
    if grid is not None:
        result["grid"] = str(save_grid(images, grid))
    return result
