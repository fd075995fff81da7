"""How a pipeline directory samples: its K steps, guidance and the scheduler's exact sigmas."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fewstep.distill.api import student_info


@dataclass(frozen=True)
class Sampling:
    steps: int
    guidance: float
    call_sigmas: tuple[float, ...] | None  # what to pass as `sigmas=` to the diffusers pipeline
    sigmas: tuple[float, ...]  # the scheduler's K + 1 sigmas (ending at 0): what the runtime integrates
    student: bool
    guidance_interval: tuple[float, float] | None = None

    def to_json(self) -> dict:
        return {
            "steps": self.steps,
            "guidance": self.guidance,
            "call_sigmas": list(self.call_sigmas) if self.call_sigmas else None,
            "sigmas": list(self.sigmas),
            "student": self.student,
            "guidance_interval": list(self.guidance_interval) if self.guidance_interval else None,
        }


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
        return Sampling(info["steps"], float(g), call, sigmas, True, guidance_interval)
    steps = steps or 28
    sched.set_timesteps(num_inference_steps=steps)
    g = 7.0 if guidance is None else guidance
    return Sampling(steps, float(g), None, tuple(float(s) for s in sched.sigmas), False, guidance_interval)
