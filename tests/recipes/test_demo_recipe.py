"""The default recipe end to end (`make demo`), run through the console script's entry point:
slow (about two minutes on two cores), so it runs in `make test-all`, not `make test`."""

import json
import re
from pathlib import Path

import pytest

from fewstep.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _run_json(args, capsys) -> dict:
    try:
        main(args)
    except SystemExit as e:
        assert e.code in (0, None), capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_demo_recipe_passes_its_gates_resumes_cached_and_reports(tmp_path, capsys):
    run_dir = tmp_path / "demo"
    args = ["run", str(ROOT / "recipes" / "demo.yaml"), "-o", str(run_dir), "--no-progress", "--json"]
    first = _run_json(args, capsys)
    assert [s["status"] for s in first["stages"]] == ["ran"] * 6
    for stage in ("openvino-int8", "onnxruntime-fp32"):
        manifest = json.loads((run_dir / stage / "bundle" / "manifest.json").read_text())
        assert manifest["gates"]["passed"] is True, stage
    assert json.loads((run_dir / "openvino-int8" / "bundle" / "manifest.json").read_text())["cpu"]["requires"] == []
    html = (run_dir / "report" / "report.html").read_text()
    images = [s for s in re.findall(r'src="([^"]+)"', html) if not s.startswith("data:")]
    assert images and all((run_dir / "report" / s).exists() for s in images)
    second = _run_json(args, capsys)  # a second run finds every stage current
    assert [s["status"] for s in second["stages"]] == ["cached"] * 6
