"""Split-timestep fine-tuning: branch A trains the composition steps (T > boundary), branch
B the detail steps, each with an EMA; the merge theta = r theta_A + (1 - r) theta_B takes the
r that scores best on the alignment evaluator (over prompts from the *training* split, so
the held-out evaluation prompts stay unseen).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from fewstep.checkpoint import latest_checkpoint
from fewstep.distill.config import FlashConfig
from fewstep.distill.schedule import student_sample
from fewstep.distill.trainer import conditioning, train_student
from fewstep.distill.trajectories import Trajectories
from fewstep.families import Evaluation, data_family, family_for

PAPER_RATIO = 0.3  # the paper's 3:7, used when the data has no evaluator


def branch_steps(timesteps: list[float], boundary: float) -> tuple[list[int], list[int]]:
    """Student step indices of branch A (T > boundary) and branch B (the rest)."""
    ts = timesteps[:-1]
    a = [i for i, t in enumerate(ts) if t > boundary]
    b = [i for i, t in enumerate(ts) if t <= boundary]
    if not a or not b:
        raise ValueError(f"split_timestep.boundary={boundary}: student timesteps {ts} leave a branch empty")
    return a, b


def merge(a: torch.nn.Module, b: torch.nn.Module, r: float) -> torch.nn.Module:
    """Weight interpolation r * a + (1 - r) * b."""
    out = copy.deepcopy(a)
    sb = b.state_dict()
    out.load_state_dict({k: r * v + (1 - r) * sb[k] for k, v in a.state_dict().items()})
    return out


@torch.no_grad()
def student_scores(
    pipe, transformer, timesteps: list[float], t5_free: bool, n: int, seed: int, evaluation: Evaluation
) -> dict:
    """Alignment and domain FID of the student's images on n training-split prompts of the data's
    family, so its held-out evaluation prompts stay unseen."""
    prompts, specs = evaluation.training(n, seed)
    cond = conditioning(pipe, prompts, t5_free).student
    cfg = transformer.config
    noise = torch.randn(
        (n, cfg.in_channels, cfg.sample_size, cfg.sample_size), generator=torch.Generator().manual_seed(seed)
    )
    x0 = student_sample(transformer, noise, timesteps, cond)
    vae = pipe.vae
    images = vae.decode(x0 / vae.config.scaling_factor + vae.config.shift_factor).sample
    images = ((images + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    result = evaluation.score(images, specs)
    return {"alignment": float(result["alignment"]), "fid": float(result["fid"])}


def select_ratio(scores: dict[float, dict], fid_guard: float) -> float:
    """The merge ratio with the best alignment among those whose domain FID is within `fid_guard`
    (relative) of the lowest; ties go to the paper's 3:7."""
    best_fid = min(s["fid"] for s in scores.values())
    eligible = [r for r, s in scores.items() if s["fid"] <= best_fid * (1 + fid_guard)]
    return max(eligible, key=lambda r: (scores[r]["alignment"], -abs(r - PAPER_RATIO)))


def ratio_evaluation(cfg: FlashConfig, teacher_dir: Path | None) -> Evaluation | None:
    """What scores the merge ratios: the teacher's family evaluation (a caption evaluator it
    carries, or the toy family's), else the training data's family's."""
    if teacher_dir is not None:
        family = family_for(teacher_dir)
        if (evaluation := family.evaluation(teacher_dir)) is not None:
            return evaluation
    family = data_family(cfg.data)
    return family.evaluation() if family is not None else None


def split_timestep_finetune(
    pipe, traj: Trajectories, cfg: FlashConfig, work: Path, progress: bool = True, teacher_dir: Path | None = None
) -> tuple[torch.nn.Module, dict]:
    """Fine-tune both branches from the distilled student in `work`; return the merge and its record."""
    sp = cfg.split_timestep
    a_steps, b_steps = branch_steps(traj.timesteps, sp.boundary)
    init = latest_checkpoint(work / "checkpoints")
    if init is None:
        raise FileNotFoundError(f"split-timestep fine-tuning needs the distilled student's checkpoint in {work}")
    branch_cfg = cfg.model_copy(
        update={
            "trajectory_guidance": cfg.trajectory_guidance.model_copy(update={"enabled": False}),
            "distribution_matching": cfg.distribution_matching.model_copy(
                update={"enabled": True, "iterations": sp.iterations}
            ),
        }
    )
    branches = {}
    for name, steps in (("a", a_steps), ("b", b_steps)):
        bw = work / f"split-{name}"
        bw.mkdir(parents=True, exist_ok=True)
        branches[name] = train_student(pipe, traj, branch_cfg, bw, progress, allowed_steps=steps, init=init, ema=sp.ema)
    record: dict = {"boundary": sp.boundary, "branch_a_steps": a_steps, "branch_b_steps": b_steps}
    evaluation = ratio_evaluation(cfg, teacher_dir)
    if evaluation is not None:
        scores = {
            r: student_scores(
                pipe,
                merge(branches["a"], branches["b"], r),
                traj.timesteps,
                cfg.t5_free,
                sp.eval_images,
                cfg.seed + 99,
                evaluation,
            )
            for r in sp.ratios
        }
        ratio = select_ratio(scores, sp.fid_guard)
        record.update(
            scored_by=type(evaluation).__name__,
            scores={str(r): s for r, s in scores.items()},
            ratio=ratio,
            chosen_by=f"alignment; FID within {sp.fid_guard:.0%} of the lowest; {sp.eval_images} training prompts",
        )
    else:
        ratio = PAPER_RATIO
        record.update(ratio=ratio, chosen_by="the paper's 3:7 (no evaluator for this data)")
    return merge(branches["a"], branches["b"], ratio).eval(), record
