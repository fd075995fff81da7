"""Recipe files: YAML validated once, at the boundary, into typed stage configs.

A recipe names a model (a diffusers directory or `zoo:<name>`) and a list of stages, each
selected by its `kind`. Errors name the field's path, the bad value and what is allowed.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

import fewstep.recipes.stages  # noqa: F401, E402  (registers the built-in stage kinds)
from fewstep.config import StrictModel
from fewstep.recipes.context import NAME_RE, STAGE_CONFIGS

STAGE_TYPES: dict[str, type[BaseModel]] = dict(STAGE_CONFIGS)
# the recipe's stage union, built from the one registry of stage kinds
Stage = Annotated[Union[tuple(STAGE_TYPES.values())], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007


class Recipe(StrictModel):
    """A fewstep recipe: one model, a sequence of stages."""

    name: str = Field(pattern=NAME_RE, max_length=64, description="run name; outputs go to runs/<name>/ by default")
    description: str = ""
    model: str = Field("zoo:shapes", description="a diffusers SD3-family directory or zoo:<name>")
    stages: list[Stage] = Field(min_length=1)

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must name a diffusers directory or zoo:<name>")
        return v

    @model_validator(mode="after")
    def _unique_names(self) -> Recipe:
        seen: set[str] = set()
        for i, stage in enumerate(self.stages):
            name = stage_name(stage, i)
            ref = getattr(stage, "model", "teacher")
            if ref != "teacher" and ref not in seen and not is_model_path(ref):
                earlier = ", ".join(sorted(seen)) or "none"
                raise ValueError(
                    f"stages.{i}.model: {ref!r} is neither 'teacher', an earlier stage ({earlier}), "
                    "zoo:<name> nor a directory path"
                )
            if name in seen:
                raise ValueError(f"stages.{i}: duplicate stage name {name!r}; give each stage a unique 'name'")
            seen.add(name)
        return self


def is_model_path(ref: str) -> bool:
    """A stage's `model` may also name a model directly: zoo:<name> or a path."""
    return ref.startswith("zoo:") or "/" in ref


def stage_name(stage: BaseModel, index: int) -> str:
    """The stage's own name, or its kind's default (`eval-28`, `compile-<target>-<precision>`)."""
    return getattr(stage, "name", None) or stage.default_name()  # type: ignore[attr-defined]


class RecipeError(ValueError):
    """A recipe that cannot be used; the message lists every problem, one per line."""


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic model classes an annotation can hold (through Optional, Union, Annotated,
    list and dict values)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models(get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, tuple):
        return [m for arg in get_args(annotation) for m in _models(arg)]
    if origin is dict:
        return _models(get_args(annotation)[1])
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _tagged(model: type[BaseModel], tag: str) -> bool:
    """True when one of the model's Literal fields admits `tag` (a discriminated union's loc part)."""
    return any(
        get_origin(f.annotation) is Literal and tag in get_args(f.annotation) for f in model.model_fields.values()
    )


def _allowed_fields(loc: tuple) -> list[str]:
    """Field names allowed at `loc` (for unknown-field errors; union members by their tag)."""
    models: list[type[BaseModel]] = [Recipe]
    for part in loc:
        if isinstance(part, int):
            continue
        tagged = [m for m in models if _tagged(m, part)]
        if tagged and len(models) > 1:  # a discriminated union's member, named by its tag
            models = tagged
            continue
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        if not fields:
            return []
        models = [m for f in fields for m in _models(f.annotation)]
    return sorted({name for m in models[:1] for name in m.model_fields}) if len(models) == 1 else []


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p in STAGE_TYPES))
        path = ".".join(str(p) for p in loc) or "<recipe>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            allowed = _allowed_fields(e["loc"][:-1])
            msg = f"unknown field; allowed fields: {', '.join(allowed)}"
        elif e["type"] == "union_tag_invalid":
            msg = f"unknown stage kind {e['input'].get('kind')!r}; allowed: {', '.join(STAGE_TYPES)}"
        elif e["type"] == "union_tag_not_found":
            msg = f"missing 'kind'; allowed: {', '.join(STAGE_TYPES)}"
        elif e["type"] == "missing":
            msg = "required field is missing"
        msg = re.sub(r"^Value error, ", "", msg)
        if not loc:  # whole-recipe checks name their own path
            lines.append(msg)
            continue
        if e["type"] not in ("missing", "union_tag_invalid", "union_tag_not_found", "extra_forbidden") and not (
            isinstance(e["input"], (dict, list))  # a whole-object check names its field in the message
        ):
            msg += f" (got {_short(e['input'])})"
        lines.append(f"{path}: {msg}")
    return "\n".join(lines)


def parse_recipe(data: Any, source: str = "<recipe>") -> Recipe:
    """Validate a mapping into a Recipe; raise RecipeError naming every bad field."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe must be a mapping with 'name' and 'stages'")
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise RecipeError(f"{source}: invalid recipe\n{_format(err)}") from None


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and validate a YAML recipe; `overrides` replace top-level fields (e.g. model)."""
    from fewstep.yamlio import YamlInputError, load_yaml

    path = Path(path)
    if not path.exists():
        raise RecipeError(f"recipe not found: {path}")
    try:
        data = load_yaml(path)
    except YamlInputError as err:
        raise RecipeError(str(err)) from None
    if isinstance(data, dict) and overrides:
        data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    return parse_recipe(data, str(path))


def recipe_schema() -> dict[str, Any]:
    """JSON schema of the recipe format, for editors."""
    return Recipe.model_json_schema()
