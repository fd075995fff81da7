"""Timing shared by the benchmark scripts (run as `python benchmarks/<script>.py`)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall times of `repeats` calls of `fn` after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def log_component_calls(bundle) -> dict[str, list[float]]:
    """Wrap the bundle's `run_component`: the returned dict gets each component's call times
    (clear it to start a new log)."""
    log: dict[str, list[float]] = {}
    original = bundle.run_component

    def run_component(name, feeds):
        start = time.perf_counter()
        out = original(name, feeds)
        log.setdefault(name, []).append(time.perf_counter() - start)
        return out

    bundle.run_component = run_component
    return log


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of `repeats` calls of `fn` after `warmup` untimed calls."""
    return statistics.median(seconds(fn, repeats, warmup))
