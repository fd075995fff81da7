"""Image grids for people: cells separated by a gutter, each with its prompt written under it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GUTTER = 6  # pixels between cells (after upscaling)
LINES = 3  # caption lines per cell


def save_grid(
    images: np.ndarray,
    path: Path,
    captions: list[str] | None = None,
    cols: int = 8,
    scale: int = 4,
) -> Path:
    """Write up to cols x cols images (N, H, W, 3 in [0, 1]) as a PNG grid, nearest-neighbour
    upscaled by `scale`; with `captions`, each cell's caption is wrapped under it."""
    images = np.asarray(images)[: cols * cols]
    n = len(images)
    cols = min(cols, max(n, 1))
    rows = -(-n // cols)
    h, w = images.shape[1] * scale, images.shape[2] * scale
    font = ImageFont.load_default()
    line_h = 11
    chars = max(8, w // 6)
    text_h = LINES * line_h + 4 if captions else 0
    sheet = Image.new(
        "RGB", (cols * w + (cols + 1) * GUTTER, rows * (h + text_h) + (rows + 1) * GUTTER), (255, 255, 255)
    )
    draw = ImageDraw.Draw(sheet)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        x, y = GUTTER + c * (w + GUTTER), GUTTER + r * (h + text_h + GUTTER)
        cell = Image.fromarray((np.clip(im, 0, 1) * 255).round().astype(np.uint8)).resize((w, h), Image.NEAREST)
        sheet.paste(cell, (x, y))
        if captions and i < len(captions):
            lines = textwrap.wrap(str(captions[i]), chars)[:LINES]
            for k, line in enumerate(lines):
                draw.text((x, y + h + 2 + k * line_h), line, fill=(20, 20, 20), font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sheet.save(tmp, format="PNG")
    tmp.replace(path)
    return path


def difference(test: np.ndarray, ref: np.ndarray, gain: float = 8.0) -> np.ndarray:
    """|test - ref| amplified by `gain` (black where the images agree)."""
    return np.clip(np.abs(np.asarray(test, np.float32) - np.asarray(ref, np.float32)) * gain, 0.0, 1.0)
