"""The diffusers-style ONNX layout that optimum's ONNX Runtime pipelines read
(`ORTStableDiffusion3Pipeline.from_pretrained(bundle)`), for `onnxruntime-*` bundles
(`compile.onnx_layout: true`); like the OpenVINO layout, its files then are the bundle's components:

    model_index.json, scheduler/, tokenizer[_2|_3]/ (fast tokenizers: tokenizer.json)
    text_encoder[_2|_3]/model.onnx + config.json, transformer/model.onnx, vae_decoder/model.onnx

Each graph is fewstep's component (quantized or not) with optimum's interface added in front of
fewstep's own outputs, which stay (so fewstep's runtime reads the same file): CLIP returns
`text_embeds`, `last_hidden_state` and `hidden_states.0..n-1` (the penultimate layer last, where
the SD3 pipeline reads it); T5 `last_hidden_state`; the transformer `out_hidden_states`; the VAE
decoder takes `latent_sample` and returns `sample` in [-1, 1] (its config says
`scaling_factor: 1, shift_factor: 0`: fewstep folds the un-scaling in).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fewstep.compile.openvino_layout import CLIP_ENCODERS, T5_ENCODER, write_json
from fewstep.components import TOKENIZER_OF

FAST = {"CLIPTokenizer": "CLIPTokenizerFast", "T5Tokenizer": "T5TokenizerFast"}  # transformers 4 needs the Fast name


def _output_like(graph, source: str, name: str):
    """A graph output record for tensor `name`, typed and shaped as the output `source`."""
    like = next(o for o in graph.output if o.name == source)
    out = type(like)()
    out.CopyFrom(like)
    out.name = name
    return out


def _identity_outputs(graph, source: str, names: list[str]) -> list:
    """Outputs `names`, each an Identity of tensor `source` (ONNX names a tensor once)."""
    from onnx import helper

    graph.node.extend(helper.make_node("Identity", [source], [n], name=f"layout_{n}") for n in names)
    return [_output_like(graph, source, n) for n in names]


def _front(graph, outputs: list) -> None:
    """Put `outputs` before the graph's own outputs (optimum reads the first one by position)."""
    own = list(graph.output)
    del graph.output[:]
    graph.output.extend([*outputs, *own])


def _clip(model, num_layers: int) -> None:
    g = model.graph
    embeds = next(o for o in g.output if o.name == "text_embeds")
    copies = _identity_outputs(
        g, "hidden_states", ["last_hidden_state", *(f"hidden_states.{i}" for i in range(num_layers))]
    )
    rest = [o for o in g.output if o.name != "text_embeds"]
    del g.output[:]
    g.output.extend([embeds, *copies, *rest])


def _vae(model) -> None:
    from onnx import helper, numpy_helper

    g = model.graph
    for inp in g.input:
        if inp.name == "latents":
            inp.name = "latent_sample"
    for node in g.node:
        node.input[:] = ["latent_sample" if i == "latents" else i for i in node.input]
    g.initializer.extend([numpy_helper.from_array(np.float32(2.0), "layout_two"),
                          numpy_helper.from_array(np.float32(1.0), "layout_one")])  # fmt: skip
    g.node.extend([
        helper.make_node("Mul", ["image", "layout_two"], ["layout_image2"], name="layout_mul"),
        helper.make_node("Sub", ["layout_image2", "layout_one"], ["sample"], name="layout_sub"),
    ])  # fmt: skip
    _front(g, [_output_like(g, "image", "sample")])


def write_layout(
    root: Path, pipe, components: dict[str, Any], configs: dict[str, dict[str, Any]], token_lengths: dict[str, int]
) -> dict[str, list[str]]:
    """Write the layout into bundle `root` from its ONNX components; returns each component's
    layout files (relative to `root`)."""
    import onnx

    from fewstep.onnx_io import save_onnx

    root = Path(root)
    index = dict(configs["model_index"])
    for key, value in index.items():  # transformers 4 (optimum's venv) loads fast tokenizers from tokenizer.json
        if isinstance(value, list) and len(value) == 2 and value[1] in FAST:
            index[key] = [value[0], FAST[value[1]]]
    write_json(root / "model_index.json", index)
    written: dict[str, list[str]] = {}
    for name in components:
        model = onnx.load(str(root / "components" / components[name].files[0]))
        config = dict(configs[name])
        if name in CLIP_ENCODERS:
            _clip(model, int(config["num_hidden_layers"]))
            config["max_position_embeddings"] = token_lengths[name]
        elif name == T5_ENCODER:
            _front(model.graph, _identity_outputs(model.graph, "hidden_states", ["last_hidden_state"]))
        elif name == "vae_decoder":
            _vae(model)
            config.update(scaling_factor=1.0, shift_factor=0.0)  # folded into the graph
        elif name == "transformer":
            _front(model.graph, _identity_outputs(model.graph, "sample", ["out_hidden_states"]))
        onnx.checker.check_model(model)
        (root / name).mkdir(parents=True, exist_ok=True)
        written[name] = [f"{name}/{f}" for f in save_onnx(model, root / name / "model.onnx")]
        write_json(root / name / "config.json", config)
    for enc, attr in TOKENIZER_OF.items():
        tokenizer = getattr(pipe, attr, None)
        if enc in components and tokenizer is not None:
            tokenizer.save_pretrained(str(root / attr))
            _readable_by_transformers_4(root / attr / "tokenizer_config.json")
    return written


def _readable_by_transformers_4(path: Path) -> None:
    """transformers 5 writes `extra_special_tokens` as a list, which transformers 4 (optimum-onnx's)
    reads as a mapping; the fast class name lets it load from tokenizer.json alone."""
    import json

    config = json.loads(path.read_text())
    extra = config.get("extra_special_tokens")
    if isinstance(extra, list):
        del config["extra_special_tokens"]
        if extra:
            config["additional_special_tokens"] = extra
    config["tokenizer_class"] = FAST.get(config.get("tokenizer_class", ""), config.get("tokenizer_class"))
    path.write_text(json.dumps(config, indent=2) + "\n")
