"""What a recipe stage is: its context (run directory, earlier outputs, the model it refers to)
and the one registry of stage kinds: `@register_stage(ConfigClass)` on the implementation, in
the stage's own module next to its config. The recipe schema's stage union is built from this
registry; the runner (`recipes/runner.py`) drives the implementations; stages never import it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from fewstep.recipes.schema import Recipe

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
            from fewstep.sd3_pipeline import resolve_model

            return self.model_override or resolve_model(self.recipe.model)
        if ref in self.outputs:
            return self.outputs[ref]
        from fewstep.sd3_pipeline import resolve_model

        return resolve_model(ref)

    def work_dir(self, name: str) -> Path:
        path = self.run_dir / ".work" / name
        path.mkdir(parents=True, exist_ok=True)
        return path


class StageImpl(Protocol):
    def inputs(self, cfg: Any, ctx: StageContext) -> dict[str, Path]: ...

    def run(self, cfg: Any, ctx: StageContext, out: Path) -> dict[str, Any]: ...


STAGES: dict[str, StageImpl] = {}
STAGE_CONFIGS: dict[str, type[BaseModel]] = {}

NAME_RE = r"^[a-z0-9][a-z0-9_.-]*$"
MODEL_HELP = "'teacher' (the recipe's model), an earlier stage, zoo:<name> or a path"


def stage_name_field(default_help: str) -> Any:
    return Field(None, pattern=NAME_RE, max_length=64, description=f"stage name (defaults to {default_help})")


def model_field() -> Any:
    return Field("teacher", description=MODEL_HELP)


def register_stage(config: type[BaseModel]) -> Callable[[type], type]:
    """Class decorator: the implementation of recipe stages configured by `config` (whose `kind`
    literal names the stage kind)."""
    kind = config.model_fields["kind"].default

    def deco(cls: type) -> type:
        if kind in STAGES:
            raise ValueError(f"stage kind {kind!r} is registered already")
        STAGES[kind] = cls()
        STAGE_CONFIGS[kind] = config
        return cls

    return deco
