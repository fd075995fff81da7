"""`--data shapes`: unlimited procedural training scenes (held-out meanings excluded). Data
specs are parsed by `fewstep.families.open_source` (`imagefolder:PATH` is the generic family's)."""

from __future__ import annotations

import numpy as np

from fewstep.families.base import CaptionedBatch
from fewstep.zoo import shapes_render as sr


class ShapesSource:
    """Unlimited procedural training images (held-out meanings excluded)."""

    def __init__(self, resolution: int = 32):
        self.resolution = resolution

    def sample(self, rng: np.random.Generator, n: int) -> CaptionedBatch:
        b = sr.sample_batch(rng, n, self.resolution)
        return CaptionedBatch(b.images, b.captions)
