"""A student's K timesteps expressed by diffusers' stock `FlowMatchEulerDiscreteScheduler`, so that
every client that reads the student's `scheduler_config.json` — stock diffusers
(`pipe(prompt, num_inference_steps=K)`), optimum-intel, OpenVINO GenAI — samples the student on
its own timesteps without being told `sigmas=`.

The stock scheduler spaces K values linearly from 1 to its `sigma_min`, applies `shift`
(t' = s t / (1 + (s - 1) t)) and, with `shift_terminal`, stretches the result so that the last
timestep equals `shift_terminal`. Timesteps the teacher's scheduler gives as it is (the distill
config's `grid: scheduler`) keep it unchanged, with no `shift_terminal`: OpenVINO GenAI 2026.4
ignores that key, so only such students sample right there. Otherwise the last student timestep
fixes `shift_terminal` and `shift` is fitted to the rest. Two free parameters express K <= 2
exactly and fewstep's default 4-step grid (shift 3, evenly spaced unshifted sigmas) to float32
precision; anything else is fitted and the
error recorded (`exact` only below `EXACT_TOL`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from diffusers import FlowMatchEulerDiscreteScheduler

EXACT_TOL = 1e-5  # in timestep units (0..1): 0.01 of diffusers' 1000-step timestep scale


@dataclass(frozen=True)
class StockFit:
    shift: float
    shift_terminal: float | None
    max_error: float  # largest |fitted - wanted| over the K timesteps
    timesteps: tuple[float, ...]  # what the stock scheduler gives with these settings (K values)
    call_sigmas: tuple[float, ...]  # `sigmas=` that reproduce them through the same scheduler

    @property
    def exact(self) -> bool:
        return self.max_error <= EXACT_TOL

    @property
    def shift_only(self) -> bool:
        """Exact with `shift` alone: clients that ignore `shift_terminal` (OpenVINO GenAI 2026.4)
        sample these timesteps too."""
        return self.exact and self.shift_terminal is None

    def to_json(self) -> dict:
        return {**asdict(self), "exact": self.exact, "shift_only": self.shift_only}


def stock_timesteps(config: dict, steps: int, shift: float, shift_terminal: float | None) -> np.ndarray:
    """The K timesteps (0..1) the stock scheduler of `config` gives for `num_inference_steps=steps`."""
    sched = FlowMatchEulerDiscreteScheduler.from_config(
        config, shift=shift, shift_terminal=shift_terminal, use_dynamic_shifting=False
    )
    sched.set_timesteps(num_inference_steps=steps)
    return sched.sigmas.numpy()[:-1].astype(np.float64)


def _call_sigmas(config: dict, steps: int, shift: float) -> tuple[float, ...]:
    """The unshifted grid the stock path starts from (passing it as `sigmas=` gives the same result)."""
    sched = FlowMatchEulerDiscreteScheduler.from_config(config, shift=shift, use_dynamic_shifting=False)
    lo = sched._sigma_to_t(sched.sigma_min) / sched.config.num_train_timesteps
    return tuple(float(s) for s in np.linspace(1.0, lo, steps))


def fit_stock_schedule(timesteps: list[float], config: dict) -> StockFit:
    """The stock scheduler settings closest to the student's K timesteps (K + 1 values ending at 0,
    or K values): `shift` alone where it expresses them (every client, GenAI included), else
    `shift` with `shift_terminal`."""
    want = np.asarray([t for t in timesteps if t > 0], np.float64)
    steps = len(want)
    own_shift = float(config.get("shift", 1.0))
    shift_only = _fit(config, want, None, own_shift)
    if shift_only.exact or steps == 1:
        return shift_only
    return _fit(config, want, float(want[-1]), own_shift)


def _fit(config: dict, want: np.ndarray, terminal: float | None, own_shift: float) -> StockFit:
    """The best `shift` for a given terminal (None: no stretch); the teacher's own shift where exact."""
    from scipy.optimize import minimize_scalar

    steps = len(want)

    def error(shift: float) -> float:
        return float(np.abs(stock_timesteps(config, steps, shift, terminal) - want).max())

    def fit(shift: float) -> StockFit:
        got = stock_timesteps(config, steps, shift, terminal)
        return StockFit(
            shift=shift,
            shift_terminal=terminal,
            max_error=float(np.abs(got - want).max()),
            timesteps=tuple(float(t) for t in got),
            call_sigmas=_call_sigmas(config, steps, shift),
        )

    own = fit(own_shift)  # the teacher's shift, where it already fits, is kept
    if own.exact:
        return own
    grid = np.geomspace(0.05, 50.0, 60)
    start = float(grid[int(np.argmin([error(s) for s in grid]))])
    res = minimize_scalar(error, bounds=(start / 1.5, start * 1.5), method="bounded", options={"xatol": 1e-10})
    return fit(float(res.x) if res.fun <= error(start) else start)


def stock_scheduler(config: dict, fit: StockFit) -> FlowMatchEulerDiscreteScheduler:
    """The student's scheduler: the teacher's config with the fitted shift and terminal."""
    return FlowMatchEulerDiscreteScheduler.from_config(
        config, shift=fit.shift, shift_terminal=fit.shift_terminal, use_dynamic_shifting=False
    )
