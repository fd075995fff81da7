"""A bundle compiled at bf16 is gated against itself run at f32 (`gates.tensor.vs_f32_cosine_min`).

Its torch gates cannot tell a wrong bf16 kernel from quantization error: an int8 bundle's are
loose (cosine 0.98), and a random-weight model's output hides a wrong attention (issue 20:
OpenVINO's fused bf16 attention computed the null tokens' (1, 1, 1, keys) bias wrong; the tiny
model's output stayed at cosine 0.998). The same files at f32 differ from the bf16 run only in the
runtime's arithmetic, so a tight threshold holds."""

from dataclasses import replace

import pytest
import torch

from fewstep.compile.api import GateFailure, compile_bundle
from fewstep.compile.config import CompileConfig

ov = pytest.importorskip("openvino")

from fewstep.targets.openvino_cpu import bf16_available  # noqa: E402

pytestmark = pytest.mark.skipif(not bf16_available(ov.Core()), reason="no bf16 arithmetic in OpenVINO on this CPU")

W8A8 = {"scheme": "int8", "mode": "weights-first", "attention": "float", "components": ["transformer"]}


@pytest.fixture(scope="module")
def t5_free_model(tiny_family, tmp_path_factory):
    from fewstep.zoo.builder import build_pipeline

    model = tmp_path_factory.mktemp("t5-free") / "model"
    torch.manual_seed(0)
    build_pipeline(replace(tiny_family, t5_length=24)).save_pretrained(str(model))
    return model


def _compile(model, out, **tensor):
    cfg = CompileConfig(
        target="openvino-cpu",
        steps=2,
        guidance=1.0,
        inference_precision="bf16",
        quantization={**W8A8, "calibration_prompts": 2},
        measure=False,
        gates={
            "num_prompts": 2,
            "tensor": {"cosine_min": 0.98, "rel_l2_max": 0.25, "max_abs_max": None, **tensor},
            "image": {"psnr_min": 15, "ssim_min": 0.5},
            "distribution": {"enabled": False},
        },
        restructure={"drop_t5": True, "force": True, "collapse_null_tokens": True},
    )
    return compile_bundle(model, cfg, out)


def _vs_f32(report) -> dict[str, float]:
    return {r.gate: r.value for r in report.results if r.gate.endswith("/cosine_vs_f32")}


def test_the_gate_catches_a_wrong_bf16_attention_the_torch_gates_pass(t5_free_model, tmp_path, monkeypatch):
    """The null bias exported as before the fix, broadcast over heads: (1, 1, 1, keys)."""
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def broadcast_bias(q, k, v, attn_mask=None, **kwargs):
        return sdpa(q, k, v, attn_mask=None if attn_mask is None else attn_mask[:, :1], **kwargs)

    # only the null-token processor passes a mask (fewstep/joint_attention.py looks SDPA up per call)
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", broadcast_bias)
    _, unchecked = _compile(t5_free_model, tmp_path / "unchecked", vs_f32_cosine_min=None)
    assert unchecked.passed and not _vs_f32(unchecked)  # the torch gates alone let it through
    with pytest.raises(GateFailure) as failure:
        _compile(t5_free_model, tmp_path / "checked")
    failed = {r.gate for r in failure.value.report.failures()}
    assert failed and all(g.startswith("tensor/transformer@") and g.endswith("/cosine_vs_f32") for g in failed)
    # the record beside each failure says which run is off: the bf16 one is farther from torch
    values = {r.gate: r.value for r in failure.value.report.results}
    for gate in failed:
        where = gate.removesuffix("/cosine_vs_f32")
        assert values[f"{where}/cosine"] < values[f"{where}/f32_twin_cosine"]
    assert "farther from torch than its f32 twin" in str(failure.value)
