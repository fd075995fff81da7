import json

import pytest

from fewstep.recipe import EvalStage, RecipeError, load_recipe, parse_recipe, recipe_schema


def _err(data) -> str:
    with pytest.raises(RecipeError) as e:
        parse_recipe(data)
    return str(e.value)


def test_demo_recipe_is_valid():
    rec = load_recipe("recipes/demo.yaml")
    assert rec.model == "zoo:shapes"
    assert isinstance(rec.stages[0], EvalStage) and rec.stages[0].steps == 28


def test_bad_value_names_path_and_value():
    msg = _err({"name": "x", "stages": [{"kind": "eval", "steps": -3}]})
    assert "stages.0.steps" in msg and "-3" in msg


def test_unknown_field_lists_allowed_fields():
    msg = _err({"name": "x", "stages": [{"kind": "eval", "stepz": 3}]})
    assert "stages.0.stepz" in msg and "allowed fields" in msg and "steps" in msg and "guidance" in msg
    msg = _err({"name": "x", "stagez": [], "stages": [{"kind": "report"}]})
    assert "stagez" in msg and "description" in msg


def test_unknown_stage_kind_lists_kinds():
    msg = _err({"name": "x", "stages": [{"kind": "evl"}]})
    assert "'evl'" in msg and "eval" in msg and "report" in msg


def test_bad_model_reference_and_duplicate_names():
    assert "stages.0.model" in _err({"name": "x", "stages": [{"kind": "eval", "model": "nope"}]})
    assert "duplicate" in _err({"name": "x", "stages": [{"kind": "eval"}, {"kind": "eval"}]})


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)


def test_override_model(tmp_path):
    assert load_recipe("recipes/demo.yaml", {"model": str(tmp_path)}).model == str(tmp_path)


def test_schema_is_json_and_lists_stage_kinds():
    schema = json.dumps(recipe_schema())
    assert "EvalStage" in schema and "ReportStage" in schema


def test_every_shipped_recipe_is_valid():
    from pathlib import Path

    recipes = sorted(Path("recipes").rglob("*.yaml"))
    assert len(recipes) >= 7
    for path in recipes:
        load_recipe(path)


def test_nested_distill_fields_are_named():
    msg = _err({"name": "x", "stages": [{"kind": "distill", "distribution_matching": {"critic_ratio": 0}}]})
    assert "stages.0.distribution_matching.critic_ratio" in msg
    msg = _err({"name": "x", "stages": [{"kind": "distill", "distribution_matching": {"gan": {"wieght": 1}}}]})
    assert "stages.0.distribution_matching.gan.wieght" in msg and "weight" in msg
    msg = _err({"name": "x", "stages": [{"kind": "distill", "steps": 3}]})
    assert "stages.0.steps" in msg and "1, 2, 4 or 8" in msg


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("guidance_interval", [0.8, 0.2], "needs 0 <= lo <= hi <= 1"),
        ("guidance_interval", [0.0, 1.5], "needs 0 <= lo <= hi <= 1"),
        ("guidance", float("nan"), "finite number"),
        ("gates", {"image": {"psnr_min": float("-inf")}}, "finite number"),
    ],
)
def test_values_that_cannot_be_right_are_refused_by_name(field, value, message):
    from pydantic import ValidationError

    from fewstep.compile.config import CompileConfig

    with pytest.raises(ValidationError, match=message):
        CompileConfig(target="onnxruntime-cpu", **{field: value})
