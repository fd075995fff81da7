"""Write a captioned image folder (`metadata.jsonl` with `file_name` and `text`, the Hugging Face
imagefolder layout) to train and check the caption evaluator with.

- `shapes`: scenes from the toy family's training grammar (`zoo:shapes` data), for the rank
  agreement with the exact shapes evaluator (`benchmarks/evaluator_agreement.py`).
- `digits`: real handwriting. The 1797 scans of scikit-learn's bundled UCI handwritten digits
  (`sklearn.datasets.load_digits`, 8x8, 17 grey levels, shipped inside the PyPI wheel) composed
  into 32 px scenes: one digit, or two side by side, each in an ink colour, captioned
  "a red seven" / "a red seven left of a blue two". A scene held out by fewstep's split (a hash
  of its file name) is drawn only from held-out scans (every tenth), so no scan is seen on both
  sides.

Usage: python benchmarks/make_caption_folder.py digits -o runs/data/digits [--n 6000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from fewstep.families.sd3 import is_held_out
from fewstep.fsutil import atomic_dir

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
INKS = {"red": (235, 50, 40), "green": (40, 200, 60), "blue": (60, 90, 255), "yellow": (240, 220, 40),
        "white": (240, 240, 240)}  # fmt: skip


def digit_scenes(n: int, seed: int) -> list[tuple[np.ndarray, str]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    glyphs = digits.images.astype(np.float32) / 16.0
    pools = {held: [i for i in range(len(glyphs)) if (i % 10 == 0) == held] for held in (False, True)}
    rng = np.random.default_rng(seed)
    scenes = []
    for k in range(n):
        pool = pools[is_held_out(f"{k:05d}.png")]
        count = 1 if rng.random() < 0.5 else 2
        canvas = np.zeros((32, 32, 3), np.float32) + rng.uniform(0.0, 0.08, 3)
        parts = []
        for j in range(count):
            idx = int(rng.choice(pool))
            ink = str(rng.choice(list(INKS)))
            size = 14 if count == 2 else int(rng.integers(16, 23))
            glyph = np.asarray(Image.fromarray(glyphs[idx]).resize((size, size), Image.BILINEAR)).clip(0, 1)
            if count == 1:
                x0 = int(rng.integers(0, 33 - size))
            else:
                x0 = int(rng.integers(0, 17 - size)) + 16 * j
            y0 = int(rng.integers(0, 33 - size))
            region = canvas[y0 : y0 + size, x0 : x0 + size]
            region[:] = region * (1 - glyph[..., None]) + glyph[..., None] * (np.array(INKS[ink]) / 255.0)
            parts.append(f"a {ink} {DIGIT_WORDS[int(digits.target[idx])]}")
        scenes.append((canvas, " left of ".join(parts)))
    return scenes


def shapes_scenes(n: int, seed: int) -> list[tuple[np.ndarray, str]]:
    from fewstep.zoo.datasets import ShapesSource

    batch = ShapesSource(32).sample(np.random.default_rng(seed), n)
    return list(zip(batch.images, batch.captions))


SOURCES = {"digits": digit_scenes, "shapes": shapes_scenes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", choices=sorted(SOURCES))
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.output.exists():
        raise SystemExit(f"error: {args.output} exists; remove it or choose another --output")
    scenes = SOURCES[args.source](args.n, args.seed)
    with atomic_dir(args.output) as tmp:
        rows = []
        for k, (image, caption) in enumerate(scenes):
            name = f"{k:05d}.png"
            Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8)).save(tmp / name)
            rows.append(json.dumps({"file_name": name, "text": caption}))
        (tmp / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    held = sum(is_held_out(f"{k:05d}.png") for k in range(len(scenes)))
    print(f"{args.output}: {len(scenes)} images ({held} held out), e.g. {scenes[0][1]!r}, {scenes[1][1]!r}")


if __name__ == "__main__":
    main()
