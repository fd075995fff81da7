"""The torch modules fewstep wraps a pipeline's models in (what is exported, gated and, for
targets that run torch, shipped), and how a shipped one is rebuilt from its library's own files.

They sit low in the layers so a torch-running target can rebuild them without importing the
compile pipeline: `wrapper_record` describes one, `rebuild` makes it again from the model
folder that its library's `save_pretrained` wrote (safetensors, nothing unpickled).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fewstep.joint_attention import Layout, check_layout, check_slots, exported_attention, has_attention_processors
from fewstep.modulation import Modulation, modulated_body


class ClipEncoder(nn.Module):
    """token ids -> (penultimate hidden states, projected pooled embedding), as SD3 reads CLIP."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(input_ids, output_hidden_states=True)
        return out.hidden_states[-2], out.text_embeds


class T5Encoder(nn.Module):
    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids)[0]


class Transformer(nn.Module):
    """The velocity model; with `null_tokens` set, the last `null_slots` text tokens stand for that
    many zero tokens (the T5 slot of a T5-less pipeline, collapsed exactly: fewstep/null_tokens.py).
    `attention_layout` is where its attentions split their heads off (fewstep/joint_attention.py:
    the same outputs, a different exported graph)."""

    def __init__(
        self,
        transformer: nn.Module,
        null_tokens: int | None = None,
        null_slots: int = 1,
        attention_layout: Layout = "heads",
    ):
        super().__init__()
        if null_tokens:
            check_slots(null_tokens, null_slots)
        check_layout(attention_layout)
        if not has_attention_processors(transformer):
            attention_layout = "heads"  # nothing to lay out: its graph is the library's own
        self.transformer = transformer
        self.null_tokens = null_tokens
        self.null_slots = null_slots
        self.attention_layout: Layout = attention_layout

    def attention(self):
        """The context its attentions compute in (diffusers' own where nothing differs)."""
        return exported_attention(self.transformer, self.attention_layout, self.null_tokens or None, self.null_slots)

    def forward(self, hidden_states, timestep, encoder_hidden_states, pooled_projections) -> torch.Tensor:
        with self.attention():
            return self.transformer(
                hidden_states=hidden_states,
                timestep=timestep,
                encoder_hidden_states=encoder_hidden_states,
                pooled_projections=pooled_projections,
            ).sample


class TransformerModulation(nn.Module):
    """(timestep, pooled projections) -> the adaLN modulation of every norm (fewstep/modulation.py):
    the part of the velocity model a K-step sampler runs once for all its steps."""

    def __init__(self, transformer: nn.Module):
        super().__init__()
        self.modulation = Modulation(transformer)  # shares the transformer's embedding and adaLN Linears
        self.__dict__["transformer"] = transformer  # the library model (for `wrapper_record`), not a submodule

    def forward(self, timestep: torch.Tensor, pooled_projections: torch.Tensor) -> torch.Tensor:
        return self.modulation(timestep, pooled_projections)


class TransformerBody(Transformer):
    """The velocity model fed a precomputed modulation instead of (timestep, pooled projections)."""

    def forward(self, hidden_states, encoder_hidden_states, modulation) -> torch.Tensor:  # type: ignore[override]
        with self.attention(), modulated_body(self.transformer, modulation):
            return self.transformer(
                hidden_states=hidden_states,
                timestep=modulation[:, 0],  # read by nothing: the embedding is not computed
                encoder_hidden_states=encoder_hidden_states,
                pooled_projections=modulation,
            ).sample


class VaeDecoder(nn.Module):
    """Model latents -> image in [0, 1] (NCHW)."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae
        self.scaling = float(vae.config.scaling_factor)
        self.shift = float(vae.config.shift_factor or 0.0)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        image = self.vae.decode(latents / self.scaling + self.shift).sample
        return (image / 2 + 0.5).clamp(0, 1)


# record name -> (wrapper class, the attribute that holds the library model)
WRAPPERS: dict[str, tuple[type[nn.Module], str]] = {
    "clip": (ClipEncoder, "encoder"),
    "t5": (T5Encoder, "encoder"),
    "transformer": (Transformer, "transformer"),
    "transformer_body": (TransformerBody, "transformer"),
    "transformer_modulation": (TransformerModulation, "transformer"),
    "vae_decoder": (VaeDecoder, "vae"),
}
LIBRARIES = ("diffusers", "transformers")  # the only modules a record may name classes from


def wrapper_record(module: nn.Module) -> dict[str, Any]:
    """What `rebuild` needs besides the model folder."""
    kind, attr = next((k, a) for k, (cls, a) in WRAPPERS.items() if type(module) is cls)
    inner = getattr(module, attr)
    return {
        "wrapper": kind,
        "library": type(inner).__module__.split(".")[0],
        "class": type(inner).__name__,
        "null_tokens": getattr(module, "null_tokens", None),
        "null_slots": getattr(module, "null_slots", 1),
        "attention_layout": getattr(module, "attention_layout", "heads"),
    }


def rebuild(record: dict[str, Any], model_dir: Path, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The wrapper of `record` around its library model loaded from `model_dir` (safetensors only)."""
    if record.get("wrapper") not in WRAPPERS:
        raise ValueError(f"unknown component wrapper {record.get('wrapper')!r}; known: {', '.join(WRAPPERS)}")
    if record.get("library") not in LIBRARIES:
        raise ValueError(f"component library {record.get('library')!r} is not one of {', '.join(LIBRARIES)}")
    cls = getattr(importlib.import_module(record["library"]), str(record["class"]), None)
    if not isinstance(cls, type) or not hasattr(cls, "from_pretrained"):
        raise ValueError(f"{record['library']} has no model class {record['class']!r}")
    inner = cls.from_pretrained(str(model_dir), torch_dtype=dtype, use_safetensors=True, local_files_only=True)
    wrapper, _ = WRAPPERS[record["wrapper"]]
    if record["wrapper"] in ("transformer", "transformer_body"):
        layout = record.get("attention_layout") or "heads"
        return wrapper(inner, record.get("null_tokens"), int(record.get("null_slots") or 1), layout).eval()
    return wrapper(inner).eval()
