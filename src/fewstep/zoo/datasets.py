"""Captioned image sources for training: the procedural shapes set or a user's folder.

`--data shapes` draws unlimited training scenes; `--data imagefolder:PATH` reads images and
a `metadata.jsonl` with `file_name` and `text` columns (the Hugging Face imagefolder
convention).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fewstep.zoo import shapes_data as sd


@dataclass
class CaptionedBatch:
    images: np.ndarray  # N, H, W, 3 float32 in [0, 1]
    captions: list[str]


class ShapesSource:
    """Unlimited procedural training images (held-out meanings excluded)."""

    def __init__(self, resolution: int = 32):
        self.resolution = resolution

    def sample(self, rng: np.random.Generator, n: int) -> CaptionedBatch:
        b = sd.sample_batch(rng, n, self.resolution)
        return CaptionedBatch(b.images, b.captions)


class ImageFolderSource:
    """Images listed in `metadata.jsonl` (`file_name`, `text`), resized to `resolution`."""

    def __init__(self, root: Path, resolution: int = 32):
        root = Path(root)
        meta = root / "metadata.jsonl"
        if not meta.exists():
            raise FileNotFoundError(
                f"imagefolder data needs {meta} (one JSON object per line with 'file_name' and 'text')"
            )
        rows = []
        for lineno, line in enumerate(meta.read_text().splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            for key in ("file_name", "text"):
                if key not in row:
                    raise ValueError(f"{meta}:{lineno}: missing field {key!r}")
            path = root / row["file_name"]
            if not path.exists():
                raise FileNotFoundError(f"{meta}:{lineno}: image not found: {path}")
            rows.append((path, str(row["text"])))
        if not rows:
            raise ValueError(f"{meta} lists no images")
        self.images = np.stack([_load(p, resolution) for p, _ in rows])
        self.captions = [t for _, t in rows]

    def sample(self, rng: np.random.Generator, n: int) -> CaptionedBatch:
        idx = rng.integers(0, len(self.captions), n)
        return CaptionedBatch(self.images[idx], [self.captions[i] for i in idx])


def _load(path: Path, resolution: int) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB").resize((resolution, resolution), Image.BICUBIC)
        return np.asarray(im, np.float32) / 255.0


SOURCES: dict[str, Callable[[str, int], ShapesSource | ImageFolderSource]] = {
    "shapes": lambda arg, res: ShapesSource(res),
    "imagefolder": lambda arg, res: ImageFolderSource(Path(arg), res),
}


def open_source(spec: str, resolution: int = 32) -> ShapesSource | ImageFolderSource:
    """Parse `shapes` or `imagefolder:PATH` into a data source."""
    name, _, arg = spec.partition(":")
    if name not in SOURCES:
        raise ValueError(f"--data {spec!r}: unknown source {name!r}; allowed: shapes, imagefolder:PATH")
    if name == "imagefolder" and not arg:
        raise ValueError("--data imagefolder:PATH needs a folder path")
    return SOURCES[name](arg, resolution)
