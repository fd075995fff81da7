"""Attention left float in a W8A8 bundle, and bf16 inference precision (issue 20, the floor work)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from pydantic import ValidationError

from fewstep.compile.config import CompileConfig
from fewstep.runtime.bundle import Bundle
from fewstep.targets.openvino_cpu import bf16_available
from quant_helpers import build, transformer_cosines


def _attention_like_onnx(path):
    """x @ wq -> q; q @ x^T -> scores (an activation x activation MatMul); softmax; @ x -> y."""
    w = numpy_helper.from_array(np.eye(8, dtype=np.float32), "wq")
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"], name="proj"),
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0], name="t"),
        helper.make_node("MatMul", ["q", "xt"], ["s"], name="qk"),
        helper.make_node("Softmax", ["s"], ["p"], name="softmax"),
        helper.make_node("MatMul", ["p", "x"], ["y"], name="pv"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_attention_ops_are_the_activation_matmuls_on_both_backends(tmp_path):
    import openvino as ov

    from fewstep.quantize.onnxruntime import attention_matmuls
    from fewstep.quantize.openvino import attention_ops, weighted_ops

    path = _attention_like_onnx(tmp_path / "a.onnx")
    assert attention_matmuls(path) == ["qk", "pv"]
    ir = ov.convert_model(str(path))
    found = attention_ops(ir)
    assert len(found) == 2 and not set(found) & set(weighted_ops(ir))
    assert len(weighted_ops(ir)) == 1


def test_inference_precision_is_checked_against_the_target():
    message = r"inference_precision: 'bf16' is not supported by onnxruntime-cpu; allowed: f32"
    with pytest.raises(ValidationError, match=message):
        CompileConfig(target="onnxruntime-cpu", inference_precision="bf16")
    with pytest.raises(ValidationError, match="inference_precision"):
        CompileConfig(target="openvino-cpu", inference_precision="f16")
    assert CompileConfig(target="openvino-cpu", inference_precision="bf16").inference_precision == "bf16"


INT8 = {"scheme": "int8", "calibration_prompts": 2}


def _resolved(**kw) -> dict[str, str]:
    """Each int8 component's `attention` after the compile plan resolved `cpu:` (no build)."""
    from fewstep.compile.plan import apply_cpu_policy, component_plan
    from fewstep.targets.registry import get_target

    cfg = CompileConfig(**{"target": "openvino-cpu", "quantization": INT8, **kw})
    names = ["text_encoder", "transformer", "vae_decoder"]
    plan, _ = apply_cpu_policy(component_plan(cfg, names), cfg, get_target(cfg.target))
    return {k: s.attention for k, (_, s) in plan.items() if s is not None and s.scheme == "int8"}


@pytest.mark.parametrize(
    ("cpu", "precision", "expected"),
    [
        (["avx512_core_amx"], "bf16", "float"),  # AMX bf16 tiles: fused float attention is the faster one
        (["avx512_core_amx"], "f32", "int8"),  # float attention at f32 is slower than int8 (0.80x)
        (["avx512_core_bf16"], "bf16", "int8"),  # AVX512-BF16 without AMX: int8 attention 1.11x faster
        (["avx512_core_amx", "avx2"], "bf16", "int8"),  # a fleet with one CPU without AMX
        ("portable", "bf16", "int8"),  # every x86-64 CPU: most have no AMX
    ],
)
def test_auto_attention_follows_the_target_cpus(cpu, precision, expected):
    assert CompileConfig(quantization=INT8).quantization.attention == "auto"  # the default
    assert _resolved(cpu=cpu, inference_precision=precision) == {"text_encoder": expected, "transformer": expected}


def test_auto_attention_per_component_precision_and_explicit_choices():
    amx = {"cpu": ["avx512_core_amx"], "inference_precision": "bf16"}
    assert _resolved(**amx, component_inference_precision={"text_encoder": "f32"}) == {
        "text_encoder": "int8",
        "transformer": "float",
    }
    for asked in ("int8", "float"):  # an explicit choice is kept on any CPU
        assert set(_resolved(quantization={**INT8, "attention": asked}).values()) == {asked}
        assert set(_resolved(**amx, quantization={**INT8, "attention": asked}).values()) == {asked}
    assert set(_resolved(**amx, quantization={**INT8, "attention": None}).values()) == {"float"}  # null: auto
    with pytest.raises(ValidationError, match=r"(?s)quantization.int8.attention.*'auto', 'int8' or 'float'"):
        CompileConfig(quantization={**INT8, "attention": "bf16"})


def test_native_auto_attention_is_the_build_machines(monkeypatch):
    from fewstep.cpu.isa import get_isa
    from fewstep.quantize import cpu

    amx = {"cpu": "native", "inference_precision": "bf16"}
    monkeypatch.setattr(cpu, "effective", lambda: get_isa("avx512_core_amx"))
    assert set(_resolved(**amx).values()) == {"float"}
    monkeypatch.setattr(cpu, "effective", lambda: get_isa("avx512_core_bf16"))
    assert set(_resolved(**amx).values()) == {"int8"}
    monkeypatch.setattr(cpu, "effective", lambda: None)  # not x86: no AMX
    assert set(_resolved(**amx).values()) == {"int8"}


def _attention_inputs_quantized(xml) -> dict[str, bool]:
    """For every attention op (fused ScaledDotProductAttention, or a MatMul without a constant
    weight): whether a FakeQuantize feeds its Q, K or V (through layout ops)."""
    import openvino as ov

    from fewstep.quantize.openvino import attention_ops

    model = ov.Core().read_model(str(xml))
    names = set(attention_ops(model))

    def quantized(node, depth=4) -> bool:
        if node.get_type_name() == "FakeQuantize":
            return True
        if depth == 0 or node.get_type_name() not in ("Transpose", "Reshape", "Concat"):
            return False
        return any(quantized(node.input_value(i).get_node(), depth - 1) for i in range(node.get_input_size()))

    return {
        op.get_friendly_name(): any(quantized(op.input_value(i).get_node()) for i in range(min(3, op.get_input_size())))
        for op in model.get_ops()
        if op.get_friendly_name() in names
    }


def vs_f32_gates(report):
    return [r for r in report.results if r.gate.endswith("/cosine_vs_f32")]


def test_float_attention_and_bf16_bundle(tiny_student_dir, tmp_path):
    """`attention: auto` for AMX targets at bf16 keeps QK^T and PV out of the PTQ (the weighted
    MatMuls stay W8A8), portable keeps them int8; `inference_precision: bf16` is recorded, gated and
    applied where the CPU has bf16 (f32 elsewhere). 7-bit weights: the bundle runs on any CPU."""
    quant = {"scheme": "int8", "mode": "weights-first", "calibration_prompts": 2, "components": ["transformer"]}
    _, _, base = build(tiny_student_dir, tmp_path / "int8", "openvino-cpu", quant)
    path, report, manifest = build(
        tiny_student_dir,
        tmp_path / "float",
        "openvino-cpu",
        {**quant, "reduce_range": True},
        inference_precision="bf16",
        cpu=["avx512_core_amx"],
    )
    assert report.passed, [r.describe() for r in report.failures()]
    assert min(transformer_cosines(report)) > 0.98
    import openvino as ov

    vs_f32 = {r.gate.split("/")[1].split("@")[0]: r.value for r in report.results if r.gate.endswith("cosine_vs_f32")}
    if bf16_available(ov.Core()):  # every component against its own files at f32 (gates.tensor.vs_f32_cosine_min)
        assert set(vs_f32) == {"text_encoder", "text_encoder_2", "text_encoder_3", "transformer", "vae_decoder"}
        assert min(vs_f32.values()) >= 0.999
        twins = [r for r in report.results if r.gate.endswith("/f32_twin_cosine")]  # recorded beside each
        assert len(twins) == len(vs_f32_gates(report)) and all(r.threshold is None and r.value > 0.98 for r in twins)
    assert manifest["inference_precision"] == "bf16" and base["inference_precision"] == "f32"
    assert manifest["quantization"]["components"]["transformer"]["attention"] == "float"  # as resolved
    assert base["quantization"]["components"]["transformer"]["attention"] == "int8"
    assert manifest["cpu"]["isa"] == ["avx512_core_amx"] and manifest["cpu"]["requires"] == []

    shipped = _attention_inputs_quantized(tmp_path / "int8" / "openvino-cpu-int8" / "components" / "transformer.xml")
    floated = _attention_inputs_quantized(path / "components" / "transformer.xml")
    assert shipped and all(shipped.values())  # the default: attention in int8
    assert floated.keys() == shipped.keys() and not any(floated.values())

    bundle = Bundle.open(path)
    hint = bundle.sessions["transformer"].compiled.get_property("INFERENCE_PRECISION_HINT")
    assert hint == (ov.Type.bf16 if bf16_available(ov.Core()) else ov.Type.f32)
    images = bundle.generate(["a red circle"], seed=0)
    assert images.shape[-1] == 3 and np.isfinite(images).all()


def test_bf16_falls_back_to_f32_under_a_onednn_cap_without_it(monkeypatch):
    import openvino as ov

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not bf16_available(ov.Core())


def test_a_bundle_asking_for_bf16_on_a_target_without_it_is_refused(built_bundles, tmp_path):
    import json
    import shutil

    from fewstep.runtime.bundle import BundleError

    src, _ = built_bundles["onnxruntime-cpu"]
    bundle = tmp_path / "bundle"
    shutil.copytree(src, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["inference_precision"] = "bf16"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"inference_precision 'bf16' is not one onnxruntime-cpu runs; allowed: f32"):
        Bundle.open(bundle)
    # asked for when opening, not by the manifest: the same refusal, naming the argument
    with pytest.raises(BundleError, match=r": inference_precision 'bf16' is not one onnxruntime-cpu runs"):
        Bundle.open(src, inference_precision="bf16")
    assert Bundle.open(src, inference_precision="f32").manifest.inference_precision == "f32"
    # one component at a time (the gates' f32 twin); an unknown name is named with the real ones
    assert set(Bundle.open(src, components=["vae_decoder"]).sessions) == {"vae_decoder"}
    with pytest.raises(BundleError, match=r"no component vae; it has .*vae_decoder"):
        Bundle.open(src, components=["vae"])
