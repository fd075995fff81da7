"""The base of fewstep's typed configs: unknown fields, NaN and infinity are errors; values are
frozen; a boolean is never taken as a number (`steps: true`) and only a boolean is a boolean
(`drop_t5: 1` or `"yes"` in quotes is an error), while YAML's own lists and strings still fill
tuples and enums."""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _kinds(annotation: Any) -> set[type]:
    """The scalar types a field annotation admits (through Optional / Union / Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_kinds(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:  # Literal[1, 2, 4] would take True for 1
        return {type(a) for a in typing.get_args(annotation) if type(a) in (bool, int, float)}
    return {annotation} if annotation in (bool, int, float) else set()


@cache
def _scalar_fields(cls: type[BaseModel]) -> dict[str, set[type]]:
    return {name: k for name, f in cls.model_fields.items() if (k := _kinds(f.annotation))}


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_number_mixups(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, kinds in _scalar_fields(cls).items():
            value = data.get(name)
            if value is None:
                continue
            if isinstance(value, bool) and kinds & {int, float} and bool not in kinds:
                raise ValueError(f"{name}: {value!r} is a boolean; give a number")
            if kinds == {bool} and not isinstance(value, bool):
                raise ValueError(f"{name}: {str(value)[:40]!r} is not a boolean; give true or false")
        return data
