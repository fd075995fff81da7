"""The family seam: what the core asks of a model family, never of a particular one.

A family recognises its pipeline directories, supplies held-out prompts (for gates) and
training prompts (for calibration and fine-tunes, disjoint from the held-out ones), captioned
training data, and optionally an `Evaluation` (a domain FID and a prompt-alignment score, as
the toy family's evaluator network gives). SD3-family pipelines in diffusers layout are the
generic family (`sd3.py`); pipelines that carry a caption evaluator trained on the user's images
are the captioned family (`captioned/`); `zoo` registers its shapes family through the `fewstep.families`
entry-point group exactly as a third-party package would.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np


@dataclass
class CaptionedBatch:
    images: np.ndarray  # N, H, W, 3 float32 in [0, 1]
    captions: list[str]


class DataSource(Protocol):
    def sample(self, rng: np.random.Generator, n: int) -> CaptionedBatch: ...


def cycled_prompts(captions: list[str], n: int) -> tuple[list[str], list[Any]]:
    """n prompts from `captions` in order (cycled when more are asked for); specs are the prompts."""
    prompts = [captions[i % len(captions)] for i in range(n)]
    return prompts, list(prompts)


def drawn_prompts(captions: list[str], n: int, seed: int) -> tuple[list[str], list[Any]]:
    """n prompts drawn from `captions` with `seed` (with replacement); specs are the prompts."""
    idx = np.random.default_rng(seed).integers(0, len(captions), n)
    prompts = [captions[i] for i in idx]
    return prompts, list(prompts)


class Evaluation(ABC):
    """Scores images generated for prompts whose content is known (`specs`)."""

    @abstractmethod
    def held_out(self, n: int) -> tuple[list[str], list[Any]]:
        """n held-out prompts and their specs (never used for training or calibration)."""

    @abstractmethod
    def training(self, n: int, seed: int) -> tuple[list[str], list[Any]]:
        """n training-split prompts and specs (for choices made during distillation)."""

    @abstractmethod
    def score(self, images: np.ndarray, specs: list[Any]) -> dict[str, Any]:
        """At least `fid`, `fid_real` and `alignment` (overall), plus `per_category`."""

    def inputs(self) -> dict[str, Path]:
        """Files the scores depend on (e.g. an evaluator's weights): a recipe's eval stage re-runs
        when they change."""
        return {}


class Family(ABC):
    """A model family: how to recognise its pipelines and what to evaluate them with."""

    name: ClassVar[str]
    model_prefix: ClassVar[str | None] = None  # e.g. "zoo": `zoo:<name>` resolves through `resolve`
    data_sources: ClassVar[tuple[str, ...]] = ()  # `--data` names it provides

    @abstractmethod
    def matches(self, model_dir: Path) -> bool:
        """True when `model_dir` is one of this family's pipelines."""

    @abstractmethod
    def held_out_prompts(self, n: int, model_dir: Path | None = None) -> list[str]: ...

    @abstractmethod
    def training_prompts(self, n: int, seed: int, model_dir: Path | None = None) -> list[str]: ...

    def evaluation(self, model_dir: Path | None = None) -> Evaluation | None:
        """The family's scores for `model_dir`'s images (None: it has none). A family whose
        evaluator lives in the pipeline directory reads it from `model_dir`."""
        return None

    def carried(self, model_dir: Path) -> tuple[str, ...]:
        """Files and folders of `model_dir` (relative) that pipelines derived from it (distilled
        students) must carry to stay in the family."""
        return ()

    def resolve(self, name: str) -> Path:
        raise FileNotFoundError(f"family {self.name!r} resolves no model names")

    def data_source(self, name: str, arg: str, resolution: int) -> DataSource:
        raise ValueError(f"family {self.name!r} provides no data source {name!r}")
