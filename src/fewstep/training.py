"""Training machinery any phase can share (the zoo's teacher, a family's evaluator): AdamW with
the fused CPU kernel, a cosine schedule with warm-up, a checkpointed and resumable loop that logs
loss and seconds per step, and augmentation that makes an evaluator tolerate generator artefacts."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from fewstep.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


class LoopSettings(Protocol):
    """What `train_loop` reads from a training config."""

    lr: float
    progress: bool
    checkpoint_every: int


def adamw(params, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with the fused CPU kernel (3.6x faster than the foreach one for the teacher here)."""
    return torch.optim.AdamW(params, lr, weight_decay=weight_decay, fused=True)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()


def pixels(source, rng: np.random.Generator, n: int) -> torch.Tensor:
    """n training images as an NCHW tensor in [-1, 1]."""
    return to_tensor(source.sample(rng, n).images) * 2 - 1


def recon_loss(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (recon - x).abs().mean() + ((recon - x) ** 2).mean()


def optimize(opt: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def cosine_lr(step: int, total: int, warmup: int = 200) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train_loop(
    name: str,
    root: Path,
    steps: int,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    rng: np.random.Generator,
    step_fn: Callable[[int], float],
    cfg: LoopSettings,
    generators: dict[str, torch.Generator] | None = None,
) -> None:
    """Run `step_fn` from the newest checkpoint to `steps`, logging loss and seconds per step to CSV."""
    ckpt_root = root / "checkpoints"
    start = 0
    if (last := latest_checkpoint(ckpt_root)) is not None:
        start = load_checkpoint(last, modules, optimizers, rng, generators)["step"]
    log = root / "losses.csv"
    root.mkdir(parents=True, exist_ok=True)
    with open(log, "a", newline="") as f:
        writer = csv.writer(f)
        bar = tqdm(range(start, steps), desc=name, initial=start, total=steps, disable=not cfg.progress)
        for step in bar:
            for opt in optimizers.values():
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * cosine_lr(step, steps)
            began = time.perf_counter()
            loss = step_fn(step)
            if not math.isfinite(loss):
                raise FloatingPointError(f"{name}: loss is {loss} at step {step}")
            writer.writerow([step, f"{loss:.6f}", f"{time.perf_counter() - began:.4f}"])
            bar.set_postfix(loss=f"{loss:.4f}")
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == steps:
                f.flush()
                save_checkpoint(ckpt_root, step + 1, modules, optimizers, rng, generators=generators)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Noise and occasional blur, so the evaluator tolerates generator artefacts."""
    n = x.shape[0]
    blur = torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    use_blur = (torch.rand(n, 1, 1, 1, generator=gen) < 0.3).float()
    x = x * (1 - use_blur) + blur * use_blur
    sigma = torch.rand(n, 1, 1, 1, generator=gen) * 0.06
    return (x + sigma * torch.randn(x.shape, generator=gen)).clamp(0, 1)
