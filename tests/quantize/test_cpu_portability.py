"""int8 that is right on every x86 CPU: the same bundle gated natively and with its runtime
restricted to an ISA without VNNI (avx2 through qemu-user where installed, else a oneDNN cap).

On main before `cpu:` existed, the OpenVINO int8 bundle of the tiny student failed these gates
under avx2 (text_encoder_2 cosine 0.890, as on a real AVX2-only EPYC)."""

import json

import pytest

from fewstep.compile.api import compile_bundle
from fewstep.compile.config import CompileConfig
from fewstep.cpu.isa import detect
from fewstep.cpu.restriction import IsaUnavailable, lowest_saturating_isa
from fewstep.targets.registry import get_target

GATES = {
    "num_prompts": 2,
    "tensor": {"cosine_min": 0.9, "rel_l2_max": 0.5, "max_abs_max": None},
    "image": {"psnr_min": 25, "ssim_min": 0.9},
    "distribution": {"enabled": False},
}
HOST = detect()


def low_isa(target: str) -> str:
    if HOST is None:
        pytest.skip("ISA restriction is x86-only")
    try:
        return lowest_saturating_isa(get_target(target))
    except IsaUnavailable as e:
        pytest.skip(str(e))


def values(report, isa: str) -> dict[str, float]:
    return {r.gate.split(":", 1)[1]: r.value for r in report.results if r.gate.startswith(isa + ":")}


@pytest.mark.parametrize(
    ("target", "quant"),
    [
        ("openvino-cpu", {"scheme": "int8"}),  # auto: full PTQ for the encoders, hybrid transformer
        ("openvino-cpu", {"scheme": "int8", "mode": "weights-first"}),
        ("onnxruntime-cpu", {"scheme": "int8"}),
    ],
    ids=["openvino-auto", "openvino-weights-first", "onnxruntime-qdq"],
)
def test_portable_int8_gives_the_same_gates_without_vnni(tiny_student_dir, tmp_path, target, quant):
    low = low_isa(target)
    cfg = CompileConfig(
        target=target,
        quantization={**quant, "calibration_prompts": 4},
        gates={**GATES, "isa": ["native", low]},
        measure=False,
    )
    path, report = compile_bundle(tiny_student_dir, cfg, tmp_path / "bundle")
    assert report.passed, [r.describe() for r in report.failures()]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["cpu"]["mode"] == "portable" and manifest["cpu"]["requires"] == []
    here, there = values(report, HOST.name), values(report, low)
    assert len(here) == len(there) > 10
    assert report.extra["isa"][low]["restriction"]["int8_saturates"] is True  # the restriction was in force
    for gate, value in here.items():
        if gate.endswith("cosine"):  # the CPU changes nothing that matters
            assert there[gate] == pytest.approx(value, abs=2e-3), gate


@pytest.mark.parametrize("target", ["openvino-cpu", "onnxruntime-cpu"])
def test_native_full_range_int8_is_recorded_and_caught_without_vnni(tiny_student_dir, tmp_path, target):
    """`cpu: native` on a VNNI machine keeps full-range weights; the manifest says they need VNNI,
    and gating as a CPU without VNNI fails on that requirement (the numbers saturate too)."""
    if HOST is None or not HOST.vnni:
        pytest.skip("needs a VNNI CPU: without VNNI `native` is 7-bit, exactly like portable")
    low = low_isa(target)
    cfg = CompileConfig(
        target=target,
        quantization={"scheme": "int8", "calibration_prompts": 4},
        cpu="native",
        gates={**GATES, "isa": ["native", low]},
        measure=False,
        require_gates=False,
    )
    path, report = compile_bundle(tiny_student_dir, cfg, tmp_path / "bundle")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["cpu"]["requires"] == ["int8-vnni"] and "transformer" in manifest["cpu"]["int8_full_range"]
    assert report.extra["isa"][HOST.name]["passed"]
    assert not report.extra["isa"][low]["passed"]
    failed = {r.gate for r in report.failures()}
    assert f"{low}:cpu/int8_requirements_met" in failed


def test_an_isa_that_cannot_be_gated_fails_before_the_build(tiny_student_dir, tmp_path, monkeypatch):
    from fewstep.cpu import restriction as restrict

    monkeypatch.setattr(restrict, "qemu_binary", lambda: None)
    monkeypatch.setattr(restrict, "detect", lambda: HOST)
    if HOST is None or not HOST.vnni:
        pytest.skip("needs a CPU above avx2 to ask for an emulated avx2")
    cfg = CompileConfig(target="onnxruntime-cpu", precision="fp32", gates={**GATES, "isa": ["avx2"]}, measure=False)
    with pytest.raises(IsaUnavailable, match="qemu-user"):
        compile_bundle(tiny_student_dir, cfg, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
