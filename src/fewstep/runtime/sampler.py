"""The flow-matching Euler sampler of `FlowMatchEulerDiscreteScheduler`, in numpy.

The bundle records the exact sigmas the diffusers scheduler uses (K + 1 values ending at
0); the transformer sees `timestep = 1000 * sigma` and x moves by (sigma_next - sigma) * v.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Velocity = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (latents, timesteps) -> velocity


def step_timesteps(sigmas: Sequence[float], timestep_scale: float = 1000.0) -> list[np.float32]:
    """The transformer's timestep at each step (every sigma but the last), as `sample` feeds it."""
    return [np.float32(sigma * timestep_scale) for sigma in sigmas[:-1]]


def sample(latents: np.ndarray, sigmas: Sequence[float], velocity: Velocity, timestep_scale: float = 1000.0):
    """Integrate from noise (sigma = sigmas[0]) to the data end (sigmas[-1] = 0)."""
    x = latents.astype(np.float32, copy=True)
    for t_step, sigma, sigma_next in zip(step_timesteps(sigmas, timestep_scale), sigmas[:-1], sigmas[1:]):
        t = np.full((x.shape[0],), t_step, np.float32)
        v = velocity(x, t)
        x = x + np.float32(sigma_next - sigma) * v.astype(np.float32)
    return x


def in_interval(t: float, interval: Sequence[float] | None, timestep_scale: float = 1000.0) -> bool:
    """Whether guidance applies at timestep t (interval in sigma units, inclusive)."""
    if interval is None:
        return True
    sigma = t / timestep_scale
    return interval[0] - 1e-6 <= sigma <= interval[1] + 1e-6


def guided(
    velocity_fn: Callable[..., np.ndarray], scale: float, interval: Sequence[float] | None = None
) -> Callable[..., np.ndarray]:
    """Classifier-free guidance: v_u + scale * (v_c - v_u), the unconditional half first.

    With `interval = (lo, hi)` guidance applies only where lo <= sigma <= hi (limited-interval
    guidance, Kynkäänniemi et al. 2024); elsewhere the conditional velocity is used alone.
    """

    def fn(x: np.ndarray, t: np.ndarray, cond: dict, uncond: dict) -> np.ndarray:
        if scale <= 1.0 or not in_interval(float(t[0]), interval):
            return velocity_fn(x, t, cond)
        both = {k: np.concatenate([uncond[k], cond[k]]) for k in cond}
        v = velocity_fn(np.concatenate([x, x]), np.concatenate([t, t]), both)
        v_u, v_c = np.split(v, 2)
        return v_u + np.float32(scale) * (v_c - v_u)

    return fn
