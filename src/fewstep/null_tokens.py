"""Exact removal of the zero-filled T5 slot's duplicate tokens from the transformer.

Without T5, SD3 pipelines feed `t5_length` (256) zero vectors in the T5 slot. SD3's
transformer puts no positional encoding on text tokens, so those tokens enter identical and
stay identical through every block: every op but attention is per token, and identical
queries attend identically. In attention, n identical keys (with identical values) weigh
exactly as one key whose logit is raised by ln(n). So the transformer runs with one null
token and a ln(n) bias on its key: the same output, n - 1 fewer tokens in every GEMM and
attention (SD3.5-Medium at 256 px: 589 -> 334 tokens per step).

The slot can also collapse to m > 1 null tokens, each with a ln(n / m) bias (m identical keys
then weigh as n, exactly as one does), to set the joint token count (e.g. one the attention
kernel's blocks divide).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


def joint_attentions(transformer: nn.Module) -> list[nn.Module]:
    """The joint (image + text) attention modules of an SD3-style transformer; [] if it has none."""
    from diffusers.models.attention_processor import JointAttnProcessor2_0

    blocks = getattr(transformer, "transformer_blocks", None) or []
    attns = [getattr(b, "attn", None) for b in blocks]
    if not attns or any(a is None or not isinstance(a.processor, JointAttnProcessor2_0) for a in attns):
        return []
    return attns


def supports_collapse(transformer: nn.Module) -> bool:
    return bool(joint_attentions(transformer))


def check_slots(n: int, slots: int) -> None:
    """A zero slot of n tokens collapses to 1..n null tokens."""
    if n < 1:
        raise ValueError(f"null token count must be >= 1, got {n}")
    if not 1 <= slots <= n:
        raise ValueError(f"restructure.null_slots: {slots} for a zero T5 slot of {n} tokens; allowed: 1 to {n}")


class NullTokenJointAttention:
    """Joint attention (as diffusers' JointAttnProcessor2_0) whose last `slots` keys stand for `n`
    copies of one token (each for n / slots of them)."""

    def __init__(self, n: int, slots: int = 1):
        check_slots(n, slots)
        self.slots = slots
        self.log_share = math.log(n / slots)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, *args, **kwargs):
        if encoder_hidden_states is None or attention_mask is not None:
            raise ValueError("null-token attention needs text tokens and no attention mask")
        b, n_image = hidden_states.shape[0], hidden_states.shape[1]

        def heads(x: torch.Tensor, norm) -> torch.Tensor:
            x = x.view(b, -1, attn.heads, x.shape[-1] // attn.heads).transpose(1, 2)
            return norm(x) if norm is not None else x

        q = torch.cat(
            [
                heads(attn.to_q(hidden_states), attn.norm_q),
                heads(attn.add_q_proj(encoder_hidden_states), attn.norm_added_q),
            ],
            2,
        )
        k = torch.cat(
            [
                heads(attn.to_k(hidden_states), attn.norm_k),
                heads(attn.add_k_proj(encoder_hidden_states), attn.norm_added_k),
            ],
            2,
        )
        v = torch.cat([heads(attn.to_v(hidden_states), None), heads(attn.add_v_proj(encoder_hidden_states), None)], 2)
        # (1, heads, 1, keys), the null tokens the last keys. The head axis is explicit on purpose: OpenVINO's
        # fused bf16 attention (2026.4, CPU snippets) computes garbage, NaN included, for an additive mask that
        # broadcasts over both heads and queries, (1, 1, 1, keys); with the head axis given it is exact
        # (tests/test_null_tokens.py; benchmarks/ov_mask_layouts.py reproduces it on one attention).
        zero = torch.zeros_like(k[:1, :, :, :1]).transpose(2, 3)
        bias = torch.cat([zero[..., : -self.slots], zero[..., -self.slots :] + self.log_share], -1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = out.transpose(1, 2).reshape(b, -1, attn.heads * out.shape[-1]).to(q.dtype)
        image, text = out[:, :n_image], out[:, n_image:]
        if not attn.context_pre_only:
            text = attn.to_add_out(text)
        return attn.to_out[1](attn.to_out[0](image)), text


@contextmanager
def null_token_attention(transformer: nn.Module, n: int, slots: int = 1) -> Iterator[None]:
    """Within the block, the transformer's joint attentions treat the last `slots` text tokens as
    n copies of one token."""
    attns = joint_attentions(transformer)
    if not attns:
        raise ValueError("the transformer has no SD3 joint attention: the null-token collapse does not apply")
    saved = [a.processor for a in attns]
    processor = NullTokenJointAttention(n, slots)
    try:
        for a in attns:
            a.processor = processor
        yield
    finally:
        for a, p in zip(attns, saved):
            a.processor = p
