"""The adaLN modulation hoisted out of the step: exact in torch, restored, refused where it cannot
apply, and run once per generation by hoisted bundles."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from fewstep.components import MODULATION, Transformer, pipeline_components, torch_outputs
from fewstep.modulation import adaln_norms, modulated_body, modulation_width, supports_hoist


@pytest.fixture(scope="module")
def pipe(tiny_family):
    from fewstep.zoo.builder import build_pipeline

    torch.manual_seed(0)
    # two blocks: an SD3.5 dual-attention block (9-way adaLN) and the last, context-pre-only one
    # (AdaLayerNormContinuous on the text stream), plus norm_out
    return build_pipeline(replace(tiny_family, layers=2))


def _feeds(pipe, batch=3):
    cfg = pipe.transformer.config
    g = torch.Generator().manual_seed(1)
    seq = 16 + 24
    return {
        "hidden_states": torch.randn(batch, cfg.in_channels, cfg.sample_size, cfg.sample_size, generator=g).numpy(),
        "timestep": np.array([900.0, 500.0, 37.5][:batch], np.float32),
        "encoder_hidden_states": torch.randn(batch, seq, cfg.joint_attention_dim, generator=g).numpy(),
        "pooled_projections": torch.randn(batch, cfg.pooled_projection_dim, generator=g).numpy(),
    }


def test_every_adaln_norm_is_found(pipe):
    kinds = sorted({type(m).__name__ for m in adaln_norms(pipe.transformer)})
    assert kinds == ["AdaLayerNormContinuous", "AdaLayerNormZero", "SD35AdaLayerNormZeroX"]
    dim = pipe.transformer.config.num_attention_heads * pipe.transformer.config.attention_head_dim
    # block 0: 9 (dual attention) + 6 (text); block 1: 6 + 2 (context pre-only); norm_out: 2
    assert modulation_width(pipe.transformer) == (9 + 6 + 6 + 2 + 2) * dim


@pytest.mark.parametrize("null", [None, 24])
def test_body_fed_the_modulation_equals_the_whole_transformer(pipe, null):
    comps = pipeline_components(pipe, hoist_modulation=True)
    assert list(comps)[-3:] == [MODULATION, "transformer", "vae_decoder"]
    body = comps["transformer"]
    assert [t.name for t in body.io.inputs] == ["hidden_states", "encoder_hidden_states", "modulation"]
    feeds = _feeds(pipe)
    if null:  # the null-token collapse and the hoist together
        feeds["encoder_hidden_states"] = feeds["encoder_hidden_states"][:, :17]
        body.module.null_tokens, body.module.null_slots = null, 1
    whole = Transformer(pipe.transformer, null).eval()
    mod = torch_outputs(comps[MODULATION], {k: feeds[k] for k in ("timestep", "pooled_projections")})["modulation"]
    assert mod.shape == (3, modulation_width(pipe.transformer))
    stream = {k: feeds[k] for k in ("hidden_states", "encoder_hidden_states")}
    got = torch_outputs(body, {**stream, "modulation": mod})
    names = ("hidden_states", "timestep", "encoder_hidden_states", "pooled_projections")
    with torch.no_grad():
        ref = whole(*(torch.from_numpy(feeds[k]) for k in names))
    np.testing.assert_allclose(got["sample"], ref.numpy(), atol=2e-5, rtol=0)
    # a wrong modulation changes the output: the body reads it (the check can fail)
    other = torch_outputs(body, {**stream, "modulation": mod[::-1].copy()})
    assert np.abs(other["sample"] - ref.numpy()).max() > 1e-2


def test_modules_are_restored_even_after_an_error(pipe):
    tr = pipe.transformer
    linears = [m.linear for m in adaln_norms(tr)]
    embed = tr.time_text_embed
    with pytest.raises(RuntimeError, match="boom"), modulated_body(tr, torch.zeros(1, modulation_width(tr))):
        assert adaln_norms(tr) == []  # every adaLN Linear stands in for its columns
        raise RuntimeError("boom")
    assert [m.linear for m in adaln_norms(tr)] == linears and tr.time_text_embed is embed
    with pytest.raises(ValueError, match="columns"), modulated_body(tr, torch.zeros(1, 5)):
        pass


def test_other_models_are_refused():
    assert not supports_hoist(torch.nn.Linear(2, 2))
    refused = pytest.raises(ValueError, match="restructure.hoist_modulation: Linear is not an SD3 transformer")
    with refused, modulated_body(torch.nn.Linear(2, 2), torch.zeros(1, 2)):
        pass


def test_the_diffusers_layouts_refuse_the_hoist():
    from pydantic import ValidationError

    from fewstep.compile.config import CompileConfig

    with pytest.raises(ValidationError, match="restructure.hoist_modulation: the openvino layout's clients"):
        CompileConfig(openvino_layout=True, restructure={"hoist_modulation": True})
    with pytest.raises(ValidationError, match="restructure.hoist_modulation: the onnx layout"):
        CompileConfig(target="onnxruntime-cpu", onnx_layout=True, restructure={"hoist_modulation": True})
    with pytest.raises(ValidationError, match="restructure.hoist_modulation: torch-cuda runs the torch model"):
        CompileConfig(target="torch-cuda", restructure={"hoist_modulation": True})


def _count_calls(bundle) -> dict:
    calls: dict = {}
    original = bundle.run_component

    def run(name, feeds):
        calls.setdefault(name, []).append(next(iter(feeds.values())).shape[0])
        return original(name, feeds)

    bundle.run_component = run
    return calls


@pytest.mark.parametrize(
    "target, precision, model, guidance",
    [
        ("onnxruntime-cpu", "fp32", "pipeline", 3.0),  # CFG: the unconditional modulation too
        ("openvino-cpu", "int8", "student", None),
    ],
)
def test_hoisted_bundle_matches_the_whole_one_and_runs_the_modulation_once(
    tmp_path, tiny_student_dir, tiny_pipeline_dir, target, precision, model, guidance
):
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig
    from fewstep.runtime.bundle import Bundle

    model_dir = tiny_student_dir if model == "student" else tiny_pipeline_dir
    gates = {"num_prompts": 2, "distribution": {"enabled": False}}
    extra = {"steps": 2, "guidance": guidance} if guidance else {}
    if precision == "int8":  # the fewest calibration prompts: the test is about the split, not the PTQ
        extra["quantization"] = {"scheme": "int8", "calibration_prompts": 2, "components": ["transformer"]}
    images, sizes = {}, {}
    for hoist in (False, True):
        cfg = CompileConfig(
            target=target, precision=precision, gates=gates, measure=False,
            restructure={"hoist_modulation": hoist}, **extra,
        )  # fmt: skip
        out, report = compile_bundle(model_dir, cfg, tmp_path / f"bundle-{hoist}")
        assert report.passed, [r.describe() for r in report.failures()]
        manifest = json.loads((out / "manifest.json").read_text())
        comps = manifest["components"]
        sizes[hoist] = sum((out / "components" / f).stat().st_size for f in comps["transformer"]["files"])
        bundle = Bundle.open(out)
        assert bundle.hoisted is hoist
        calls = _count_calls(bundle)
        images[hoist] = bundle.generate(["a red circle", "two blue squares"], seed=5)
        if hoist:
            inputs = [t["name"] for t in comps["transformer"]["io"]["inputs"]]
            assert inputs == ["hidden_states", "encoder_hidden_states", "modulation"]
            assert comps[MODULATION]["precision"] == ("int8-weights" if precision == "int8" else "fp32")
            steps = len(manifest["pipeline"]["sigmas"]) - 1
            # one call per conditioning (CFG: the prompts' and the negative prompt's), every step at once
            assert len(calls[MODULATION]) == (2 if guidance else 1) and len(calls["transformer"]) == steps
            gated = {r.gate.split("@")[0] for r in report.results}
            assert {"tensor/transformer_modulation", "tensor/transformer"} <= gated
    assert sizes[True] < sizes[False]  # the adaLN weights left the step's file
    tol = 1e-4 if precision == "fp32" else 0.05  # int8: two calibrations of the same weights
    assert np.abs(images[True] - images[False]).max() < tol


def test_bf16_bundle_keeps_the_modulation_at_f32(tmp_path, tiny_student_dir):
    """The hoisted modulation is recorded and run at f32 (a few rows: reading its weights is its
    cost, and f32 reads them faster than bf16 on real-size SD3.5), the rest of the bundle at bf16;
    its gates against its own files at f32 pass. Its IR keeps the sinusoidal phases at f32
    (targets/openvino_phases.py), so even compiled at bf16 it stays at the f32 result at t = 858,
    which bf16 cannot hold (before the marks: cosine < 0.995 here, 0.950 at real size)."""
    ov = pytest.importorskip("openvino")
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig
    from fewstep.gates.metrics import cosine
    from fewstep.runtime.bundle import Bundle
    from fewstep.targets.openvino_cpu import bf16_available

    if not bf16_available(ov.Core()):
        pytest.skip("OpenVINO computes no bf16 on this CPU")
    quant = {"scheme": "int8", "mode": "weights-first", "calibration_prompts": 2, "components": ["transformer"]}
    cfg = CompileConfig(
        quantization={**quant, "attention": "float"}, inference_precision="bf16", measure=False,
        component_inference_precision={"vae_decoder": "f32"},
        gates={"num_prompts": 2, "distribution": {"enabled": False}}, restructure={"hoist_modulation": True},
    )  # fmt: skip
    out, report = compile_bundle(tiny_student_dir, cfg, tmp_path / "bundle")
    assert report.passed, [r.describe() for r in report.failures()]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inference_precision"] == "bf16"
    assert manifest["components"][MODULATION]["inference_precision"] == "f32"
    assert manifest["components"]["transformer"]["inference_precision"] is None  # the bundle's: bf16
    assert manifest["components"]["vae_decoder"]["inference_precision"] == "f32"  # asked for
    twins = {r.gate.split("/")[1].split("@")[0] for r in report.results if r.gate.endswith("cosine_vs_f32")}
    assert "transformer" in twins and not {MODULATION, "vae_decoder"} & twins  # those run at f32 already
    assert any(r.gate.startswith("tensor/transformer@") and r.gate.endswith("cosine_vs_f32") for r in report.results)

    # the same IR compiled at bf16 against f32, at a late and an early timestep
    core = ov.Core()
    model = str(out / "components" / manifest["components"][MODULATION]["files"][0])
    f32, bf16 = (core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": h}) for h in ("f32", "bf16"))
    rng = np.random.default_rng(0)
    feeds = {p.get_any_name(): rng.standard_normal(list(p.get_shape())).astype(np.float32) for p in f32.inputs}
    late = {**feeds, "timestep": np.full(feeds["timestep"].shape, 858.0, np.float32)}
    early = {**feeds, "timestep": np.full(feeds["timestep"].shape, 37.5, np.float32)}
    assert min(cosine(bf16(late)[0], f32(late)[0]), cosine(bf16(early)[0], f32(early)[0])) > 0.9999
    bundle = Bundle.open(out)  # the runtime's compile of the modulation: f32, exact against the IR at f32
    got = bundle.run_component(MODULATION, {k: late[k] for k in ("timestep", "pooled_projections")})
    assert cosine(got["modulation"], f32(late)[0]) > 0.99999


def test_component_inference_precision_is_checked():
    from pydantic import ValidationError

    from fewstep.compile.config import CompileConfig

    with pytest.raises(ValidationError, match=r"component_inference_precision: unknown component\(s\) \['vae'\]"):
        CompileConfig(inference_precision="bf16", component_inference_precision={"vae": "f32"})
    message = r"component_inference_precision.vae_decoder: 'bf16' is not supported by onnxruntime-cpu; allowed: f32"
    with pytest.raises(ValidationError, match=message):
        CompileConfig(target="onnxruntime-cpu", component_inference_precision={"vae_decoder": "bf16"})
