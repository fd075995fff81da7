"""How SD3-family pipelines sample: a pipeline's K steps, guidance and exact sigmas
(`Sampling`, which bundles record and gates compare on), and generation with the torch
pipeline (`generate`): the diffusers call, or fewstep's Euler loop (the bundle runtime's) where
diffusers has no equivalent (interval guidance). Image i of a request with seed s starts from
`numpy.random.default_rng(s + i)` noise, in torch and in the runtime alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from fewstep.runtime.manifest import Sampling
from fewstep.runtime.noise import initial_noise as runtime_noise
from fewstep.sd3_pipeline import t5_length, warn_cut_prompts
from fewstep.student import student_info


def sampling_for(
    pipe,
    model_dir: Path,
    steps: int | None = None,
    guidance: float | None = None,
    guidance_interval: tuple[float, float] | None = None,
) -> Sampling:
    """A distilled student samples on its recorded timesteps without CFG; other pipelines on
    `steps` (default 28) with `guidance` (default 7.0, diffusers' SD3 default), optionally
    only inside `guidance_interval` (sigma range)."""
    info = student_info(Path(model_dir))
    sched = pipe.scheduler
    if info and steps in (None, info["steps"]):
        call = tuple(float(s) for s in info["sigmas"])
        sched.set_timesteps(sigmas=list(call))
        g = info["guidance"] if guidance is None else guidance
        sigmas = tuple(float(s) for s in sched.sigmas)
        return Sampling(
            steps=info["steps"],
            guidance=float(g),
            call_sigmas=call,
            sigmas=sigmas,
            student=True,
            guidance_interval=guidance_interval,
        )
    steps = steps or 28
    sched.set_timesteps(num_inference_steps=steps)
    g = 7.0 if guidance is None else guidance
    sigmas = tuple(float(s) for s in sched.sigmas)
    return Sampling(steps=steps, guidance=float(g), sigmas=sigmas, student=False, guidance_interval=guidance_interval)


@dataclass(frozen=True)
class GenerationConfig:
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
def sample_torch(pipe, prompts: list[str], noise: torch.Tensor, cfg: GenerationConfig) -> np.ndarray:
    """fewstep's Euler loop (the bundle runtime's) over the pipeline's torch components.

    Equal to the diffusers call for plain CFG (tested); needed for interval guidance, which
    the diffusers pipeline does not offer.
    """
    from fewstep.runtime.sampler import guided, sample
    from fewstep.sd3_pipeline import encode_prompts

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
def generate(pipe, prompts: list[str], cfg: GenerationConfig) -> np.ndarray:
    """Images (N, H, W, 3) in [0, 1]: the diffusers pipeline call, or fewstep's sampler for
    interval guidance."""
    warn_cut_prompts(pipe, prompts)  # diffusers' own call cuts them with one logged line
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
