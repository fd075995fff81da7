"""What a recipe stage is: its context (run directory, earlier outputs, the model it refers to)
and the registry of stage implementations by kind, filled by `@register_stage` next to each
implementation. The runner (`fewstep.runner`) drives them; stages never import the runner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fewstep.recipe import Recipe

MANIFEST = "manifest.json"


@dataclass
class StageContext:
    recipe: Recipe
    run_dir: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    progress: bool = True
    model_override: Path | None = None
    stage: str = ""  # name of the stage being run (its output directory is a temporary one)

    def model_dir(self, ref: str = "teacher") -> Path:
        """The directory a stage's `model` reference points at."""
        if ref == "teacher":
            from fewstep.pipelines import resolve_model

            return self.model_override or resolve_model(self.recipe.model)
        if ref in self.outputs:
            return self.outputs[ref]
        from fewstep.pipelines import resolve_model

        return resolve_model(ref)

    def work_dir(self, name: str) -> Path:
        path = self.run_dir / ".work" / name
        path.mkdir(parents=True, exist_ok=True)
        return path


class StageImpl(Protocol):
    def inputs(self, cfg: Any, ctx: StageContext) -> dict[str, Path]: ...

    def run(self, cfg: Any, ctx: StageContext, out: Path) -> dict[str, Any]: ...


STAGES: dict[str, StageImpl] = {}


def register_stage(kind: str) -> Callable[[type], type]:
    """Class decorator: register a stage implementation for recipe stages of `kind`."""

    def deco(cls: type) -> type:
        STAGES[kind] = cls()
        return cls

    return deco
