"""Do user captions survive tokenization? The issue's case: captions "a <adjective> <noun> <key
word>" in an image folder, tokenized by the shapes-only vocabulary with its 16-token slot (what
`zoo train --data imagefolder:` did before) and by the vocabulary and slot fitted to the captions.

    python benchmarks/caption_fit.py [--captions 500]

Prints tokens per caption and how many captions lose their key word, for both.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

ADJECTIVES = ["magnificent", "weathered", "luminous", "crumbling", "translucent", "mischievous", "ornate", "rusty"]
NOUNS = ["lighthouse", "butterfly", "cathedral", "locomotive", "jellyfish", "typewriter", "greenhouse", "saxophone"]
KEYS = ["sunrise", "midnight", "underwater", "snowstorm", "autumn", "desert", "neon", "fog"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captions", type=int, default=500)
    a = ap.parse_args()
    from PIL import Image

    from fewstep.zoo.tokenizers import build_clip_tokenizer
    from fewstep.zoo.train import TrainConfig, fit_text

    rng = np.random.default_rng(0)
    captions = [f"a {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(KEYS)}" for _ in range(a.captions)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "0.png")
        rows = [json.dumps({"file_name": "0.png", "text": c}) for c in captions]
        (root / "metadata.jsonl").write_text("\n".join(rows))
        cfg, record = fit_text(TrainConfig(out=root / "out", data=f"imagefolder:{root}"))
    for label, tok, slot in (
        ("shapes vocabulary, 16-token slot (before)", build_clip_tokenizer(16), 16),
        ("fitted vocabulary and slot (now)", build_clip_tokenizer(77, cfg.family.words), cfg.family.text_length),
    ):
        ids = tok(captions, truncation=False).input_ids
        lengths = np.array([len(i) for i in ids])
        key_lost = int(sum(n > slot for n in lengths))  # the key word is last: any cut loses it
        print(f"{label}: tokens per caption {lengths.mean():.1f} (max {lengths.max()}), slot {slot}, "
              f"captions whose key word is cut: {key_lost} of {len(captions)}")  # fmt: skip
    print(f"fit: {json.dumps(record)}")


if __name__ == "__main__":
    main()
