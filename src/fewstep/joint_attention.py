"""SD3's attention as fewstep exports it: diffusers' `JointAttnProcessor2_0` arithmetic, with two
export-only choices that leave every output bit the same in torch.

- **Layout** (`heads`, `tokens` or `keys`): where the heads are split off. diffusers transposes q, k
  and v to (batch, heads, tokens, dim) right after their projections, then RMS-normalizes them,
  concatenates image and text tokens and calls SDPA. `tokens` keeps them (batch, tokens, heads, dim)
  through the norms (over the last axis either way) and the concatenation, and transposes only at
  SDPA's inputs; `keys` does so for k and v and leaves q head-major. In OpenVINO's CPU plugin a
  token-major concatenation runs in place and the fused attention subgraph reads a token-major q or
  v through its own input transposes: up to six standalone Transpose nodes and three copying
  Concats per joint attention fewer, but that subgraph then reads strided rows and runs 1-3 %
  slower; on real-size SD3.5-Medium steps the two cancel (benchmarks/ov_attention_layout.py,
  docs/benchmarks.md), so the built-in targets keep `heads` (compile's `attention_layout: auto`).
- **Null tokens**: the last `slots` text keys stand for `n` copies of one token (fewstep/null_tokens.py
  explains why that is exact), as a ln(n / slots) bias on those keys.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:  # torch is imported where attention runs: target classes check layouts without it
    import torch
    from torch import nn

Layout = Literal["heads", "tokens", "keys"]
LAYOUTS: tuple[str, ...] = get_args(Layout)
# which of q, k, v each layout keeps token-major up to the attention
TOKEN_MAJOR: dict[str, tuple[str, ...]] = {"heads": (), "tokens": ("q", "k", "v"), "keys": ("k", "v")}


def check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"attention_layout: {layout!r}; allowed: {', '.join(LAYOUTS)}")


def check_slots(n: int, slots: int) -> None:
    """A zero slot of n tokens collapses to 1..n null tokens."""
    if n < 1:
        raise ValueError(f"null token count must be >= 1, got {n}")
    if not 1 <= slots <= n:
        raise ValueError(f"restructure.null_slots: {slots} for a zero T5 slot of {n} tokens; allowed: 1 to {n}")


def _block_attentions(transformer: nn.Module, attr: str) -> list[nn.Module | None]:
    """Each transformer block's `attr` attention (None where a block has none)."""
    return [getattr(b, attr, None) for b in getattr(transformer, "transformer_blocks", None) or []]


def _stock(attn: nn.Module | None) -> bool:
    from diffusers.models.attention_processor import JointAttnProcessor2_0

    return attn is not None and isinstance(attn.processor, JointAttnProcessor2_0)


def joint_attentions(transformer: nn.Module) -> list[nn.Module]:
    """The joint (image + text) attention modules of an SD3-style transformer; [] if it has none."""
    attns = _block_attentions(transformer, "attn")
    return attns if attns and all(_stock(a) for a in attns) else []  # type: ignore[return-value]


def image_attentions(transformer: nn.Module) -> list[nn.Module]:
    """SD3.5's image-only second attentions (MMDiT-X `attn2`, run with the joint processor and no
    text), where the blocks have them and they use diffusers' stock joint processor."""
    return [a for a in _block_attentions(transformer, "attn2") if _stock(a)]  # type: ignore[misc]


def has_attention_processors(transformer: nn.Module) -> bool:
    """Whether the transformer has attentions whose layout `exported_attention` sets."""
    return bool(joint_attentions(transformer) or image_attentions(transformer))


class JointAttention:
    """`JointAttnProcessor2_0`'s arithmetic in the given head layout; with `null_tokens` set, the
    last `slots` keys stand for that many copies of one token."""

    def __init__(self, layout: Layout = "heads", null_tokens: int | None = None, slots: int = 1):
        check_layout(layout)
        if null_tokens is not None:
            check_slots(null_tokens, slots)
        self.layout = layout
        self.slots = slots
        self.log_share = math.log(null_tokens / slots) if null_tokens is not None else None

    def _part(self, attn, role: str, image: torch.Tensor, text: torch.Tensor | None, norms) -> torch.Tensor:
        """One of q, k, v: image (then text) tokens split into heads, normalized, (batch, heads, tokens, dim)."""
        import torch

        token_major = role in TOKEN_MAJOR[self.layout]

        def heads(x: torch.Tensor, norm) -> torch.Tensor:
            x = x.view(x.shape[0], -1, attn.heads, x.shape[-1] // attn.heads)
            x = x if token_major else x.transpose(1, 2)
            return norm(x) if norm is not None else x

        x = heads(image, norms[0])
        if text is not None:
            x = torch.cat([x, heads(text, norms[1])], 1 if token_major else 2)
        return x.transpose(1, 2) if token_major else x  # token-major: transposed at the attention's input

    def _split(self, attn, hidden: torch.Tensor, context: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """q, k, v of the image tokens (then the text tokens'), each (batch, heads, tokens, dim)."""
        text = context is not None
        return (
            self._part(attn, "q", attn.to_q(hidden), attn.add_q_proj(context) if text else None,
                       (attn.norm_q, attn.norm_added_q)),
            self._part(attn, "k", attn.to_k(hidden), attn.add_k_proj(context) if text else None,
                       (attn.norm_k, attn.norm_added_k)),
            self._part(attn, "v", attn.to_v(hidden), attn.add_v_proj(context) if text else None, (None, None)),
        )  # fmt: skip

    def _bias(self, k: torch.Tensor) -> torch.Tensor:
        import torch

        # (1, heads, 1, keys), the null tokens the last keys. The head axis is explicit on purpose: OpenVINO's
        # fused bf16 attention (2026.4, CPU snippets) computes garbage, NaN included, for an additive mask that
        # broadcasts over both heads and queries, (1, 1, 1, keys); with the head axis given it is exact
        # (tests/test_null_tokens.py; benchmarks/ov_mask_layouts.py reproduces it on one attention).
        zero = torch.zeros_like(k[:1, :, :, :1]).transpose(2, 3)
        return torch.cat([zero[..., : -self.slots], zero[..., -self.slots :] + self.log_share], -1)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, *args, **kwargs):
        import torch.nn.functional as F

        if attention_mask is not None:
            raise ValueError("fewstep's exported joint attention takes no attention mask")
        if self.log_share is not None and encoder_hidden_states is None:
            raise ValueError("null-token attention needs text tokens")
        b, n_image = hidden_states.shape[0], hidden_states.shape[1]
        q, k, v = self._split(attn, hidden_states, encoder_hidden_states)
        bias = self._bias(k) if self.log_share is not None else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = out.transpose(1, 2).reshape(b, -1, attn.heads * out.shape[-1]).to(q.dtype)
        if encoder_hidden_states is None:
            return attn.to_out[1](attn.to_out[0](out))
        image, text = out[:, :n_image], out[:, n_image:]
        if not attn.context_pre_only:
            text = attn.to_add_out(text)
        return attn.to_out[1](attn.to_out[0](image)), text


@contextmanager
def exported_attention(
    transformer: nn.Module, layout: Layout = "heads", null_tokens: int | None = None, slots: int = 1
) -> Iterator[None]:
    """Within the block, the transformer's attentions compute as `JointAttention` does: in `layout`,
    and (with `null_tokens`) the joint ones with the last `slots` text tokens standing for that many
    zero tokens. `heads` without null tokens leaves diffusers' processors in place."""
    check_layout(layout)
    joint = joint_attentions(transformer)
    if null_tokens is not None and not joint:
        raise ValueError("the transformer has no SD3 joint attention: the null-token collapse does not apply")
    swaps: list[tuple[nn.Module, JointAttention]] = []
    if null_tokens is not None or layout != "heads":
        joint_processor = JointAttention(layout, null_tokens, slots)  # one processor serves every block
        swaps += [(a, joint_processor) for a in joint]
    if layout != "heads":
        image_processor = JointAttention(layout)
        swaps += [(a, image_processor) for a in image_attentions(transformer)]
    saved = [a.processor for a, _ in swaps]
    try:
        for a, processor in swaps:
            a.processor = processor
        yield
    finally:
        for (a, _), p in zip(swaps, saved):
            a.processor = p
