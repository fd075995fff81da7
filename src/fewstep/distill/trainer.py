"""The distillation loop on `accelerate`: one CPU process, or `accelerate launch` (DDP/FSDP).

Phases run in order (trajectory guidance, then distribution matching) under one global
step counter, so a checkpoint names its phase implicitly. The random student step k of
backward simulation is broadcast from rank 0 (METHOD.md's first pitfall). Checkpoints hold
student, fake score, optimizers and RNG state; a killed run resumes from the newest one.
"""

from __future__ import annotations

import contextlib
import copy
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast
from tqdm.auto import tqdm

from fewstep.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from fewstep.distill.config import FlashConfig
from fewstep.distill.dmd import dm_direction, dm_loss, fake_score_loss, generator_point
from fewstep.distill.trajectories import Trajectories
from fewstep.distill.trajectory_guidance import trajectory_guidance_loss
from fewstep.pipelines import encode_prompts


@dataclass
class Conditioning:
    student: tuple[torch.Tensor, torch.Tensor]  # per trajectory caption
    teacher: tuple[torch.Tensor, torch.Tensor]
    uncond: tuple[torch.Tensor, torch.Tensor]  # the teacher's empty prompt, batch 1


def conditioning(teacher_pipe, captions: list[str], t5_free: bool) -> Conditioning:
    """Teacher conditioning is full; a T5-free student sees the T5 slot zero-filled."""
    teacher = encode_prompts(teacher_pipe, captions)
    if t5_free:
        drop = torch.zeros(len(captions), 3, dtype=torch.bool)
        drop[:, 2] = True
        student = encode_prompts(teacher_pipe, captions, drop)
    else:
        student = teacher
    return Conditioning(student, teacher, encode_prompts(teacher_pipe, [""]))


def _pick(cond: tuple[torch.Tensor, torch.Tensor], idx) -> tuple[torch.Tensor, torch.Tensor]:
    return cond[0][idx], cond[1][idx]


def train_student(
    teacher_pipe,
    traj: Trajectories,
    cfg: FlashConfig,
    work: Path,
    progress: bool = True,
) -> torch.nn.Module:
    """Run the enabled phases; return the trained (unwrapped) student transformer."""
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    torch.manual_seed(cfg.seed + accelerator.process_index)
    rng = np.random.default_rng(cfg.seed + 17 * accelerator.process_index)
    tg, dm = cfg.trajectory_guidance, cfg.distribution_matching
    tg_iters = tg.iterations if tg.enabled else 0
    dm_iters = dm.iterations if dm.enabled else 0
    timesteps = traj.timesteps
    cond = conditioning(teacher_pipe, traj.captions, cfg.t5_free)
    teacher = teacher_pipe.transformer.eval().requires_grad_(False)
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    fake = copy.deepcopy(teacher).train().requires_grad_(True)
    opt_s = torch.optim.AdamW(student.parameters(), tg.lr, weight_decay=0.0)
    opt_f = torch.optim.AdamW(fake.parameters(), dm.lr_fake, weight_decay=0.0)
    modules = {"student": student, "fake": fake}
    optims = {"student": opt_s, "fake": opt_f}
    start = 0
    ckpt_root = work / "checkpoints"
    if (last := latest_checkpoint(ckpt_root)) is not None:
        start = load_checkpoint(last, modules, optims, rng)["step"]
        if accelerator.process_index:  # the checkpoint holds rank 0's stream; keep ranks distinct
            rng = np.random.default_rng([cfg.seed, accelerator.process_index, start])
    student_w, fake_w, opt_s, opt_f = accelerator.prepare(student, fake, opt_s, opt_f)
    n = traj.states.shape[0]
    total = tg_iters + dm_iters
    log_path = work / "losses.csv"
    with open(log_path, "a", newline="") if accelerator.is_main_process else contextlib.nullcontext() as log:
        writer = csv.writer(log) if log else None
        bar = tqdm(
            range(start, total),
            initial=start,
            total=total,
            desc="distill",
            disable=not (progress and accelerator.is_main_process),
        )
        for step in bar:
            in_tg = step < tg_iters
            batch = tg.batch if in_tg else dm.batch
            idx = torch.from_numpy(rng.choice(n, size=batch, replace=n < batch))
            row: dict[str, float] = {}
            if in_tg:
                jump = torch.from_numpy(rng.integers(0, cfg.steps, batch))
                loss = trajectory_guidance_loss(student_w, traj.states[idx], jump, timesteps, _pick(cond.student, idx))
                opt_s.zero_grad(set_to_none=True)
                accelerator.backward(loss)
                opt_s.step()
                row["tg"] = loss.item()
            else:
                row.update(
                    _dm_step(
                        step - tg_iters,
                        cfg,
                        accelerator,
                        student_w,
                        fake_w,
                        teacher,
                        opt_s,
                        opt_f,
                        traj,
                        idx,
                        cond,
                        rng,
                    )
                )
            if writer:
                writer.writerow([step, "tg" if in_tg else "dm", *(f"{k}={v:.5f}" for k, v in row.items())])
            bar.set_postfix({k: f"{v:.4f}" for k, v in row.items()})
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == total:
                if log:
                    log.flush()
                if accelerator.is_main_process:
                    unwrapped = {k: accelerator.unwrap_model(m) for k, m in (("student", student_w), ("fake", fake_w))}
                    save_checkpoint(ckpt_root, step + 1, unwrapped, optims, rng)
                accelerator.wait_for_everyone()
    return accelerator.unwrap_model(student_w).eval()


def _dm_step(i, cfg, accelerator, student, fake, teacher, opt_s, opt_f, traj, idx, cond, rng) -> dict[str, float]:
    dm = cfg.distribution_matching
    timesteps = traj.timesteps
    s_cond, t_cond = _pick(cond.student, idx), _pick(cond.teacher, idx)
    uncond = (cond.uncond[0].expand(len(idx), -1, -1), cond.uncond[1].expand(len(idx), -1))
    noise = torch.randn_like(traj.states[idx, 0])
    out: dict[str, float] = {}
    # Fake score: every iteration, on detached student samples.
    from fewstep.distill.schedule import student_sample

    with torch.no_grad():
        x0_student = student_sample(accelerator.unwrap_model(student), noise, timesteps, s_cond)
    loss_f = fake_score_loss(fake, x0_student, t_cond, timesteps, cfg.shift, dm.timestep_sharing)
    opt_f.zero_grad(set_to_none=True)
    accelerator.backward(loss_f)
    opt_f.step()
    out["fake"] = loss_f.item()
    if i % dm.critic_ratio:
        return out
    # Generator: the same k on every rank (backward simulation depth).
    k = torch.tensor([int(rng.integers(0, cfg.steps))])
    k = int(broadcast(k, from_process=0).item()) if accelerator.num_processes > 1 else int(k.item())
    for group in opt_s.param_groups:
        group["lr"] = dm.lr_student
    x, t, _ = generator_point(student, noise, k, timesteps, s_cond, dm.timestep_sharing, cfg.shift)
    g = dm_direction(accelerator.unwrap_model(fake), teacher, x, t, t_cond, uncond, cfg.guidance)
    loss_g = dm_loss(x, g)
    out["dm"] = loss_g.item()
    if dm.regression_weight > 0:
        jump = torch.from_numpy(rng.integers(0, cfg.steps, len(idx)))
        reg = trajectory_guidance_loss(student, traj.states[idx], jump, timesteps, s_cond)
        loss_g = loss_g + dm.regression_weight * reg
        out["tg"] = reg.item()
    opt_s.zero_grad(set_to_none=True)
    accelerator.backward(loss_g)
    opt_s.step()
    return out
