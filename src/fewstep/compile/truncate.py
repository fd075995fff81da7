"""Encoder depth truncation: keep the first N layers of a text encoder, then fine-tune the
shortened encoder for a few steps to reproduce the full encoder's outputs that SD3 reads
(CLIP: penultimate hidden states and the projected pooled embedding; T5: the last hidden
states) on training prompts. The change is gated like every restructuring."""

from __future__ import annotations

import copy

import torch
from torch import nn


def layer_list(encoder: nn.Module) -> nn.ModuleList:
    """The encoder's layer stack (CLIP text model or T5 encoder)."""
    if hasattr(encoder, "text_model"):
        return encoder.text_model.encoder.layers
    if hasattr(encoder, "encoder") and hasattr(encoder.encoder, "block"):
        return encoder.encoder.block
    raise ValueError(f"cannot truncate {type(encoder).__name__}: not a CLIP text model or a T5 encoder")


def truncated(encoder: nn.Module, keep: int) -> nn.Module:
    """A copy of `encoder` with only its first `keep` layers."""
    layers = layer_list(encoder)
    if not 1 <= keep < len(layers):
        raise ValueError(f"truncate: keep must be in [1, {len(layers) - 1}] for this encoder, got {keep}")
    short = copy.deepcopy(encoder)
    stack = layer_list(short)
    del stack[keep:]
    cfg = short.config
    for attr in ("num_hidden_layers", "num_layers"):
        if hasattr(cfg, attr):
            setattr(cfg, attr, keep)
    return short


def _targets(encoder: nn.Module, ids: torch.Tensor) -> list[torch.Tensor]:
    if hasattr(encoder, "text_model"):
        out = encoder(ids, output_hidden_states=True)
        return [out.hidden_states[-2], out.text_embeds]
    return [encoder(ids)[0]]


def feature_match(
    short: nn.Module, full: nn.Module, token_batches: list[torch.Tensor], steps: int, lr: float = 3e-4
) -> list[float]:
    """Fine-tune `short` to reproduce `full`'s SD3-facing outputs; returns the loss per step."""
    full.eval().requires_grad_(False)
    short.train().requires_grad_(True)
    opt = torch.optim.AdamW(short.parameters(), lr, weight_decay=0.0)
    losses = []
    for step in range(steps):
        ids = token_batches[step % len(token_batches)]
        with torch.no_grad():
            want = _targets(full, ids)
        got = _targets(short, ids)
        loss = sum(((g - w) ** 2).mean() / (w**2).mean().clamp(min=1e-8) for g, w in zip(got, want))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
