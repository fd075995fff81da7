"""The build's crop calibration (compile/spatial.py): which crop a scheme asks for on which
target, and a gated bundle whose int8 VAE decoder was calibrated on crops."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from fewstep.compile.spatial import crop_size
from fewstep.quantize.config import Int8Config, WeightOnlyConfig
from fewstep.targets.registry import get_target


@pytest.fixture(scope="module")
def vae(tmp_path_factory, tiny_family):
    """The VAE decoder component of the tiny family at 64 px (16x16 latents), exported."""
    from fewstep.compile.export import export_onnx
    from fewstep.components import pipeline_components
    from fewstep.zoo.builder import build_pipeline

    torch.manual_seed(0)
    comp = pipeline_components(build_pipeline(replace(tiny_family, resolution=64)), batch=1)["vae_decoder"]
    path = tmp_path_factory.mktemp("vae") / "vae_decoder.onnx"
    export_onnx(comp, path, static_batch=1)
    return comp, path


def test_explicit_crop_is_used_on_openvino_and_refused_where_no_backend_can_carry_it(vae):
    comp, full = vae
    ov, ort = get_target("openvino-cpu"), get_target("onnxruntime-cpu")
    assert crop_size(comp, ov, Int8Config(calibration_crop=8), full) == 8
    assert crop_size(comp, ov, Int8Config(calibration_crop=16), full) is None  # the full side: no crop
    assert crop_size(comp, ov, Int8Config(calibration_crop=None), full) is None
    assert crop_size(comp, ov, WeightOnlyConfig(), full) is None  # nothing calibrated per activation
    with pytest.raises(ValueError, match="32 is larger than the 16x16 latent"):
        crop_size(comp, ov, Int8Config(calibration_crop=32), full)
    assert crop_size(comp, ort, Int8Config(), full) is None  # auto: full size, as before
    with pytest.raises(ValueError, match="onnxruntime.*only openvino can.*calibration_crop: auto or null"):
        crop_size(comp, ort, Int8Config(calibration_crop=8), full)


def test_auto_crop_follows_the_available_memory(vae, monkeypatch):
    from fewstep.compile import spatial
    from fewstep.quantize.openvino_spatial import statistics_bytes

    comp, full = vae
    ov = get_target("openvino-cpu")
    need = statistics_bytes(full)
    monkeypatch.setattr(spatial.memory, "available_memory_bytes", lambda: 2 * need)
    assert crop_size(comp, ov, Int8Config(), full) is None
    monkeypatch.setattr(spatial.memory, "available_memory_bytes", lambda: need // 2)
    assert crop_size(comp, ov, Int8Config(), full) == 8


def test_config_names_the_field_for_a_bad_crop():
    with pytest.raises(ValueError, match="calibration_crop"):
        Int8Config(calibration_crop=4)
    with pytest.raises(ValueError, match="calibration_crop"):
        Int8Config(calibration_crop="half")


def test_bundle_with_crop_calibrated_vae_is_gated_and_records_the_crop(tiny_family, tmp_path):
    """The VAE decoder of a 128 px student (32x32 latents) calibrated on 16x16 crops: the
    bundle's decoder runs at full size, int8, and is as close to torch as full-size calibration
    gets on this model (0.99956-0.99966, tests/quantize/test_spatial.py)."""
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig
    from fewstep.zoo.builder import build_pipeline

    student = tmp_path / "student"
    torch.manual_seed(0)
    build_pipeline(replace(tiny_family, resolution=128)).save_pretrained(str(student))
    record = {"steps": 2, "timesteps": [1.0, 0.75, 0.0], "sigmas": [1.0, 0.5], "guidance": 1.0, "t5_free": False}
    (student / "fewstep_student.json").write_text(json.dumps(record))
    quant = {"scheme": "int8", "components": ["vae_decoder"], "calibration_prompts": 4, "calibration_crop": 16}
    gates = {"num_prompts": 2, "distribution": {"enabled": False}}
    cfg = CompileConfig(target="openvino-cpu", quantization=quant, gates=gates, measure=False)
    path, report = compile_bundle(student, cfg, tmp_path / "bundle")
    assert report.passed, [r.describe() for r in report.failures()]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["precision"]["vae_decoder"] == "int8"
    assert manifest["steps"]["vae_decoder"]["calibration_crop"] == 16
    assert "calibration_crop" not in manifest["steps"]["transformer"]
    vae_cos = [r.value for r in report.results if r.gate.startswith("tensor/vae_decoder") and r.gate.endswith("cosine")]
    assert vae_cos and min(vae_cos) >= 0.999, vae_cos
    import openvino as ov

    model = ov.Core().read_model(str(path / "components" / "vae_decoder.xml"))
    assert "FakeQuantize" in {op.get_type_name() for op in model.get_ops()}
    assert list(model.input(0).get_partial_shape().to_shape()) == [1, 4, 32, 32]
