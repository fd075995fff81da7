"""The zero-filled T5 slot collapsed to one null token: exact, restored, and used by bundles."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from fewstep.compile.export import export_onnx, static_example
from fewstep.components import Transformer, pipeline_components
from fewstep.null_tokens import null_token_attention, supports_collapse


@pytest.fixture(scope="module")
def t5_free_pipe(tiny_family):
    from fewstep.zoo.builder import build_pipeline

    torch.manual_seed(0)
    pipe = build_pipeline(replace(tiny_family, t5_length=24, layers=2))
    pipe.text_encoder_3 = None  # the T5 slot is zero-filled (24 tokens: the T5 tokenizer's length)
    return pipe


def _inputs(pipe, text: torch.Tensor):
    cfg = pipe.transformer.config
    g = torch.Generator().manual_seed(1)
    return dict(
        hidden_states=torch.randn(2, cfg.in_channels, cfg.sample_size, cfg.sample_size, generator=g),
        timestep=torch.tensor([900.0, 300.0]),
        encoder_hidden_states=text,
        pooled_projections=torch.randn(2, cfg.pooled_projection_dim, generator=g),
    )


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


@pytest.mark.parametrize("slots", [2, 5, 24])  # 5 does not divide 24: each key weighs 24 / 5, still exact
def test_m_biased_tokens_equal_n_identical_tokens(t5_free_pipe, slots):
    pipe = t5_free_pipe
    width = pipe.transformer.config.joint_attention_dim
    g = torch.Generator().manual_seed(3)
    clip = torch.randn(2, 16, width, generator=g)
    token = torch.randn(2, 1, width, generator=g)
    full = torch.cat([clip, token.expand(2, 24, width)], 1)
    short = torch.cat([clip, token.expand(2, slots, width)], 1)
    with torch.no_grad():
        ref = pipe.transformer(**_inputs(pipe, full)).sample
        collapsed = Transformer(pipe.transformer, null_tokens=24, null_slots=slots)(**_inputs(pipe, short))
        one_share = Transformer(pipe.transformer, null_tokens=24)(**_inputs(pipe, short))  # ln(24) on each key
    assert _cos(collapsed, ref) >= 0.99999 and (collapsed - ref).abs().max() < 1e-4
    if slots > 1:  # each of m keys biased as if it alone stood for all 24 weighs m times too much
        wrong, right = (one_share - ref).abs().max(), (collapsed - ref).abs().max()
        assert wrong > 1e-3 and wrong > 100 * right


@pytest.mark.parametrize("fill", ["zeros", "repeated random token"])
def test_one_biased_token_equals_n_identical_tokens(t5_free_pipe, fill):
    pipe = t5_free_pipe
    width = pipe.transformer.config.joint_attention_dim
    g = torch.Generator().manual_seed(2)
    clip = torch.randn(2, 16, width, generator=g)
    token = torch.zeros(2, 1, width) if fill == "zeros" else torch.randn(2, 1, width, generator=g)
    full = torch.cat([clip, token.expand(2, 24, width)], 1)
    short = torch.cat([clip, token], 1)
    with torch.no_grad():
        ref = pipe.transformer(**_inputs(pipe, full)).sample
        collapsed = Transformer(pipe.transformer, null_tokens=24)(**_inputs(pipe, short))
        unbiased = Transformer(pipe.transformer)(**_inputs(pipe, short))
    assert _cos(collapsed, ref) >= 0.99999 and (collapsed - ref).abs().max() < 1e-4
    assert _cos(unbiased, ref) < 0.9999  # without the ln(n) bias one token is not 24: the check can fail


def test_processors_are_restored_and_unsupported_models_refused(t5_free_pipe):
    from diffusers.models.attention_processor import JointAttnProcessor2_0

    tr = t5_free_pipe.transformer
    assert supports_collapse(tr)
    with null_token_attention(tr, 24):
        assert not isinstance(tr.transformer_blocks[0].attn.processor, JointAttnProcessor2_0)
    assert all(isinstance(b.attn.processor, JointAttnProcessor2_0) for b in tr.transformer_blocks)
    assert not supports_collapse(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="no SD3 joint attention"), null_token_attention(torch.nn.Linear(2, 2), 24):
        pass


def test_components_collapse_only_without_t5(t5_free_pipe):
    comps = pipeline_components(t5_free_pipe)
    assert comps["transformer"].example[2].shape[1] == 16 + 1 and comps["transformer"].module.null_tokens == 24
    full = pipeline_components(t5_free_pipe, collapse_null=False)
    assert full["transformer"].example[2].shape[1] == 16 + 24 and full["transformer"].module.null_tokens is None
    five = pipeline_components(t5_free_pipe, null_slots=5)["transformer"]
    assert five.example[2].shape[1] == 16 + 5 and (five.module.null_tokens, five.module.null_slots) == (24, 5)
    for bad in (0, 25):
        with pytest.raises(ValueError, match=r"restructure\.null_slots: .*allowed: 1 to 24"):
            pipeline_components(t5_free_pipe, null_slots=bad)


def test_null_slots_need_the_collapse():
    from fewstep.compile.config import Restructure

    assert Restructure(null_slots=51).null_slots == 51
    with pytest.raises(ValueError, match="null_slots: 51 null tokens need collapse_null_tokens: true"):
        Restructure(null_slots=51, collapse_null_tokens=False)
    with pytest.raises(ValueError, match="null_slots"):
        Restructure(null_slots=0)


def test_null_slots_survive_the_wrapper_record(t5_free_pipe, tmp_path):
    from fewstep.component_modules import rebuild, wrapper_record

    module = pipeline_components(t5_free_pipe, null_slots=5)["transformer"].module
    record = wrapper_record(module)
    assert (record["null_tokens"], record["null_slots"]) == (24, 5)
    t5_free_pipe.transformer.save_pretrained(str(tmp_path / "transformer"))
    again = rebuild(record, tmp_path / "transformer")
    assert (again.null_tokens, again.null_slots) == (24, 5)


def test_manifest_refuses_more_null_tokens_than_they_stand_for():
    from fewstep.runtime.manifest import PipelineRecord

    base = dict(
        steps=1, sigmas=[1.0, 0.0], guidance=1.0, student=True, latent_shape=(4, 8, 8), image_size=64,
        joint_attention_dim=32, t5=False, tokenizers={},
    )  # fmt: skip
    assert PipelineRecord(**base, t5_length=5, t5_null_tokens=24).t5_length == 5
    with pytest.raises(ValueError, match="t5_length: 25 null tokens cannot stand for t5_null_tokens = 24"):
        PipelineRecord(**base, t5_length=25, t5_null_tokens=24)


@pytest.mark.parametrize("target", ["openvino-cpu", "onnxruntime-cpu"])
def test_t5_free_bundle_runs_one_null_token_and_matches_diffusers(tiny_family, tmp_path, target):
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig
    from fewstep.runtime.bundle import Bundle
    from fewstep.zoo.builder import build_pipeline

    model = tmp_path / "model"
    build_pipeline(replace(tiny_family, t5_length=24)).save_pretrained(str(model))
    gates = {"num_prompts": 2, "distribution": {"enabled": False}}
    slot = 16  # a dropped T5 takes its tokenizer along: the zero slot has the CLIP length (pipelines.t5_length)
    images = {}
    for collapse, slots in ((True, 1), (True, 3), (False, 1)):
        cfg = CompileConfig(
            target=target,
            steps=2,
            guidance=1.0,
            gates=gates,
            measure=False,
            restructure={"drop_t5": True, "force": True, "collapse_null_tokens": collapse, "null_slots": slots},
        )
        out, report = compile_bundle(model, cfg, tmp_path / f"bundle-{collapse}-{slots}")
        assert report.passed, report.to_json()  # image gates: against diffusers with 16 zero T5 tokens
        manifest = json.loads((out / "manifest.json").read_text())
        seq = manifest["components"]["transformer"]["io"]["inputs"][2]["shape"][1]
        # compile's attention_layout: auto is the target's (diffusers' head-major graph for the built-ins)
        assert manifest["components"]["transformer"]["attention_layout"] == "heads"
        if collapse:
            assert manifest["pipeline"]["t5_length"] == slots and manifest["pipeline"]["t5_null_tokens"] == slot
            assert seq == 16 + slots
        else:
            assert manifest["pipeline"]["t5_length"] == slot and manifest["pipeline"]["t5_null_tokens"] is None
            assert seq == 16 + slot
        images[collapse, slots] = Bundle.open(out).generate(["a red circle", "two blue squares"], seed=5)
    for collapsed in ((True, 1), (True, 3)):
        assert np.abs(images[collapsed] - images[False, 1]).max() < 1e-4


def _joint_attention_outputs(model) -> list:
    """Each joint attention's softmax @ V (the MatMul its Softmax feeds)."""
    outs = []
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Softmax" and "/attn/" in op.get_friendly_name():
            outs.append(next(iter(op.output(0).get_target_inputs())).get_node().output(0))
    return outs


def test_null_bias_is_exact_in_openvinos_bf16_attention(t5_free_pipe, tmp_path):
    """The ln(n) key bias carries its head axis, (1, heads, 1, keys). OpenVINO 2026.4's fused bf16
    attention (CPU snippets) returns garbage, NaN included, for a bias broadcast over heads and
    queries, (1, 1, 1, keys), the layout exported before this test; with the head axis it matches
    f32. Exported through fewstep's ONNX path, compiled at bf16 and at f32 on the same inputs."""
    ov = pytest.importorskip("openvino")
    from fewstep.targets.openvino_cpu import bf16_available

    comp = pipeline_components(t5_free_pipe)["transformer"]
    path = tmp_path / "transformer.onnx"
    export_onnx(comp, path, static_batch=2)
    model = ov.Core().read_model(str(path))
    attention = _joint_attention_outputs(model)
    assert len(attention) == len(t5_free_pipe.transformer.transformer_blocks)
    heads = t5_free_pipe.transformer.config.num_attention_heads
    for out in attention:  # the bias added to the scores before the softmax
        softmax = out.get_node().input(0).get_source_output().get_node()
        add = softmax.input(0).get_source_output().get_node()
        shapes = [list(i.get_partial_shape().to_shape()) for i in add.inputs()]
        keys = shapes[0][-1]  # image tokens + 16 CLIP + 1 null
        assert [1, heads, 1, keys] in shapes, shapes
    model.add_outputs(attention)
    if not bf16_available(ov.Core()):
        pytest.skip("this CPU has no bf16 arithmetic in OpenVINO (the layout is checked above)")
    feeds = [t.numpy() for t in static_example(comp, 2)]
    results = {}
    for hint in ("f32", "bf16"):
        compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
        results[hint] = [np.array(v) for v in compiled(feeds).values()]
    # the transformer's output, then each joint attention's
    cosines = [_cos(torch.from_numpy(b), torch.from_numpy(f)) for f, b in zip(results["f32"], results["bf16"])]
    assert all(np.isfinite(b).all() for b in results["bf16"])
    assert min(cosines) >= 0.999, cosines  # before the fix: output 0.998, attentions far below
