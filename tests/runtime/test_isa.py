"""ISA detection, the `cpu:` policy, the int8 saturation probe under restricted ISAs, and the
bundle's CPU requirement check."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fewstep.cpu import isa as isa_mod
from fewstep.cpu.restriction import IsaUnavailable, lowest_saturating_isa, restriction_for
from fewstep.quantize.cpu import check_policy, needs_reduce_range, plan_cpu
from fewstep.targets.registry import get_target

AVX2 = frozenset({"sse4_1", "sse4_2", "avx", "avx2", "fma"})
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"}
HOST = isa_mod.detect()
x86 = pytest.mark.skipif(HOST is None, reason="ISA restriction is x86-only")


def test_levels_are_detected_from_cpu_flags():
    assert isa_mod.detect(AVX2).name == "avx2"
    assert isa_mod.detect(AVX2 | {"avx_vnni"}).name == "avx2_vnni"
    assert isa_mod.detect(AVX512).name == "avx512_core"
    assert isa_mod.detect(AVX512 | {"avx512_vnni"}).name == "avx512_core_vnni"
    assert isa_mod.detect(AVX512 | {"avx512_vnni", "avx512_bf16", "amx_int8", "amx_tile"}).name == "avx512_core_amx"
    assert isa_mod.detect(frozenset({"asimd"})) is None  # not x86
    assert isa_mod.includes("avx512_core_vnni", "avx2") and not isa_mod.includes("avx2", "avx512_core")
    assert not isa_mod.includes("avx512_core", "avx2_vnni")  # oneDNN's order: no VNNI in avx512_core


def test_reduce_range_follows_the_cpu():
    """u8 x s8 kernels without VNNI add pairs of products into int16 with saturation."""
    assert needs_reduce_range(AVX2)
    assert needs_reduce_range(AVX512)
    assert not needs_reduce_range(AVX512 | {"avx512_vnni"})
    assert not needs_reduce_range(AVX2 | {"avx_vnni"})
    assert not needs_reduce_range(frozenset({"asimd"}))  # not x86


def test_a_onednn_cap_lowers_the_effective_isa(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert isa_mod.effective(AVX512 | {"avx512_vnni"}).name == "avx2"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")  # a cap above the CPU changes nothing
    assert isa_mod.effective(AVX2).name == "avx2"


def test_cpu_policy_resolves_the_weight_range():
    vnni = AVX512 | {"avx512_vnni"}
    assert not plan_cpu("portable", vnni).full_range
    assert plan_cpu("native", vnni).full_range and plan_cpu("native", vnni).isas == ("avx512_core_vnni",)
    assert not plan_cpu("native", AVX2).full_range
    assert not plan_cpu(("avx2", "avx512_core_vnni"), vnni).full_range  # one CPU of the fleet lacks VNNI
    assert plan_cpu(("avx2_vnni", "avx512_core_amx"), AVX2).full_range
    record = plan_cpu("native", vnni).record(["transformer"])
    assert record["requires"] == ["int8-vnni"] and record["built_on"] == "avx512_core_vnni"
    assert plan_cpu("portable", vnni).record([])["requires"] == []
    with pytest.raises(ValueError, match="allowed: portable, native"):
        check_policy("fast")
    with pytest.raises(ValueError, match="unknown ISA 'avx3'.*avx2"):
        check_policy(["avx3"])


def test_recipe_fields_name_allowed_isas():
    from pydantic import ValidationError

    from fewstep.compile.config import CompileConfig
    from fewstep.gates.config import GateConfig

    assert CompileConfig(target="onnxruntime-cpu", cpu=["avx2"]).cpu == ("avx2",)
    with pytest.raises(ValidationError, match="cpu.*allowed: portable, native"):
        CompileConfig(target="onnxruntime-cpu", cpu="everything")
    assert GateConfig(isa=["avx2", "native", "avx2"]).isa == ("avx2", "native")
    with pytest.raises(ValidationError, match="isa: unknown.*allowed: native, sse41"):
        GateConfig(isa=["avx9"])


def _probe_in(target: str, restriction) -> float:
    """The probe's output in a fresh process under `restriction` (exact: 64)."""
    code = (
        "from fewstep.runtime.probe import probe_output;from fewstep.targets.registry import get_target;"
        f"print(float(probe_output(get_target({target!r})).mean()))"
    )
    env = {**os.environ, **restriction.env}
    res = subprocess.run([*restriction.prefix, sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    return float(res.stdout.split()[-1])


@x86
@pytest.mark.parametrize("target", ["openvino-cpu", "onnxruntime-cpu"])
def test_the_restriction_really_changes_the_int8_kernel(target):
    """Under a non-VNNI ISA the probe's u8 x s8 pair sums saturate (about 32 instead of 64): the
    restriction reaches the kernels, it is not only a label."""
    try:
        low = lowest_saturating_isa(get_target(target))
    except IsaUnavailable as e:
        pytest.skip(str(e))
    assert _probe_in(target, restriction_for(get_target(target), low)) == pytest.approx(32.4, abs=0.5)
    if HOST.vnni:
        assert _probe_in(target, restriction_for(get_target(target), "native")) == pytest.approx(64.0, abs=1e-3)


@x86
def test_onednn_cap_reaches_openvino():
    """ONEDNN_MAX_CPU_ISA alone (no emulation) caps OpenVINO's CPU plugin."""
    from fewstep.cpu.restriction import onednn_cap

    assert _probe_in("openvino-cpu", onednn_cap(isa_mod.get_isa("avx2"))) == pytest.approx(32.4, abs=0.5)


def test_restriction_above_this_cpu_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(isa_mod, "cpu_flags", lambda: AVX2)
    monkeypatch.setattr("fewstep.cpu.restriction.detect", lambda: isa_mod.detect(AVX2))
    with pytest.raises(IsaUnavailable, match=r"this CPU \(avx2\) lacks avx512_core_vnni"):
        restriction_for(get_target("openvino-cpu"), "avx512_core_vnni")
    monkeypatch.setattr("fewstep.cpu.restriction.qemu_binary", lambda: None)
    monkeypatch.setattr("fewstep.cpu.restriction.detect", lambda: isa_mod.detect(AVX512 | {"avx512_vnni"}))
    with pytest.raises(IsaUnavailable, match="no ISA cap; emulate the CPU with qemu-user"):
        restriction_for(get_target("onnxruntime-cpu"), "avx2")
    with pytest.raises(IsaUnavailable, match="emulates at most avx2"):
        restriction_for(get_target("onnxruntime-cpu"), "avx512_core")


@x86
def test_bundle_needing_vnni_is_refused_where_int8_saturates(built_bundles, tmp_path):
    """A bundle whose manifest says its int8 needs VNNI refuses, naming VNNI and `cpu: portable`,
    a CPU (here: a restricted one) whose int8 kernel saturates; the override runs it with a warning."""
    src, _ = built_bundles["openvino-cpu"]
    bundle = tmp_path / "bundle"
    shutil.copytree(src, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["cpu"] = {"mode": "native", "isa": [], "built_on": "avx512_core_vnni", "int8_full_range": ["transformer"]}
    manifest["cpu"]["requires"] = ["int8-vnni"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    try:
        low = lowest_saturating_isa(get_target("openvino-cpu"))
    except IsaUnavailable as e:
        pytest.skip(str(e))
    r = restriction_for(get_target("openvino-cpu"), low)
    code = f"from fewstep.runtime.bundle import Bundle; Bundle.open({str(bundle)!r})"
    env = {**os.environ, **r.env}
    res = subprocess.run([*r.prefix, sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode != 0
    assert "need VNNI" in res.stderr and "cpu: portable" in res.stderr and "--allow-isa-mismatch" in res.stderr
    env["FEWSTEP_ALLOW_ISA_MISMATCH"] = "1"
    res = subprocess.run([*r.prefix, sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "running anyway" in res.stderr, res.stderr[-2000:]


def test_int8_weights_halve_to_seven_bits():
    import nncf
    import openvino as ov
    from openvino import opset13 as ops

    from fewstep.quantize.openvino import int8_weights_to_7bit

    rng = np.random.default_rng(0)
    w = rng.standard_normal((32, 64)).astype(np.float32)
    x = ops.parameter([4, 64], np.float32, name="x")
    model = ov.Model([ops.matmul(x, ops.constant(w), False, True)], [x])
    model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM)
    assert int8_weights_to_7bit(model) == 1
    q = [op.data for op in model.get_ops() if op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.i8]
    assert len(q) == 1 and q[0].min() >= -64 and q[0].max() <= 63 and q[0].max() >= 60
    xv = rng.standard_normal((4, 64)).astype(np.float32)
    y = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})({"x": xv})[0]
    ref = xv @ w.T
    assert float((y * ref).sum() / np.linalg.norm(y) / np.linalg.norm(ref)) > 0.999
