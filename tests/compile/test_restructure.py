"""Text-encoder restructuring: T5 drop and depth truncation, gated."""

import pytest

from quant_helpers import build


def test_t5_drop_refused_when_its_gate_fails_and_applied_when_forced(tiny_student_dir, tmp_path):
    strict = {"drop_t5": True, "t5_gate": {"num_images": 16, "fid_ratio_max": 0.01}}
    path, report, manifest = build(
        tiny_student_dir, tmp_path / "a", "onnxruntime-cpu", {"scheme": "int8-weights"}, restructure=strict
    )
    record = manifest["restructure"]["drop_t5"]
    assert record["accepted"] is False and "refused" in record["reason"] and record["fid_ratio"] > 0.01
    assert "text_encoder_3" in manifest["components"]

    path, report, manifest = build(
        tiny_student_dir,
        tmp_path / "b",
        "onnxruntime-cpu",
        {"scheme": "int8-weights"},
        restructure={"drop_t5": True, "force": True},
    )
    assert manifest["restructure"]["drop_t5"]["accepted"] is True
    assert "text_encoder_3" not in manifest["components"] and not manifest["pipeline"]["t5"]
    assert not (path / "tokenizers" / "text_encoder_3").exists()
    assert report.passed  # gated against the T5-free torch model


def test_encoder_truncation_is_fine_tuned_and_gated(tiny_student_dir, tmp_path):
    cut = {"keep": {"text_encoder_2": 1}, "steps": 30, "prompts": 32, "batch": 16}
    path, report, manifest = build(
        tiny_student_dir,
        tmp_path / "forced",
        "onnxruntime-cpu",
        {"scheme": "int8-weights"},
        restructure={"truncate": cut, "force": True},
    )
    record = manifest["restructure"]["truncate"]["text_encoder_2"]
    assert record["accepted"] and record["layers"][1] == 1 and record["parameter_bytes_saved"] > 0
    assert record["loss_last"] < record["loss_first"]  # feature matching learns
    assert report.passed  # gated against the truncated torch model

    strict = {"truncate": cut, "t5_gate": {"num_images": 16, "fid_ratio_max": 0.01}}
    _, _, manifest = build(
        tiny_student_dir, tmp_path / "gated", "onnxruntime-cpu", {"scheme": "int8-weights"}, restructure=strict
    )
    assert manifest["restructure"]["truncate"]["text_encoder_2"]["accepted"] is False


def test_truncate_rejects_bad_requests():
    from fewstep.compile.config import Restructure

    with pytest.raises(ValueError, match="unknown encoder"):
        Restructure(truncate={"keep": {"unet": 1}})
