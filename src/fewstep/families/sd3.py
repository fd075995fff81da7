"""The generic family: any SD3 / SD3.5 pipeline in diffusers layout. No evaluator (gates that
need one are off or refused, never scored with another family's), generic prompts, and the
captioned image-folder data source."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import ClassVar

import numpy as np

from fewstep.families.base import CaptionedBatch, Family

HELD_OUT_PROMPTS = (
    "a photo of a red apple on a wooden table",
    "a watercolor painting of a lighthouse at dusk",
    "two cats sleeping on a blue sofa",
    "a city street in the rain at night, neon signs",
    "a bowl of ramen, studio lighting",
    "an astronaut riding a horse on the moon",
    "a snowy mountain above a green valley",
    "a yellow sports car parked by the sea",
)
TRAINING_PROMPTS = (
    "a portrait of an old fisherman, dramatic light",
    "a red bicycle leaning on a brick wall",
    "a plate of pancakes with berries",
    "a forest path in autumn",
    "a robot reading a book in a library",
    "a sailboat on a calm lake at sunrise",
    "a bowl of oranges on a kitchen counter",
    "a dog running on the beach",
)


class SD3Family(Family):
    name: ClassVar[str] = "sd3"
    data_sources: ClassVar[tuple[str, ...]] = ("imagefolder",)

    def matches(self, model_dir: Path) -> bool:
        return True  # the fallback: asked last

    def held_out_prompts(self, n: int, model_dir: Path | None = None) -> list[str]:
        return [HELD_OUT_PROMPTS[i % len(HELD_OUT_PROMPTS)] for i in range(n)]

    def training_prompts(self, n: int, seed: int, model_dir: Path | None = None) -> list[str]:
        return [TRAINING_PROMPTS[i % len(TRAINING_PROMPTS)] for i in range(n)]

    def data_source(self, name: str, arg: str, resolution: int) -> ImageFolderSource:
        if not arg:
            raise ValueError("--data imagefolder:PATH needs a folder path")
        return ImageFolderSource(Path(arg), resolution)


HELD_OUT_SHARE = 10  # one image in 10, chosen by a hash of its file name


def is_held_out(file_name: str) -> bool:
    """Whether an image of a folder is held out from training (kept for evaluation): a stable
    function of its file name, so adding images never moves another between splits."""
    return int(hashlib.sha1(file_name.encode()).hexdigest()[:8], 16) % HELD_OUT_SHARE == 0


class ImageFolderSource:
    """Images listed in `metadata.jsonl` (`file_name`, `text`: the Hugging Face imagefolder
    convention), resized to `resolution`. `split`: "train" (the default: every image but the
    held-out one in ten, which only evaluators see), "held_out" or "all"."""

    def __init__(self, root: Path, resolution: int = 32, split: str = "train"):
        if split not in ("train", "held_out", "all"):
            raise ValueError(f"split {split!r}: allowed: train, held_out, all")
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
            if split == "all" or (split == "held_out") == is_held_out(str(row["file_name"])):
                rows.append((path, str(row["text"])))
        if not rows:
            raise ValueError(f"{meta} lists no images" + ("" if split == "all" else f" in its {split!r} split"))
        self.images = np.stack([_load(p, resolution) for p, _ in rows])
        self.captions = [t for _, t in rows]

    def sample(self, rng: np.random.Generator, n: int) -> CaptionedBatch:
        idx = rng.integers(0, len(self.captions), n)
        return CaptionedBatch(self.images[idx], [self.captions[i] for i in idx])


def _load(path: Path, resolution: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB").resize((resolution, resolution), Image.BICUBIC)
        return np.asarray(im, np.float32) / 255.0
