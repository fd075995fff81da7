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
from fewstep.families import carry_family_files
from fewstep.fsutil import atomic_dir, check_replaceable, output_lock, tree_digest
from fewstep.sd3_pipeline import drop_build_paths, load_pipeline, resolve_model
from fewstep.student import STUDENT_FILE


def portable_name(model: str | Path) -> str:
    """How a shipped file names a model: `zoo:<name>` as given, else the directory's name only
    (no build-machine paths in anything shipped; the digest identifies it)."""
    text = str(model)
    return text if ":" in text and not Path(text).exists() else Path(text).name


def student_schedule(pipe, timesteps: list[float]) -> tuple[list[float], dict]:
    """The student's scheduler set so that stock clients (`num_inference_steps=K`) sample its own
    timesteps where diffusers' FlowMatchEulerDiscreteScheduler can express them; returns the
    `sigmas=` that reproduce them through that scheduler and the fit's record."""
    import warnings

    from fewstep.stock_schedule import fit_stock_schedule, stock_scheduler

    fit = fit_stock_schedule(timesteps, dict(pipe.scheduler.config))
    if fit.exact:
        pipe.scheduler = stock_scheduler(dict(pipe.scheduler.config), fit)
        return list(fit.call_sigmas), fit.to_json()
    warnings.warn(
        f"the student's timesteps {timesteps[:-1]} cannot be expressed by a stock FlowMatchEulerDiscreteScheduler "
        f"(closest: shift {fit.shift:.4g}, shift_terminal {fit.shift_terminal}, off by {fit.max_error:.3g}); clients "
        "must pass the recorded `sigmas=`",
        RuntimeWarning,
        stacklevel=2,
    )
    shift = float(pipe.scheduler.config.shift)
    return [unshift(t, shift) for t in timesteps[:-1]], fit.to_json()


def check_against_model(cfg: FlashConfig, pipe) -> None:
    """Settings that name parts of the model must name parts this model has."""
    gan = cfg.distribution_matching.gan
    n = len(pipe.transformer.transformer_blocks)
    if gan.enabled and gan.blocks is not None and any(b < 0 or b >= n for b in gan.blocks):
        raise ValueError(
            f"distribution_matching.gan.blocks: {list(gan.blocks)}; this transformer has blocks 0..{n - 1}"
        )


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
    check_against_model(cfg, pipe)
    timesteps = student_timesteps(cfg, dict(pipe.scheduler.config))
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
        student, split_record = split_timestep_finetune(
            pipe, traj, cfg, work, progress=progress, teacher_dir=teacher_dir
        )
    if not state.is_main_process:
        state.wait_for_everyone()
        return out_dir
    pipe.transformer = student
    if cfg.t5_free:
        pipe.text_encoder_3 = None
        pipe.tokenizer_3 = None
        pipe.register_modules(text_encoder_3=None, tokenizer_3=None)
    call_sigmas, stock = student_schedule(pipe, timesteps)
    info = {
        "steps": cfg.steps,
        "timesteps": timesteps,
        "sigmas": call_sigmas,
        "guidance": 1.0,
        "t5_free": cfg.t5_free,
        "teacher": portable_name(teacher),
        "teacher_digest": tree_digest(teacher_dir),
        "stock_scheduler": stock,
        "split_timestep": split_record,
        "config": cfg.model_dump(mode="json"),
    }
    with output_lock(out_dir), atomic_dir(out_dir) as tmp:
        pipe.save_pretrained(str(tmp))
        drop_build_paths(tmp)
        carry_family_files(teacher_dir, tmp)
        (tmp / STUDENT_FILE).write_text(json.dumps(info, indent=2))
    state.wait_for_everyone()
    return out_dir
