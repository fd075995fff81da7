"""`distill(teacher, FlashConfig(...), out_dir)`: write a K-step student pipeline.

The student is the teacher's diffusers directory with the distilled transformer (and no T5
for a T5-free student), plus `fewstep_student.json` with its timesteps. diffusers samples it
in K steps with `pipe(prompt, sigmas=<sigmas>, guidance_scale=1.0)`.
"""

from __future__ import annotations

import json
from pathlib import Path

from accelerate import PartialState

from fewstep.distill.config import FlashConfig
from fewstep.distill.schedule import student_timesteps
from fewstep.distill.split import split_timestep_finetune
from fewstep.distill.trainer import train_student
from fewstep.distill.trajectories import build_trajectories, cache_key, load_or_build, training_prompts
from fewstep.fsutil import atomic_dir, check_replaceable, tree_digest
from fewstep.sd3_pipeline import load_pipeline, resolve_model
from fewstep.student import STUDENT_FILE


def unshift(t: float, shift: float) -> float:
    """Inverse of SD3's shift: the sigma that the scheduler shifts to t."""
    return t / (shift - (shift - 1) * t)


def distill(
    teacher: str | Path,
    cfg: FlashConfig,
    out_dir: Path,
    work_dir: Path | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Distil `teacher` (zoo name or diffusers dir) into a student at `out_dir` (an existing
    directory fewstep did not write is refused unless `overwrite`)."""
    out_dir = Path(out_dir)
    check_replaceable(out_dir, overwrite)
    teacher_dir = resolve_model(teacher)
    work = Path(work_dir or out_dir.with_name(f".{out_dir.name}.work"))
    work.mkdir(parents=True, exist_ok=True)
    pipe = load_pipeline(teacher_dir)
    timesteps = student_timesteps(cfg)
    tg = cfg.trajectory_guidance
    captions = training_prompts(cfg.data, tg.num_prompts, cfg.seed)
    key = cache_key(
        tree_digest(teacher_dir),
        guidance=cfg.guidance,
        **({"guidance_interval": list(cfg.guidance_interval)} if cfg.guidance_interval else {}),
        teacher_steps=tg.teacher_steps,
        shift=cfg.shift,
        timesteps=timesteps,
        prompts=captions,
        seed=cfg.seed,
    )
    state = PartialState()
    with state.main_process_first():  # rank 0 builds the cache; the others then read it
        traj = load_or_build(
            Path(cache_dir or work / "cache"),
            key,
            lambda: build_trajectories(
                pipe,
                captions,
                timesteps,
                cfg.guidance,
                tg.teacher_steps,
                cfg.shift,
                cfg.seed,
                progress=progress,
                interval=cfg.guidance_interval,
            ),
        )
    student = train_student(pipe, traj, cfg, work, progress=progress)
    split_record = None
    if cfg.split_timestep.enabled:
        student, split_record = split_timestep_finetune(pipe, traj, cfg, work, progress=progress)
    if not state.is_main_process:
        state.wait_for_everyone()
        return out_dir
    pipe.transformer = student
    if cfg.t5_free:
        pipe.text_encoder_3 = None
        pipe.tokenizer_3 = None
        pipe.register_modules(text_encoder_3=None, tokenizer_3=None)
    sched_shift = float(pipe.scheduler.config.shift)
    info = {
        "steps": cfg.steps,
        "timesteps": timesteps,
        "sigmas": [unshift(t, sched_shift) for t in timesteps[:-1]],
        "guidance": 1.0,
        "t5_free": cfg.t5_free,
        "teacher": str(teacher),
        "split_timestep": split_record,
        "config": cfg.model_dump(mode="json"),
    }
    with atomic_dir(out_dir) as tmp:
        pipe.save_pretrained(str(tmp))
        (tmp / STUDENT_FILE).write_text(json.dumps(info, indent=2))
    state.wait_for_everyone()
    return out_dir
