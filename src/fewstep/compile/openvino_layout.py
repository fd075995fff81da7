"""The diffusers-style OpenVINO layout that the OpenVINO ecosystem reads, written into an
`openvino-cpu` bundle beside fewstep's own components (`compile.openvino_layout: true`):

    model_index.json, scheduler/scheduler_config.json
    text_encoder[_2|_3]/openvino_model.xml|.bin + config.json
    tokenizer[_2|_3]/openvino_tokenizer.xml|.bin (openvino-tokenizers) + the tokenizer's own files
    transformer/openvino_model.xml|.bin + config.json
    vae_decoder/openvino_model.xml|.bin + config.json

OpenVINO GenAI's `Text2ImagePipeline(bundle, "CPU")` and optimum-intel's
`OVStableDiffusion3Pipeline.from_pretrained(bundle)` load it. Each IR is fewstep's component
(quantized or not) with the interface GenAI expects: CLIP encoders return `text_embeds` first and
the penultimate hidden state at output `num_hidden_layers + 1` (optimum-intel's output order);
T5 returns `last_hidden_state`; the VAE decoder returns the image in [-1, 1] and its config says
`scaling_factor: 1, shift_factor: 0` (fewstep folds the latent un-scaling into the IR).

GenAI 2026.4's FlowMatchEulerDiscreteScheduler applies `shift` but not `shift_terminal`, so it
samples a student on its own timesteps only when they need no terminal stretch (see
`genai_sigmas`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fewstep.components import TOKENIZER_OF
from fewstep.targets.openvino_cpu import save_ir

CLIP_ENCODERS = ("text_encoder", "text_encoder_2")
T5_ENCODER = "text_encoder_3"
MODULE_OF = {"vae_decoder": "vae"}


def _config(module) -> dict[str, Any]:
    config = module.config
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    data.pop("_name_or_path", None)
    return json.loads(json.dumps(data, default=list))


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _source(model, name: str):
    """The tensor feeding result `name` (a Result node cannot feed another Result)."""
    return model.output(name).get_node().input_value(0)


def _clip_ir(model, num_layers: int):
    import openvino as ov
    from openvino import opset13 as ops

    embeds, hidden = _source(model, "text_embeds"), _source(model, "hidden_states")
    one = ops.constant(np.float32(1.0))
    # outputs 1..num_layers+1 stand for last_hidden_state, hidden_states.0, ...: GenAI reads only
    # index num_layers + 1 (the penultimate layer); the others are cheap copies with unique names
    results = [ops.result(embeds)]
    results += [ops.result(ops.multiply(hidden, one)) for _ in range(num_layers)]
    results.append(ops.result(hidden))
    ir = ov.Model(results, model.get_parameters(), "text_encoder")
    names = ["text_embeds", "last_hidden_state", *(f"hidden_states.{i}" for i in range(num_layers))]
    for out, name in zip(ir.outputs, names):
        out.get_tensor().set_names({name})
    ir.outputs[-1].get_tensor().add_names({"hidden_states"})  # fewstep's name for the same tensor
    return ir


def _t5_ir(model):
    import openvino as ov
    from openvino import opset13 as ops

    ir = ov.Model([ops.result(_source(model, "hidden_states"))], model.get_parameters(), "text_encoder_3")
    ir.outputs[0].get_tensor().set_names({"last_hidden_state", "hidden_states"})  # the ecosystem's, fewstep's
    return ir


def _vae_ir(model):
    import openvino as ov
    from openvino import opset13 as ops

    image = _source(model, "image")  # [0, 1]
    signed = ops.subtract(ops.multiply(image, ops.constant(np.float32(2.0))), ops.constant(np.float32(1.0)))
    ir = ov.Model([ops.result(signed)], model.get_parameters(), "vae_decoder")
    ir.inputs[0].get_tensor().add_names({"latent_sample"})  # optimum-intel's name for the input
    ir.outputs[0].get_tensor().set_names({"sample"})
    return ir


def _model_index(pipe, components: dict) -> dict[str, Any]:
    import diffusers

    index = {"_class_name": type(pipe).__name__, "_diffusers_version": diffusers.__version__}
    index.update({k: list(v) if isinstance(v, (list, tuple)) else v for k, v in dict(pipe.config).items()})
    index.pop("_name_or_path", None)
    for name in ("text_encoder_3", "tokenizer_3"):
        if T5_ENCODER not in components:
            index[name] = [None, None]
    return index


def module_configs(pipe, names) -> dict[str, dict[str, Any]]:
    """Each component module's config and the pipeline's model index (read before the build frees
    the torch modules)."""
    out = {}
    for name in names:
        module = getattr(pipe, MODULE_OF.get(name, name), None)
        if module is None:
            raise ValueError(f"openvino_layout: the pipeline has no {name!r} module to describe")
        out[name] = _config(module)
    out["model_index"] = _model_index(pipe, names)
    return out


def write_layout(
    root: Path, pipe, components: dict[str, Any], configs: dict[str, dict[str, Any]], token_lengths: dict[str, int]
) -> dict[str, list[str]]:
    """Write the layout into the bundle directory `root` from its OpenVINO components (which it
    then replaces: the layout's IRs are the bundle's components, read by fewstep's runtime too);
    returns each component's layout files, relative to `root`. `components` are the manifest's
    component records, `configs` what `module_configs` read."""
    import openvino as ov

    try:
        from openvino_tokenizers import convert_tokenizer
    except ImportError:
        raise ImportError("openvino_layout needs openvino-tokenizers: pip install 'fewstep[genai]'") from None
    core = ov.Core()
    root = Path(root)

    def component(name: str):
        return core.read_model(str(root / "components" / components[name].files[0]))

    written: dict[str, list[str]] = {}
    write_json(root / "model_index.json", configs["model_index"])
    for name in components:
        config = dict(configs[name])
        if name in CLIP_ENCODERS:
            ir = _clip_ir(component(name), int(config["num_hidden_layers"]))
            config["max_position_embeddings"] = token_lengths[name]  # GenAI pads prompts to this length
        elif name == T5_ENCODER:
            ir = _t5_ir(component(name))
        elif name == "vae_decoder":
            ir = _vae_ir(component(name))
            config.update(scaling_factor=1.0, shift_factor=0.0)  # folded into the IR
        else:
            ir = component(name)
        save_ir(ir, root / name / "openvino_model.xml")
        write_json(root / name / "config.json", config)
        written[name] = [f"{name}/openvino_model.xml", f"{name}/openvino_model.bin"]
    for enc, attr in TOKENIZER_OF.items():
        tokenizer = getattr(pipe, attr, None)
        if enc not in components or tokenizer is None:
            continue
        folder = root / attr
        ov.save_model(convert_tokenizer(tokenizer, with_detokenizer=False), str(folder / "openvino_tokenizer.xml"))
        tokenizer.save_pretrained(str(folder))
    return written


def genai_sigmas(scheduler_config: dict[str, Any], steps: int) -> list[float]:
    """The K + 1 sigmas OpenVINO GenAI 2026.4's FlowMatchEulerDiscreteScheduler samples on: the
    stock spacing and `shift`, no `shift_terminal` stretch."""
    n = int(scheduler_config.get("num_train_timesteps", 1000))
    shift = float(scheduler_config.get("shift", 1.0))

    def shifted(s: np.ndarray) -> np.ndarray:
        return shift * s / (1 + (shift - 1) * s)

    base = shifted(np.linspace(1, n, n)[::-1] / n)
    sigmas = shifted(np.linspace(base[0] * n, base[-1] * n, steps) / n)
    return [float(s) for s in np.float32(sigmas)] + [0.0]
