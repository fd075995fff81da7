import json

import pytest
from typer.testing import CliRunner

from fewstep.cli import app

runner = CliRunner()
COMMANDS = [
    [],
    ["run"],
    ["eval"],
    ["recipe"],
    ["recipe", "check"],
    ["recipe", "schema"],
    ["zoo"],
    ["zoo", "train"],
    ["zoo", "path"],
    ["zoo", "list"],
    ["version"],
    ["targets"],
    ["compile"],
    ["gate"],
    ["generate"],
    ["conformance"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(cmd):
    res = runner.invoke(app, [*cmd, "--help"])
    assert res.exit_code == 0, res.output
    assert "Usage" in res.output


def test_recipe_check_reports_field_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages:\n  - kind: eval\n    guidance: lots\n")
    res = runner.invoke(app, ["recipe", "check", str(bad)])
    assert res.exit_code == 2
    assert "stages.0.guidance" in res.output and "lots" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["recipe", "check", str(bad), "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)["valid"] is False


def test_recipe_check_ok_and_schema():
    res = runner.invoke(app, ["recipe", "check", "recipes/demo.yaml", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["stages"] == [
        "teacher-28",
        "teacher-4",
        "student-4",
        "openvino-int8",
        "onnxruntime-fp32",
        "report",
    ]
    res = runner.invoke(app, ["recipe", "schema"])
    assert res.exit_code == 0 and "properties" in json.loads(res.stdout)


def test_zoo_path_and_unknown_entry():
    res = runner.invoke(app, ["zoo", "path", "shapes"])
    assert res.exit_code == 0 and res.stdout.strip().endswith("shapes")
    res = runner.invoke(app, ["zoo", "path", "nope"])
    assert res.exit_code == 2 and "allowed" in res.output


def test_run_with_missing_model_dir_names_the_path(tmp_path):
    res = runner.invoke(app, ["run", "recipes/demo.yaml", "--model", str(tmp_path / "none"), "-o", str(tmp_path / "r")])
    assert res.exit_code == 2 and "model_index.json" in res.output and "Traceback" not in res.output


def test_eval_json_on_a_tiny_pipeline(tiny_pipeline_dir, tmp_path):
    grid = tmp_path / "g.png"
    res = runner.invoke(
        app,
        [
            "eval",
            str(tiny_pipeline_dir),
            "--steps",
            "2",
            "--num-images",
            "10",
            "--guidance",
            "1.0",
            "--json",
            "--grid",
            str(grid),
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["steps"] == 2 and out["images"] == 10
    assert set(out["per_category"]) >= {"colour", "shape"}
    assert 0.0 <= out["alignment"] <= 1.0 and out["fid"] > 0
    assert grid.exists()


def test_run_end_to_end_then_cached(tiny_pipeline_dir, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: e2e\nmodel: zoo:shapes\nstages:\n"
        "  - {kind: eval, name: a, steps: 2, guidance: 2.0, num_images: 8}\n"
        "  - {kind: eval, name: b, steps: 1, guidance: 1.0, num_images: 8}\n"
        "  - {kind: report}\n"
    )
    args = ["run", str(recipe), "--model", str(tiny_pipeline_dir), "-o", str(tmp_path / "run"), "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert [s["status"] for s in json.loads(first.stdout)["stages"]] == ["ran", "ran", "ran"]
    metrics = json.loads((tmp_path / "run" / "a" / "metrics.json").read_text())
    assert metrics["images"] == 8 and metrics["steps"] == 2
    report = json.loads((tmp_path / "run" / "report" / "report.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["a", "b"]
    assert (tmp_path / "run" / "report" / "a-grid.png").exists()
    second = runner.invoke(app, args)
    assert [s["status"] for s in json.loads(second.stdout)["stages"]] == ["cached", "cached", "cached"]


def test_eval_of_a_student_defaults_to_its_own_steps_without_cfg(tiny_student_dir):
    import json

    from typer.testing import CliRunner

    from fewstep.cli import app

    res = CliRunner().invoke(app, ["eval", str(tiny_student_dir), "--num-images", "8", "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["steps"] == 2 and result["guidance"] == 1.0 and result["student"] is True
