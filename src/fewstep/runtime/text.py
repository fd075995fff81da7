"""Tokenize prompts with the `tokenizers` library alone (no transformers on the runtime path).

Reproduces the transformers tokenizers the pipeline was built with: their `tokenizer.json`
(normaliser, pre-tokeniser, model, post-processor with special tokens) plus fixed-length
padding and truncation, as `StableDiffusion3Pipeline` calls them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TokenizerSpec:
    """Where a tokenizer lives in a bundle and how the pipeline pads it."""

    path: str  # relative to the bundle: a folder holding tokenizer.json
    max_length: int
    pad_token: str


class PromptTokenizer:
    """Fixed-length token ids (N, max_length) int64 for a list of prompts."""

    def __init__(self, folder: Path, spec: TokenizerSpec):
        from tokenizers import Tokenizer

        self.name, self.max_length = Path(spec.path).name, spec.max_length
        path = Path(folder) / "tokenizer.json"
        if not path.exists():
            raise FileNotFoundError(f"tokenizer file is missing: {path}")
        self.tokenizer = Tokenizer.from_file(str(path))
        pad_id = self.tokenizer.token_to_id(spec.pad_token)
        if pad_id is None:
            raise ValueError(f"{path}: pad token {spec.pad_token!r} is not in the vocabulary")
        self.tokenizer.enable_truncation(max_length=spec.max_length)
        self.tokenizer.enable_padding(length=spec.max_length, pad_id=pad_id, pad_token=spec.pad_token)

    def __call__(self, prompts: list[str]) -> np.ndarray:
        from fewstep.prompt_length import warn_cut

        encodings = self.tokenizer.encode_batch(prompts)
        cut = [(p, self.max_length + sum(len(o.ids) for o in e.overflowing)) for p, e in zip(prompts, encodings)
               if e.overflowing]  # fmt: skip
        warn_cut(cut, self.max_length, self.name)
        return np.asarray([e.ids for e in encodings], dtype=np.int64)
