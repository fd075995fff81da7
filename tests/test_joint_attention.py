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


@pytest.mark.parametrize("null_tokens", [None, 24])
def test_token_layout_computes_what_diffusers_computes(pipe, null_tokens):
    tr = pipe.transformer
    assert tr.transformer_blocks[0].attn2 is not None  # the image-only attention is laid out too
    feeds = _inputs(pipe, 16 + (1 if null_tokens else 24))
    with torch.no_grad():
        heads = Transformer(tr, null_tokens, attention_layout="heads")(**feeds)
        tokens = Transformer(tr, null_tokens, attention_layout="tokens")(**feeds)
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
    with pytest.raises(ValueError, match="attention_layout: 'rows'; allowed: heads, tokens"):
        Transformer(tr, attention_layout="rows")


def _transposes(model) -> int:
    return sum(op.get_type_name() == "Transpose" for op in model.get_ordered_ops())


def _runtime_transposes(compiled) -> int:
    ops = compiled.get_runtime_model().get_ordered_ops()
    return sum(op.get_rt_info()["layerType"].astype(str) == "Transpose" for op in ops)


def test_token_layout_in_openvino_same_outputs_fewer_transposes(pipe, tmp_path):
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    graphs, outputs = {}, {}
    for layout in ("heads", "tokens"):
        comp = pipeline_components(pipe, attention_layout=layout)["transformer"]
        assert comp.module.attention_layout == layout
        path = tmp_path / f"{layout}.onnx"
        export_onnx(comp, path, static_batch=2)
        model = core.read_model(str(path))
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        graphs[layout] = (_transposes(model), _runtime_transposes(compiled))
        feeds = {k: v.numpy() for k, v in _inputs(pipe, 16 + 24, seed=4).items()}
        outputs[layout] = compiled(feeds)[0].ravel()
        with torch.no_grad():
            ref = comp.module(**_inputs(pipe, 16 + 24, seed=4)).numpy().ravel()
        cos = outputs[layout] @ ref / np.linalg.norm(outputs[layout]) / np.linalg.norm(ref)
        assert cos >= 0.99999, (layout, cos)
    (heads_ir, heads_run), (tokens_ir, tokens_run) = graphs["heads"], graphs["tokens"]
    # per joint attention diffusers' graph transposes q, k, v of both streams before their norms (6);
    # token-major transposes each of q, k, v once, at the attention's inputs
    assert tokens_ir < heads_ir and tokens_run < heads_run, graphs
    assert np.abs(outputs["tokens"] - outputs["heads"]).max() <= 1e-4


def test_auto_layout_is_the_targets_and_recorded(pipe, tmp_path):
    from fewstep.compile.config import CompileConfig
    from fewstep.component_modules import rebuild, wrapper_record
    from fewstep.targets.registry import get_target

    assert CompileConfig(target="openvino-cpu").attention_layout_for(get_target("openvino-cpu")) == "tokens"
    assert CompileConfig(target="onnxruntime-cpu").attention_layout_for(get_target("onnxruntime-cpu")) == "heads"
    explicit = CompileConfig(target="openvino-cpu", attention_layout="heads")
    assert explicit.attention_layout_for(get_target("openvino-cpu")) == "heads"
    with pytest.raises(ValueError, match="attention_layout"):
        CompileConfig(target="openvino-cpu", attention_layout="rows")

    module = pipeline_components(pipe, attention_layout="tokens")["transformer"].module
    record = wrapper_record(module)
    assert record["attention_layout"] == "tokens"
    pipe.transformer.save_pretrained(str(tmp_path / "transformer"))
    assert rebuild(record, tmp_path / "transformer").attention_layout == "tokens"
    with pytest.raises(ValueError, match="allowed: heads, tokens"):
        rebuild({**record, "attention_layout": "rows"}, tmp_path / "transformer")
    # a transformer without SD3 attention processors has nothing to lay out: its record says so
    assert Transformer(torch.nn.Linear(2, 2), attention_layout="tokens").attention_layout == "heads"
