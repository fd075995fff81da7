"""Student timesteps, the student's Euler sampler and the teacher's recorded ODE."""

from __future__ import annotations

import torch

from fewstep.distill.config import FlashConfig


def shift_t(t: float, shift: float) -> float:
    """SD3's timestep shift: t' = s t / (1 + (s - 1) t)."""
    return shift * t / (1 + (shift - 1) * t)


def base_sigmas(steps: int) -> list[float]:
    """The unshifted uniform grid [1, (K-1)/K, ..., 1/K]."""
    return [1 - i / steps for i in range(steps)]


def student_timesteps(cfg: FlashConfig, scheduler_config: dict | None = None) -> list[float]:
    """T_0 = 1 > ... > T_{K-1} > T_K = 0 (K + 1 values).

    `grid: scheduler` takes the K timesteps a stock scheduler (the teacher's `scheduler_config`,
    with `scheduler_shift` where given) gives for `num_inference_steps=K`, which every client
    reproduces from the student's config alone."""
    if cfg.timesteps:
        ts = cfg.timesteps
    elif cfg.grid == "scheduler":
        if scheduler_config is None:
            raise ValueError("grid: 'scheduler' needs the teacher's scheduler config")
        from fewstep.stock_schedule import stock_timesteps

        shift = cfg.scheduler_shift or float(scheduler_config.get("shift", 1.0))
        ts = list(stock_timesteps(scheduler_config, cfg.steps, shift, None))
    else:
        ts = [shift_t(s, cfg.shift) for s in base_sigmas(cfg.steps)]
    return [float(t) for t in ts] + [0.0]


def velocity(model, x: torch.Tensor, t: torch.Tensor | float, embeds: torch.Tensor, pooled: torch.Tensor):
    """v = eps - x0 predicted by an SD3 transformer at t in [0, 1]."""
    if not torch.is_tensor(t):
        t = torch.full((x.shape[0],), float(t), device=x.device)
    return model(hidden_states=x, timestep=t * 1000, encoder_hidden_states=embeds, pooled_projections=pooled).sample


def cfg_velocity(
    model, x, t, cond: tuple, uncond: tuple, guidance: float, interval: tuple[float, float] | None = None
) -> torch.Tensor:
    """Classifier-free guidance in velocity space: v_u + w (v_c - v_u).

    With `interval = (lo, hi)` the scale applies only to samples whose t lies in [lo, hi]
    (limited-interval guidance); the others get the conditional velocity (w = 1).
    """
    both = velocity(
        model,
        torch.cat([x, x]),
        torch.cat([t, t]) if torch.is_tensor(t) else t,
        torch.cat([uncond[0], cond[0]]),
        torch.cat([uncond[1], cond[1]]),
    )
    v_u, v_c = both.chunk(2)
    if interval is None:
        return v_u + guidance * (v_c - v_u)
    tt = t if torch.is_tensor(t) else torch.full((x.shape[0],), float(t), device=x.device)
    inside = (tt >= interval[0] - 1e-6) & (tt <= interval[1] + 1e-6)
    w = torch.where(inside, float(guidance), 1.0).view(-1, 1, 1, 1).to(v_c.dtype)
    return v_u + w * (v_c - v_u)


@torch.no_grad()
def student_sample(student, noise, timesteps: list[float], cond: tuple, stop: int | None = None) -> torch.Tensor:
    """Euler walk along the student's velocity; `stop=k` returns x_k (k steps taken)."""
    x = noise
    k = len(timesteps) - 1 if stop is None else stop
    for i in range(k):
        v = velocity(student, x, timesteps[i], *cond)
        x = x + (timesteps[i + 1] - timesteps[i]) * v
    return x


def teacher_grid(teacher_steps: int, shift: float, timesteps: list[float]) -> list[float]:
    """The teacher's shifted grid joined with the student's timesteps (descending, ends at 0)."""
    grid = {round(shift_t(1 - i / teacher_steps, shift), 6) for i in range(teacher_steps)}
    grid |= {round(t, 6) for t in timesteps}
    return sorted(grid | {0.0}, reverse=True)


@torch.no_grad()
def teacher_trajectory(
    teacher,
    noise,
    timesteps: list[float],
    cond,
    uncond,
    guidance: float,
    teacher_steps: int,
    shift: float,
    interval: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Integrate the teacher ODE with CFG; return states at the student timesteps (N, K+1, ...)."""
    grid = teacher_grid(teacher_steps, shift, timesteps)
    wanted = {round(t, 6): i for i, t in enumerate(timesteps)}
    states: list[torch.Tensor | None] = [None] * len(timesteps)
    x = noise
    for t, t_next in zip(grid, grid[1:]):
        if t in wanted:
            states[wanted[t]] = x
        x = x + (t_next - t) * cfg_velocity(teacher, x, t, cond, uncond, guidance, interval)
    states[wanted[0.0]] = x
    return torch.stack(states, dim=1)  # type: ignore[arg-type]
