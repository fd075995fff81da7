"""Recipe files: YAML validated once, at the boundary, into typed stage configs.

A recipe names a model (a diffusers directory or `zoo:<name>`) and a list of stages, each
selected by its `kind`. Errors name the field's path, the bad value and what is allowed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

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


def _allowed_fields(loc: tuple, data: Any) -> list[str]:
    """Field names allowed at `loc` (for unknown-field errors)."""
    model: Any = Recipe
    node = data
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else {}
            continue
        if part in STAGE_TYPES and isinstance(node, dict) and node.get("kind") == part:
            model = STAGE_TYPES[part]
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        node = node.get(part, {}) if isinstance(node, dict) else {}
        ann = field.annotation
        if get_origin(ann) is list:
            ann = get_args(ann)[0]
        if get_origin(ann) is Annotated:
            ann = get_args(ann)[0]
        if isinstance(node, list):
            model = ann
            continue
        model = ann
    if isinstance(node, dict) and node.get("kind") in STAGE_TYPES:
        model = STAGE_TYPES[node["kind"]]
    return sorted(model.model_fields) if hasattr(model, "model_fields") else []


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format(err: ValidationError, data: Any) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p in STAGE_TYPES))
        path = ".".join(str(p) for p in loc) or "<recipe>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            allowed = _allowed_fields(e["loc"][:-1], data)
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
        raise RecipeError(f"{source}: invalid recipe\n{_format(err, data)}") from None


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
