"""Trajectory guidance: L_TG = || x_{T_i} + (T_{i+1} - T_i) G(x_{T_i}, T_i, c) - x_{T_{i+1}} ||^2."""

from __future__ import annotations

import torch

from fewstep.distill.schedule import velocity


def trajectory_guidance_loss(
    student, states: torch.Tensor, step: torch.Tensor, timesteps: list[float], cond: tuple
) -> torch.Tensor:
    """states: N, K+1, ...; step: N indices in [0, K) picking the jump each sample learns."""
    ts = torch.tensor(timesteps, dtype=states.dtype, device=states.device)
    idx = torch.arange(states.shape[0], device=states.device)
    step = step.to(states.device)
    x_i, x_next = states[idx, step], states[idx, step + 1]
    t_i, t_next = ts[step], ts[step + 1]
    v = velocity(student, x_i, t_i, *cond)
    pred = x_i + (t_next - t_i).view(-1, 1, 1, 1) * v
    return ((pred - x_next) ** 2).mean()
