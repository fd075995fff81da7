"""fewstep's seed convention: image i of a request with seed s starts from noise seeded s + i.

It is numpy-based so that the torch student, `fewstep eval` and the torch-free bundle
runtime draw identical initial latents, and so results do not depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def initial_noise(seed: int, n: int, shape: Sequence[int]) -> np.ndarray:
    """(n, *shape) float32 standard normal noise; image i uses `default_rng(seed + i)`."""
    out = np.empty((n, *shape), np.float32)
    for i in range(n):
        out[i] = np.random.default_rng(seed + i).standard_normal(tuple(shape), dtype=np.float32)
    return out
