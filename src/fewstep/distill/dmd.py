"""Distribution matching for few-step flows: timestep sharing, or DMD2's re-noising.

Real score R = the frozen teacher with CFG; fake score F = a copy of the teacher trained to
model the student's outputs. The generator's gradient g = (x0_F - x0_R) / mean|x - x0_R|
(float32, NaNs zeroed) is applied through L = 0.5 || x - sg(x - g) ||^2.
"""

from __future__ import annotations

import torch

from fewstep.distill.schedule import cfg_velocity, student_sample, velocity


def shifted_uniform(
    n: int, shift: float, generator: torch.Generator | None = None, device: torch.device | None = None
) -> torch.Tensor:
    """t drawn uniformly, then shifted as SD3's sampler shifts (clamped away from 0 and 1).
    Drawn from the CPU generator on every device, so a run's random stream does not depend on it."""
    u = torch.rand(n, generator=generator).clamp(0.02, 0.98)
    return (shift * u / (1 + (shift - 1) * u)).to(device or "cpu")


@torch.no_grad()
def dm_direction(fake, teacher, x_t, t, cond, uncond, guidance: float, interval=None) -> torch.Tensor:
    """g = (x0_F - x0_R) / mean(|x_t - x0_R|), per sample, in float32 with NaNs zeroed."""
    tt = t.view(-1, 1, 1, 1).float()
    x = x_t.float()
    x0_fake = x - tt * velocity(fake, x, t, *cond).float()
    x0_real = x - tt * cfg_velocity(teacher, x, t, cond, uncond, guidance, interval).float()
    norm = (x - x0_real).abs().mean(dim=(1, 2, 3), keepdim=True).clamp(min=1e-6)
    return torch.nan_to_num((x0_fake - x0_real) / norm)


def generator_point(
    student, noise, k: int, timesteps: list[float], student_cond, timestep_sharing: bool, shift: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward-simulate k student steps, then predict with gradient.

    Returns (x, t, x0_student): the point where the distribution gradient is evaluated and
    its noise level, plus the student's x0 prediction. Timestep sharing moves along the
    predicted velocity to the student's next timestep (on the final segment, a random
    point of it); re-noising adds fresh noise to x0 at a random shifted t.
    """
    x_k = student_sample(student, noise, timesteps, student_cond, stop=k)
    t_k = timesteps[k]
    v = velocity(student, x_k, t_k, *student_cond)
    x0 = x_k - t_k * v
    n = noise.shape[0]
    if timestep_sharing:
        if k + 1 < len(timesteps) - 1:
            t = torch.full((n,), timesteps[k + 1], device=noise.device)
        else:
            t = t_k * torch.rand(n).clamp(0.05, 0.95).to(noise.device)
        x = x_k + (t.view(-1, 1, 1, 1) - t_k) * v
    else:
        t = shifted_uniform(n, shift, device=noise.device)
        tt = t.view(-1, 1, 1, 1)
        x = (1 - tt) * x0 + tt * torch.randn(x0.shape, dtype=x0.dtype).to(x0.device)
    return x, t, x0


def dm_loss(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """0.5 || x - sg(x - g) ||^2 (mean over elements): d loss / dx = g / numel."""
    return 0.5 * ((x - (x - g).detach()) ** 2).mean()


def fake_score_loss(
    fake, x0_student, cond, timesteps: list[float], shift: float, timestep_sharing: bool
) -> torch.Tensor:
    """Flow matching of F on detached student samples (half the batch at the shared timesteps)."""
    n, device = x0_student.shape[0], x0_student.device
    t = shifted_uniform(n, shift)
    if timestep_sharing and len(timesteps) > 2:
        shared = torch.tensor(timesteps[1:-1])
        pick = shared[torch.randint(len(shared), (n,))]
        t = torch.where(torch.rand(n) < 0.5, pick, t)
    t = t.to(device)
    eps = torch.randn(x0_student.shape, dtype=x0_student.dtype).to(device)  # the CPU stream on any device
    tt = t.view(-1, 1, 1, 1)
    x_t = (1 - tt) * x0_student + tt * eps
    return ((velocity(fake, x_t, t, *cond) - (eps - x0_student)) ** 2).mean()
