import json
import xml.etree.ElementTree as ET

from typer.testing import CliRunner

from fewstep.cli import app

runner = CliRunner()


def test_gate_cli_passes_then_fails_naming_the_gate(built_bundles, tmp_path):
    bundle = built_bundles["openvino-cpu"][0]
    res = runner.invoke(app, ["gate", str(bundle), "--json", "--junit", str(tmp_path / "ok.xml")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["passed"] is True
    assert ET.parse(tmp_path / "ok.xml").getroot().get("failures") == "0"

    strict = tmp_path / "strict.yaml"
    strict.write_text("num_prompts: 2\nimage: {psnr_min: 500}\ndistribution: {enabled: false}\n")
    res = runner.invoke(app, ["gate", str(bundle), "--config", str(strict), "--junit", str(tmp_path / "bad.xml")])
    assert res.exit_code == 1
    assert "gate failed: image/psnr" in res.output and "500" in res.output
    root = ET.parse(tmp_path / "bad.xml").getroot()
    assert root.get("failures") == "1" and root.find(".//failure") is not None


def test_eval_accepts_a_bundle(built_bundles, tmp_path):
    bundle = built_bundles["onnxruntime-cpu"][0]
    res = runner.invoke(app, ["eval", str(bundle), "--num-images", "16", "--json", "--grid", str(tmp_path / "g.png")])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["target"] == "onnxruntime-cpu" and result["steps"] == 2 and result["images"] == 16
    assert 0 <= result["alignment"] <= 1 and result["fid"] > 0
