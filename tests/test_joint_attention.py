"""The attention head layout of the exported transformer: the same outputs in torch and OpenVINO,
fewer standalone transposes in the graph OpenVINO runs, chosen per target and recorded."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from fewstep.compile.export import export_onnx
from fewstep.components import Transformer, pipeline_components
from fewstep.joint_attention import exported_attention


@pytest.fixture(scope="module")
def pipe(tiny_family):
    from fewstep.zoo.builder import build_pipeline

    torch.manual_seed(0)
    # two blocks, the first with SD3.5's image-only second attention (attn2)
    return build_pipeline(replace(tiny_family, t5_length=24, layers=2, dual_attention_layers=(0,)))


def _inputs(pipe, text_tokens: int, seed: int = 1):
    cfg = pipe.transformer.config
    g = torch.Generator().manual_seed(seed)
    return dict(
        hidden_states=torch.randn(2, cfg.in_channels, cfg.sample_size, cfg.sample_size, generator=g),
        timestep=torch.tensor([900.0, 300.0]),
        encoder_hidden_states=torch.randn(2, text_tokens, cfg.joint_attention_dim, generator=g),
        pooled_projections=torch.randn(2, cfg.pooled_projection_dim, generator=g),
    )


@pytest.mark.parametrize("layout", ["tokens", "keys"])
@pytest.mark.parametrize("null_tokens", [None, 24])
def test_token_layout_computes_what_diffusers_computes(pipe, null_tokens, layout):
    tr = pipe.transformer
    assert tr.transformer_blocks[0].attn2 is not None  # the image-only attention is laid out too
    feeds = _inputs(pipe, 16 + (1 if null_tokens else 24))
    with torch.no_grad():
        heads = Transformer(tr, null_tokens, attention_layout="heads")(**feeds)
        tokens = Transformer(tr, null_tokens, attention_layout=layout)(**feeds)
        stock = tr(**feeds).sample
    assert (tokens - heads).abs().max() <= 1e-6
    if null_tokens is None:  # no null tokens: diffusers' own processors give the reference
        assert (heads - stock).abs().max() <= 1e-6


def test_processors_swapped_only_inside_and_restored(pipe):
    from diffusers.models.attention_processor import JointAttnProcessor2_0

    tr = pipe.transformer
    attns = [m for b in tr.transformer_blocks for m in (b.attn, b.attn2) if m is not None]
    assert len(attns) == 3
    with exported_attention(tr, "heads"):  # nothing differs from diffusers: its processors stay
        assert all(isinstance(a.processor, JointAttnProcessor2_0) for a in attns)
    with exported_attention(tr, "tokens"):
        assert not any(isinstance(a.processor, JointAttnProcessor2_0) for a in attns)
    assert all(isinstance(a.processor, JointAttnProcessor2_0) for a in attns)
    with pytest.raises(ValueError, match="attention_layout: 'rows'; allowed: heads, tokens, keys"):
        Transformer(tr, attention_layout="rows")


def _transposes(model) -> int:
    return sum(op.get_type_name() == "Transpose" for op in model.get_ordered_ops())


def _runtime_transposes(compiled) -> int:
    ops = compiled.get_runtime_model().get_ordered_ops()
    return sum(op.get_rt_info()["layerType"].astype(str) == "Transpose" for op in ops)


@pytest.mark.parametrize("layout", ["tokens", "keys"])
def test_token_layout_in_openvino_same_outputs_fewer_transposes(pipe, tmp_path, layout):
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    graphs, outputs = {}, {}
    for each in ("heads", layout):
        comp = pipeline_components(pipe, attention_layout=each)["transformer"]
        assert comp.module.attention_layout == each
        path = tmp_path / f"{each}.onnx"
        export_onnx(comp, path, static_batch=2)
        model = core.read_model(str(path))
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        graphs[each] = (_transposes(model), _runtime_transposes(compiled))
        feeds = {k: v.numpy() for k, v in _inputs(pipe, 16 + 24, seed=4).items()}
        outputs[each] = compiled(feeds)[0].ravel()
        with torch.no_grad():
            ref = comp.module(**_inputs(pipe, 16 + 24, seed=4)).numpy().ravel()
        cos = outputs[each] @ ref / np.linalg.norm(outputs[each]) / np.linalg.norm(ref)
        assert cos >= 0.99999, (each, cos)
    (heads_ir, heads_run), (tokens_ir, tokens_run) = graphs["heads"], graphs[layout]
    # per joint attention diffusers' graph transposes q, k, v of both streams before their norms (6);
    # a token-major tensor is transposed once, at the attention's input
    assert tokens_ir < heads_ir and tokens_run < heads_run, graphs
    assert np.abs(outputs[layout] - outputs["heads"]).max() <= 1e-4


def test_auto_layout_is_the_targets_and_recorded(pipe, tmp_path):
    from fewstep.compile.config import CompileConfig
    from fewstep.component_modules import rebuild, wrapper_record
    from fewstep.targets.registry import get_target

    # the built-in targets keep diffusers' graph: token-major layouts measured no faster on OpenVINO's
    # real-size SD3.5 steps (docs/benchmarks.md); a target class may ask for another one
    for name in ("openvino-cpu", "onnxruntime-cpu"):
        assert CompileConfig(target=name).attention_layout_for(get_target(name)) == "heads"

    class TokenMajorTarget:
        attention_layout = "tokens"

    assert CompileConfig(target="openvino-cpu").attention_layout_for(TokenMajorTarget()) == "tokens"
    explicit = CompileConfig(target="openvino-cpu", attention_layout="keys")
    assert explicit.attention_layout_for(get_target("openvino-cpu")) == "keys"
    with pytest.raises(ValueError, match="attention_layout"):
        CompileConfig(target="openvino-cpu", attention_layout="rows")

    module = pipeline_components(pipe, attention_layout="tokens")["transformer"].module
    record = wrapper_record(module)
    assert record["attention_layout"] == "tokens"
    pipe.transformer.save_pretrained(str(tmp_path / "transformer"))
    assert rebuild(record, tmp_path / "transformer").attention_layout == "tokens"
    with pytest.raises(ValueError, match="allowed: heads, tokens, keys"):
        rebuild({**record, "attention_layout": "rows"}, tmp_path / "transformer")
    # a transformer without SD3 attention processors has nothing to lay out: its record says so
    assert Transformer(torch.nn.Linear(2, 2), attention_layout="tokens").attention_layout == "heads"


def test_token_major_bundle_is_gated_recorded_and_generates_the_same_images(tiny_family, tmp_path):
    pytest.importorskip("openvino")
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig
    from fewstep.runtime.bundle import Bundle
    from fewstep.zoo.builder import build_pipeline

    model = tmp_path / "model"
    build_pipeline(replace(tiny_family, t5_length=24)).save_pretrained(str(model))
    gates = {"num_prompts": 2, "distribution": {"enabled": False}}
    images = {}
    for layout in ("heads", "tokens"):
        cfg = CompileConfig(
            target="openvino-cpu", steps=2, guidance=1.0, gates=gates, measure=False, attention_layout=layout
        )
        out, report = compile_bundle(model, cfg, tmp_path / layout)
        assert report.passed, report.to_json()  # tensor and image gates against the torch model
        bundle = Bundle.open(out)
        assert bundle.manifest.components["transformer"].attention_layout == layout
        assert bundle.manifest.components["vae_decoder"].attention_layout is None
        images[layout] = bundle.generate(["a red circle", "two blue squares"], seed=5)
    assert np.abs(images["tokens"] - images["heads"]).max() < 1e-4


def test_a_target_class_names_a_known_layout():
    from fewstep.targets.base import Target

    class KeysTarget(Target):  # defined, not registered
        name, extra, attention_layout = "keys-test", "none", "keys"

    assert KeysTarget.attention_layout == "keys"
    with pytest.raises(ValueError, match="attention_layout: 'rows'; allowed: heads, tokens, keys"):

        class BadTarget(Target):
            name, extra, attention_layout = "bad-test", "none", "rows"
