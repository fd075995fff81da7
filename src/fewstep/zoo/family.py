"""The toy family `zoo:shapes` behind the family seam: it recognises pipelines built with the
zoo's tokenizers, resolves `zoo:<name>`, provides the `shapes` data source, and scores images
with the shipped evaluator (domain FID, GenEval-style alignment). Registered through the
`fewstep.families` entry-point group like any third-party family."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fewstep.families.base import Evaluation, Family


class ShapesEvaluation(Evaluation):
    def inputs(self) -> dict[str, Path]:
        from fewstep.zoo.registry import zoo_path

        return {"evaluator": zoo_path("shapes-evaluator")}

    def held_out(self, n: int) -> tuple[list[str], list[Any]]:
        from fewstep.zoo import shapes_data as sd

        specs = sd.eval_prompts(n)
        return [sd.caption(s) for s in specs], specs

    def training(self, n: int, seed: int) -> tuple[list[str], list[Any]]:
        from fewstep.zoo import shapes_data as sd

        rng = np.random.default_rng(seed)
        specs = [sd.training_spec(rng) for _ in range(n)]
        return [sd.caption(s) for s in specs], specs

    def score(self, images: np.ndarray, specs: list[Any]) -> dict[str, Any]:
        from fewstep.zoo.scoring import score

        return score(images, specs)


class ShapesFamily(Family):
    name: ClassVar[str] = "shapes"
    model_prefix: ClassVar[str | None] = "zoo"
    data_sources: ClassVar[tuple[str, ...]] = ("shapes",)

    def matches(self, model_dir: Path) -> bool:
        """Pipelines built with the zoo family's tokenizers (same vocabulary and merges; padding
        and truncation settings may differ between saves)."""
        from fewstep.zoo.registry import WEIGHTS

        mine = Path(model_dir) / "tokenizer" / "tokenizer.json"
        zoo = WEIGHTS / "shapes" / "tokenizer" / "tokenizer.json"
        if not (mine.exists() and zoo.exists()):
            return False
        return json.loads(mine.read_text()).get("model") == json.loads(zoo.read_text()).get("model")

    def held_out_prompts(self, n: int, model_dir: Path | None = None) -> list[str]:
        return ShapesEvaluation().held_out(n)[0]

    def training_prompts(self, n: int, seed: int, model_dir: Path | None = None) -> list[str]:
        return self.data_source("shapes", "", 32).sample(np.random.default_rng(seed), n).captions

    def evaluation(self, model_dir: Path | None = None) -> Evaluation:
        return ShapesEvaluation()

    def resolve(self, name: str) -> Path:
        from fewstep.zoo.registry import zoo_path

        return zoo_path(name)

    def data_source(self, name: str, arg: str, resolution: int):
        from fewstep.zoo.datasets import ShapesSource

        return ShapesSource(resolution)
