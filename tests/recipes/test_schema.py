import json

import pytest

from fewstep.recipes.schema import RecipeError, load_recipe, parse_recipe, recipe_schema
from fewstep.recipes.stages.eval import EvalStage


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


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: __import__("fewstep.quantize.config").quantize.config.Int8Config(components=["bogus"]), "allowed"),
        (lambda: __import__("fewstep.quantize.config").quantize.config.Int8Config(op_types=["NotAnOp"]), "MatMul"),
        (lambda: __import__("fewstep.quantize.config").quantize.config.WeightOnlyConfig(group_size=0), "8 or more"),
        (lambda: __import__("fewstep.distill.config").distill.config.FlashConfig(data="mnist"), "imagefolder:PATH"),
        (
            lambda: __import__("fewstep.distill.config").distill.config.FlashConfig(split_timestep={"ratios": [5, -3]}),
            "less than or equal to 1",
        ),
    ],
    ids=["bogus component", "bad op type", "group size 0", "unknown data", "merge ratio out of range"],
)
def test_scheme_and_distill_values_are_checked_against_their_meaning(build, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        build()


def test_truncation_keeps_at_least_one_layer():
    from pydantic import ValidationError

    from fewstep.compile.config import CompileConfig

    with pytest.raises(ValidationError, match="keep at least 1 layer"):
        CompileConfig(target="onnxruntime-cpu", restructure={"truncate": {"keep": {"text_encoder_3": -5}}})


def test_unknown_fields_inside_unions_list_the_members_fields():
    data = {
        "name": "x",
        "stages": [
            {"kind": "compile", "target": "onnxruntime-cpu", "quantization": {"scheme": "int8", "bogus": 1}},
            {"kind": "distill", "distribution_matching": {"gan": {"zz": 1}}},
        ],
    }
    with pytest.raises(RecipeError) as e:
        parse_recipe(data)
    text = str(e.value)
    allowed = "attention, calibration_crop, calibration_prompts"
    assert f"quantization.int8.bogus: unknown field; allowed fields: {allowed}" in text
    assert "op_types" in text
    assert "gan.zz: unknown field; allowed fields: blocks, enabled, real, reinit_p, weight" in text
