"""The pipeline's components as export-ready torch modules with named numpy-friendly I/O.

Names follow diffusers (`text_encoder`, `text_encoder_2`, `text_encoder_3`, `transformer`)
plus `vae_decoder`, which folds the latent un-scaling and the [-1, 1] -> [0, 1] mapping in,
so the runtime needs no VAE config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fewstep.component_modules import (
    ClipEncoder,
    T5Encoder,
    Transformer,
    TransformerBody,
    TransformerModulation,
    VaeDecoder,
)
from fewstep.joint_attention import Layout
from fewstep.modulation import modulation_width
from fewstep.null_tokens import supports_collapse
from fewstep.runtime.manifest import MODULATION
from fewstep.sd3_pipeline import t5_length, text_length
from fewstep.targets.base import ComponentIO, TensorSpec

COMPONENT_ATTR = {"vae_decoder": "vae"}  # pipeline attribute behind a component, where the names differ
# each text encoder of an SD3 pipeline and the tokenizer attribute that feeds it
TOKENIZER_OF = {"text_encoder": "tokenizer", "text_encoder_2": "tokenizer_2", "text_encoder_3": "tokenizer_3"}
__all__ = ["MODULATION", "ClipEncoder", "Component", "T5Encoder", "Transformer", "VaeDecoder", "pipeline_components"]


@dataclass
class Component:
    """A torch module to export, its interface, and example inputs for tracing."""

    io: ComponentIO
    module: nn.Module
    example: tuple[torch.Tensor, ...]


def null_tokens(pipe, collapse: bool = True) -> int | None:
    """How many zero T5-slot tokens the transformer component's one null token stands for
    (None: no collapse, the slot is fed in full)."""
    if not collapse or pipe.text_encoder_3 is not None or not supports_collapse(pipe.transformer):
        return None
    return t5_length(pipe)


def t5_slot_length(pipe, collapse: bool = True, null_slots: int = 1) -> int:
    """Tokens in the transformer's T5 slot: T5's, or the zero fill without T5 (`null_slots` when
    collapsed)."""
    return null_slots if null_tokens(pipe, collapse) else t5_length(pipe)


def pipeline_components(
    pipe,
    batch: int = 2,
    collapse_null: bool = True,
    null_slots: int = 1,
    hoist_modulation: bool = False,
    attention_layout: Layout = "heads",
) -> dict[str, Component]:
    """Every component the pipeline keeps (T5 only when present). Without T5 and with
    `collapse_null`, the transformer takes `null_slots` null tokens (1 to the slot's length) for
    the whole zero-filled T5 slot. With `hoist_modulation`, `transformer_modulation` maps
    (timestep, pooled projections) to the adaLN modulation and the transformer takes that
    instead (fewstep/modulation.py). `attention_layout`: the transformer's attention head layout in
    its exported graph (fewstep/joint_attention.py; the outputs do not depend on it)."""
    length = text_length(pipe)
    null = null_tokens(pipe, collapse_null)
    t5_len = null_slots if null else t5_length(pipe)  # t5_slot_length, without deciding the collapse twice
    tcfg = pipe.transformer.config
    c, s = tcfg.in_channels, tcfg.sample_size
    seq = length + t5_len  # CLIP tokens, then T5 tokens (zero-filled when there is no T5)
    ids = torch.zeros(batch, length, dtype=torch.long)
    comps: dict[str, Component] = {}
    for name in ("text_encoder", "text_encoder_2"):
        ios = ComponentIO(
            name, (TensorSpec("input_ids", ("batch", length), "int64"),), ("hidden_states", "text_embeds")
        )
        comps[name] = Component(ios, ClipEncoder(getattr(pipe, name)), (ids,))
    if pipe.text_encoder_3 is not None:
        ios = ComponentIO("text_encoder_3", (TensorSpec("input_ids", ("batch", t5_len), "int64"),), ("hidden_states",))
        t5_ids = torch.zeros(batch, t5_len, dtype=torch.long)
        comps["text_encoder_3"] = Component(ios, T5Encoder(pipe.text_encoder_3), (t5_ids,))
    latent = TensorSpec("hidden_states", ("batch", c, s, s))
    text = TensorSpec("encoder_hidden_states", ("batch", seq, tcfg.joint_attention_dim))
    conditioning = (
        TensorSpec("timestep", ("batch",)),
        TensorSpec("pooled_projections", ("batch", tcfg.pooled_projection_dim)),
    )
    cond_example = (torch.full((batch,), 500.0), torch.randn(batch, tcfg.pooled_projection_dim))
    latent_example, text_example = torch.randn(batch, c, s, s), torch.randn(batch, seq, tcfg.joint_attention_dim)
    if hoist_modulation:
        mio = ComponentIO(MODULATION, conditioning, ("modulation",))
        mod = TransformerModulation(pipe.transformer)  # refuses a transformer it cannot hoist from
        comps[MODULATION] = Component(mio, mod, cond_example)
        width = modulation_width(pipe.transformer)
        tio = ComponentIO("transformer", (latent, text, TensorSpec("modulation", ("batch", width))), ("sample",))
        with torch.no_grad():
            mod_example = mod(*cond_example)
        body = TransformerBody(pipe.transformer, null, null_slots, attention_layout)
        comps["transformer"] = Component(tio, body, (latent_example, text_example, mod_example))
    else:
        tio = ComponentIO("transformer", (latent, conditioning[0], text, conditioning[1]), ("sample",))
        example = (latent_example, cond_example[0], text_example, cond_example[1])
        velocity = Transformer(pipe.transformer, null, null_slots, attention_layout)
        comps["transformer"] = Component(tio, velocity, example)
    vio = ComponentIO("vae_decoder", (TensorSpec("latents", ("batch", c, s, s)),), ("image",))
    comps["vae_decoder"] = Component(vio, VaeDecoder(pipe.vae), (torch.randn(batch, c, s, s),))
    for comp in comps.values():
        comp.module.eval()
    return comps


def torch_outputs(comp: Component, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the torch component on numpy inputs; outputs by name."""
    args = [torch.from_numpy(np.ascontiguousarray(inputs[t.name])) for t in comp.io.inputs]
    with torch.no_grad():
        out = comp.module(*args)
    out = out if isinstance(out, tuple) else (out,)
    return {name: o.float().numpy() for name, o in zip(comp.io.outputs, out)}
