"""A captioned image folder for tests: coloured squares on the left or right of 16 px images,
captioned "a <colour> square on the <side>", with a filler "a picture of" in front of some
captions at random (a template word no image shows)."""

import json

import numpy as np
from PIL import Image

COLOURS = {"red": (230, 30, 30), "green": (30, 200, 30), "blue": (40, 60, 240)}


def scene(colour: str, side: str, rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((16, 16, 3), np.uint8) + rng.integers(0, 30, 3).astype(np.uint8)
    x = int(rng.integers(0, 3)) + (0 if side == "left" else 9)
    y = int(rng.integers(3, 8))
    img[y : y + 6, x : x + 6] = COLOURS[colour]
    return img


def parse(caption: str) -> tuple[str, str]:
    """(colour, side) of a caption."""
    words = caption.split()
    return next(w for w in words if w in COLOURS), words[-1]


def write_folder(root, n=400, seed=0, filler=0.0):
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        colour, side = list(COLOURS)[i % 3], ("left", "right")[(i // 3) % 2]
        Image.fromarray(scene(colour, side, rng)).save(root / f"img{i:04d}.png")
        prefix = "a picture of " if rng.random() < filler else ""
        rows.append(json.dumps({"file_name": f"img{i:04d}.png", "text": f"{prefix}a {colour} square on the {side}"}))
    (root / "metadata.jsonl").write_text("\n".join(rows))
    return root
