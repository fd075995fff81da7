import json
import shutil

import numpy as np
import pytest

from fewstep.compile.api import GateFailure, compile_bundle
from fewstep.compile.config import CompileConfig
from fewstep.runtime.bundle import Bundle, BundleError


@pytest.mark.parametrize("target", ["openvino-cpu", "onnxruntime-cpu"])
def test_bundle_matches_torch_student_and_passes_gates(built_bundles, target):
    path, report = built_bundles[target]
    assert report.passed, [r.describe() for r in report.failures()]
    gates = {r.gate: r.value for r in report.results}
    # every component, and the transformer at each of the student's 2 timesteps
    assert {"tensor/text_encoder/hidden_states/cosine", "tensor/vae_decoder/cosine"} <= set(gates)
    assert {"tensor/transformer@t=1.000/cosine", "tensor/transformer@t=0.750/cosine"} <= set(gates)
    assert min(v for k, v in gates.items() if k.endswith("/cosine")) >= 0.9999
    assert gates["image/psnr"] >= 50
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["target"] == target and manifest["gates"]["passed"]
    assert manifest["pipeline"]["steps"] == 2 and manifest["pipeline"]["sigmas"][-1] == 0.0
    assert manifest["precision"] == {k: "fp32" for k in manifest["components"]}
    assert set(manifest["components"]) == {
        "text_encoder",
        "text_encoder_2",
        "text_encoder_3",
        "transformer",
        "vae_decoder",
    }
    assert all(len(h) == 64 for h in manifest["files"].values())
    assert manifest["static_batch"] == (1 if target == "openvino-cpu" else None)


def test_static_bundle_pads_and_chunks_batches(built_bundles):
    ov = Bundle.open(built_bundles["openvino-cpu"][0])
    ort = Bundle.open(built_bundles["onnxruntime-cpu"][0])
    prompts = ["a red circle", "two blue squares", "a green triangle"]
    a, b = ov.generate(prompts, seed=3), ort.generate(prompts, seed=3)
    assert a.shape == (3, 32, 32, 3) and np.abs(a - b).max() < 1e-4
    # image i depends only on seed + i, not on the batch it ran in
    assert np.abs(ort.generate(prompts[1:2], seed=4) - b[1:2]).max() < 1e-5


def test_tampered_or_incomplete_bundle_is_refused(built_bundles, tmp_path):
    src = built_bundles["onnxruntime-cpu"][0]
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    with open(bad / "components" / "transformer.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="changed: components/transformer.onnx"):
        Bundle.open(bad)
    (bad / "components" / "vae_decoder.onnx").unlink()
    with pytest.raises(BundleError, match="missing: components/vae_decoder.onnx"):
        Bundle.open(bad)
    with pytest.raises(BundleError, match="not a fewstep bundle"):
        Bundle.open(tmp_path)


def test_fp16_weights_bundle_is_smaller_and_gated(tiny_student_dir, built_bundles, tmp_path):
    gates = {"num_prompts": 2, "distribution": {"enabled": False}}
    cfg = CompileConfig(target="onnxruntime-cpu", precision="fp16-weights", gates=gates, measure=False)
    path, report = compile_bundle(tiny_student_dir, cfg, tmp_path / "b")
    assert report.passed
    import onnx

    def weight_bytes(root, dtype):
        return sum(
            len(t.raw_data)
            for f in (root / "components").glob("*.onnx")
            for t in onnx.load(str(f)).graph.initializer
            if t.data_type == dtype
        )

    fp32 = weight_bytes(built_bundles["onnxruntime-cpu"][0], onnx.TensorProto.FLOAT)
    assert weight_bytes(path, onnx.TensorProto.FLOAT16) == pytest.approx(fp32 / 2, rel=0.01)
    assert weight_bytes(path, onnx.TensorProto.FLOAT) < 0.001 * fp32


def test_failing_gate_fails_the_build_and_names_the_gate(tiny_student_dir, tmp_path):
    gates = {"num_prompts": 1, "image": {"psnr_min": 500}, "distribution": {"enabled": False}}
    cfg = CompileConfig(target="onnxruntime-cpu", gates=gates, measure=False)
    with pytest.raises(GateFailure, match="image/psnr: .* >= 500"):
        compile_bundle(tiny_student_dir, cfg, tmp_path / "b")
    assert not (tmp_path / "b").exists()  # nothing half-written


def test_teacher_bundle_with_cfg_and_guidance_interval(tiny_pipeline_dir, tmp_path):
    gates = {"num_prompts": 2, "distribution": {"enabled": False}}
    cfg = CompileConfig(
        target="openvino-cpu", steps=3, guidance=3.0, guidance_interval=(0.0, 0.8), gates=gates, measure=False
    )
    path, report = compile_bundle(tiny_pipeline_dir, cfg, tmp_path / "b")
    assert report.passed, [r.describe() for r in report.failures()]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["components"]["transformer"]["io"]["static_sizes"] == {"batch": 2}  # CFG doubles the batch
    assert manifest["pipeline"]["guidance_interval"] == [0.0, 0.8]


def test_config_errors_name_field_and_allowed_values():
    with pytest.raises(ValueError, match="target: unknown target 'tpu'; allowed: .*openvino-cpu"):
        CompileConfig(target="tpu")
    with pytest.raises(ValueError, match="precision: 'int3' is not supported by openvino-cpu; allowed: fp32"):
        CompileConfig(target="openvino-cpu", precision="int3")
    with pytest.raises(ValueError, match="unknown component"):
        CompileConfig(component_precision={"unet": "fp32"})


def test_t5_slot_longer_than_clip_as_in_sd35(tiny_family, tmp_path):
    """SD3.5 feeds 77 CLIP + 256 T5 tokens: the bundle keeps both lengths and matches diffusers."""
    from dataclasses import replace

    from fewstep.zoo.builder import build_pipeline

    family = replace(tiny_family, t5_length=24)
    model = tmp_path / "model"
    build_pipeline(family).save_pretrained(str(model))
    gates = {"num_prompts": 2, "distribution": {"enabled": False}}
    cfg = CompileConfig(target="onnxruntime-cpu", steps=2, guidance=1.0, gates=gates, measure=False)
    out, report = compile_bundle(model, cfg, tmp_path / "bundle")
    assert report.passed, report.to_json()  # image gates compare with diffusers' max_sequence_length=24
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pipeline"]["t5_length"] == 24
    assert manifest["pipeline"]["tokenizers"]["text_encoder_3"]["max_length"] == 24
    assert manifest["pipeline"]["tokenizers"]["text_encoder"]["max_length"] == 16
    seq = manifest["components"]["transformer"]["io"]["inputs"][2]["shape"]
    assert seq[1] == 16 + 24


def test_build_only_bundle_frees_torch_modules_and_is_gated_later(tiny_student_dir, tmp_path, monkeypatch):
    """gates.enabled=false: each torch component is released after export; `fewstep gate` checks later."""
    from typer.testing import CliRunner

    from fewstep.cli import app
    from fewstep.compile import build as build_mod

    released = []
    original = build_mod.release_module

    def spy(pipe, name):
        original(pipe, name)
        released.append((name, getattr(pipe, {"vae_decoder": "vae"}.get(name, name))))

    monkeypatch.setattr(build_mod, "release_module", spy)
    cfg = CompileConfig(target="onnxruntime-cpu", gates={"enabled": False, "num_prompts": 2}, measure=False)
    out, report = compile_bundle(tiny_student_dir, cfg, tmp_path / "b")
    assert not report.results and "skipped" in report.extra
    assert json.loads((out / "manifest.json").read_text())["gates"] is None  # not gated yet
    names = ["text_encoder", "text_encoder_2", "text_encoder_3", "transformer", "vae_decoder"]
    assert [n for n, _ in released] == names
    assert all(module is None for _, module in released)
    res = CliRunner().invoke(app, ["gate", str(out), "--json"])
    assert res.exit_code == 0, res.output
    checked = json.loads(res.stdout)
    assert checked["passed"] is True and any(r["gate"] == "image/psnr" for r in checked["results"])


def test_changed_gates_reuse_export_and_quantize_and_a_changed_scheme_reuses_export(
    tiny_student_dir, tmp_path, monkeypatch
):
    """Compile steps are cached in the work directory by what they depend on."""
    import json

    import fewstep.compile.steps as build
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig

    calls = {"export": 0}
    real_export = build.export_onnx

    def counting_export(*args, **kwargs):
        calls["export"] += 1
        return real_export(*args, **kwargs)

    monkeypatch.setattr(build, "export_onnx", counting_export)
    work = tmp_path / "work"
    gates = {"num_prompts": 2, "distribution": {"enabled": False}, "tensor": {"cosine_min": 0.9, "rel_l2_max": 0.5}}
    quant = {"scheme": "int8", "calibration_prompts": 2}

    def compile_once(out, gates, quant):
        cfg = CompileConfig(target="onnxruntime-cpu", quantization=quant, gates=gates, measure=False)
        path, _ = compile_bundle(tiny_student_dir, cfg, tmp_path / out, work_dir=work)
        return json.loads((path / "manifest.json").read_text())["steps"]

    first = compile_once("a", gates, quant)
    assert calls["export"] == 5 and all(s["export"] == "ran" for s in first.values())
    assert first["transformer"]["quantize"] == "ran"
    looser = {**gates, "image": {"psnr_min": 20.0, "ssim_min": 0.8}}  # only a threshold changes
    second = compile_once("b", looser, quant)
    assert calls["export"] == 5 and all(s["export"] == "reused" for s in second.values())
    assert second["transformer"]["quantize"] == "reused"
    third = compile_once("c", gates, {**quant, "per_channel": False})  # only the scheme changes
    assert calls["export"] == 5 and third["transformer"] == {"export": "reused", "quantize": "ran"}
