"""Calibrating a spatial component on crops of its input, at a size whose statistics fit in memory.

NNCF collects activation statistics by running a copy of the component with every calibrated
activation kept alive at once: SD3.5's VAE decoder at 1024 px asked the CPU plugin for 30.7 GB,
on a 24 GiB machine, 18 minutes into a build. The decoder is convolutional but for one attention
at its lowest resolution, so a crop of a latent is an input it accepts, whose activations have the
local statistics of the full-size ones. The component is exported a second time at the crop size
(same torch module, so every op has the same name), quantized on crops of the calibration
latents, and its quantizers and quantized weights carried to the full size by giving its shape
constants the full-size export's values (`RESIZERS`, per quantization backend).

What the crops cannot see is the attention over the whole latent: its softmax is calibrated on
fewer keys. The component's gates against torch, at full size, judge the result.
"""

from __future__ import annotations

import numpy as np

# components whose input may be cropped: component -> its spatial input (N, C, H, W)
SPATIAL_INPUTS = {"vae_decoder": "latents"}
SMALLEST_CROP = 8
# the statistics estimate (every real op output, f32) over what the CPU plugin asked for: 51.9 GB
# against 30.7 GB for SD3.5's VAE decoder at 1024 px. The margin stays: the crop must fit beside
# the build's own memory.
MEMORY_SHARE = 0.8


def crop_items(items: list[dict[str, np.ndarray]], name: str, size: int) -> list[dict[str, np.ndarray]]:
    """Each calibration input cut into a grid of `size` x `size` crops of its last two axes
    (the last row and column of crops aligned to the far edges where `size` does not divide the
    side), so every position of every latent is calibrated on."""
    out = []
    for feeds in items:
        x = feeds[name]
        h, w = x.shape[-2:]
        if size > min(h, w):
            raise ValueError(f"calibration crop {size} is larger than the {h}x{w} input {name!r}")
        rows = sorted({*range(0, h - size + 1, size), h - size})
        cols = sorted({*range(0, w - size + 1, size), w - size})
        for r in rows:
            for c in cols:
                crop = dict(feeds)
                crop[name] = np.ascontiguousarray(x[..., r : r + size, c : c + size])
                out.append(crop)
    return out


def auto_crop(side: int, full_bytes: int, available: int | None) -> int | None:
    """The largest crop side (the full side halved until it fits) whose statistics, estimated as
    `full_bytes` scaled by area, fit in `MEMORY_SHARE` of the available memory; None where the
    full size fits or the memory is unknown."""
    if available is None:
        return None
    budget = MEMORY_SHARE * available
    size = side
    while full_bytes * (size / side) ** 2 > budget:
        if size // 2 < SMALLEST_CROP:
            raise MemoryError(
                f"calibration statistics need about {full_bytes / 1e9:.1f} GB at full size and would not fit "
                f"in {budget / 1e9:.1f} GB even on {SMALLEST_CROP}x{SMALLEST_CROP} crops"
            )
        size //= 2
    return None if size == side else size


# backend -> the module with its `statistics_bytes(model) -> int` and
# `to_full_size(quantized_crop, full_export, out) -> Path`
RESIZERS = {"openvino": "fewstep.quantize.openvino_spatial"}


def resizer(backend: str | None):
    """The backend's crop-calibration module, or None where the backend has none."""
    import importlib

    module = RESIZERS.get(backend or "")
    return None if module is None else importlib.import_module(module)
