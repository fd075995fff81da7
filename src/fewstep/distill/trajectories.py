"""Teacher trajectories at the student's timesteps, cached on disk and reused across runs.

The cache file is keyed by the teacher's digest and everything that shapes the states
(guidance, teacher steps, shift, student timesteps, prompts, seed), and written atomically.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from fewstep.distill.schedule import teacher_trajectory
from fewstep.families import open_source
from fewstep.fsutil import atomic_write_text
from fewstep.sd3_pipeline import encode_prompts


@dataclass
class Trajectories:
    states: torch.Tensor  # N, K+1, C, H, W (index 0: noise, K: the teacher's sample)
    captions: list[str]
    timesteps: list[float]


def training_prompts(data: str, n: int, seed: int) -> list[str]:
    """n training captions from the data source (never held-out meanings for shapes)."""
    return open_source(data).sample(np.random.default_rng(seed), n).captions


def latent_shape(pipe) -> tuple[int, int, int]:
    cfg = pipe.transformer.config
    return (cfg.in_channels, cfg.sample_size, cfg.sample_size)


def build_trajectories(
    teacher_pipe,
    captions: list[str],
    timesteps: list[float],
    guidance: float,
    teacher_steps: int,
    shift: float,
    seed: int,
    batch: int = 64,
    progress: bool = True,
    interval: tuple[float, float] | None = None,
) -> Trajectories:
    """Run the teacher with CFG from seeded noise and record the states."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((len(captions), *latent_shape(teacher_pipe)), generator=gen)
    uncond_all = encode_prompts(teacher_pipe, [""])
    out = []
    for i in tqdm(range(0, len(captions), batch), desc="teacher trajectories", disable=not progress):
        caps = captions[i : i + batch]
        cond = encode_prompts(teacher_pipe, caps)
        uncond = (uncond_all[0].expand(len(caps), -1, -1), uncond_all[1].expand(len(caps), -1))
        out.append(
            teacher_trajectory(
                teacher_pipe.transformer,
                noise[i : i + batch],
                timesteps,
                cond,
                uncond,
                guidance,
                teacher_steps,
                shift,
                interval,
            )
        )
    return Trajectories(torch.cat(out), captions, timesteps)


def cache_key(teacher_digest: str, **params) -> str:
    blob = json.dumps({"teacher": teacher_digest, **params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def load_or_build(cache_dir: Path, key: str, build) -> Trajectories:
    """Return cached trajectories for `key`, building and caching them when missing."""
    path = Path(cache_dir) / f"trajectories-{key}.safetensors"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        info = json.loads(meta.read_text())
        return Trajectories(load_file(str(path))["states"], info["captions"], info["timesteps"])
    traj = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({"states": traj.states.contiguous()}, str(tmp))
    tmp.replace(path)
    atomic_write_text(meta, json.dumps({"captions": traj.captions, "timesteps": traj.timesteps}))
    return traj
