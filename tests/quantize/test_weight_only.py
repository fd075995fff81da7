"""Weight-only, mixed and per-component schemes."""

import onnx
import pytest

from fewstep.compile.config import CompileConfig
from quant_helpers import build, onnx_ops, ov_element_types, transformer_cosines


@pytest.mark.parametrize("target", ["openvino-cpu", "onnxruntime-cpu"])
@pytest.mark.parametrize("scheme", ["int8-weights", "int4-weights"])
def test_weight_only_schemes(tiny_student_dir, tmp_path, target, scheme):
    path, report, manifest = build(tiny_student_dir, tmp_path, target, {"scheme": scheme, "group_size": 16})
    assert report.passed, [r.describe() for r in report.failures()]
    assert manifest["quantization"]["calibration"] is None  # weight-only, data-free by default
    floor = 0.999 if scheme == "int8-weights" else 0.98
    assert min(transformer_cosines(report)) > floor
    comp = path / "components"
    if target == "onnxruntime-cpu":
        ops = onnx_ops(comp / "transformer.onnx")
        assert "MatMulNBits" in ops and "Gemm" not in ops  # the AdaLN Gemms were rewritten and quantized
        nodes = onnx.load(str(comp / "transformer.onnx")).graph.node
        levels = {a.i for n in nodes if n.op_type == "MatMulNBits" for a in n.attribute if a.name == "accuracy_level"}
        assert levels == {4}  # int8 compute on activations quantized on the fly (benchmarks/ort_nbits.py)
    else:
        want = {"i8", "u8"} if scheme == "int8-weights" else {"i4", "u4"}
        assert want & ov_element_types(comp / "transformer.xml")


def test_mixed_search_is_no_larger_than_int8_weights(tiny_student_dir, tmp_path):
    from fewstep.compile.measure import dir_size

    int8w, _, _ = build(tiny_student_dir, tmp_path, "onnxruntime-cpu", {"scheme": "int8-weights", "group_size": 16})
    path, report, manifest = build(
        tiny_student_dir, tmp_path, "onnxruntime-cpu", {"scheme": "mixed", "group_size": 16, "calibration_prompts": 2}
    )
    assert report.passed
    search = manifest["quantization"]["search"]
    assert search[-1]["passed"] and all(not t["passed"] for t in search[:-1])
    assert set(manifest["quantization"]["components"]) == {
        "text_encoder",
        "text_encoder_2",
        "text_encoder_3",
        "transformer",
    }
    assert dir_size(path) <= dir_size(int8w)


def test_per_component_schemes_int4_transformer_with_int8_vae(tiny_student_dir, tmp_path):
    """component_quantization: each component its own scheme; only the VAE's needs calibration."""
    path, report, manifest = build(
        tiny_student_dir,
        tmp_path,
        "openvino-cpu",
        {"scheme": "int4-weights", "components": ["transformer"], "group_size": 16},
        component_quantization={"vae_decoder": {"scheme": "int8", "calibration_prompts": 3}},
    )
    assert report.passed, [r.describe() for r in report.failures()]
    assert manifest["precision"]["transformer"] == "int4-weights" and manifest["precision"]["vae_decoder"] == "int8"
    assert manifest["precision"]["text_encoder"] == "fp32"
    assert manifest["quantization"]["calibration"]["prompts"] == 3
    assert manifest["quantization"]["components"]["vae_decoder"]["scheme"] == "int8"
    comp = path / "components"
    assert {"u4", "i4"} & ov_element_types(comp / "transformer.xml")
    assert {"i8", "u8"} & ov_element_types(comp / "vae_decoder.xml")
    vae = [r.value for r in report.results if r.gate == "tensor/vae_decoder/cosine"]
    assert vae and min(vae) > 0.99


def test_component_quantization_errors_name_the_field():
    with pytest.raises(ValueError, match=r"component_quantization: unknown component\(s\) \['unet'\]"):
        CompileConfig(component_quantization={"unet": {"scheme": "int8"}})
    with pytest.raises(ValueError, match=r"\['vae_decoder'\] also in component_precision"):
        CompileConfig(
            component_precision={"vae_decoder": "fp32"}, component_quantization={"vae_decoder": {"scheme": "int8"}}
        )
    with pytest.raises(ValueError, match="component_quantization.vae_decoder.scheme: 'fp8' is not supported"):
        CompileConfig(component_quantization={"vae_decoder": {"scheme": "fp8"}})
