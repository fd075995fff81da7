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

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

# the processor and its checks live with the attention's other export choices
from fewstep.joint_attention import check_slots, exported_attention, joint_attentions

__all__ = ["check_slots", "joint_attentions", "null_token_attention", "supports_collapse"]


def supports_collapse(transformer: nn.Module) -> bool:
    return bool(joint_attentions(transformer))


@contextmanager
def null_token_attention(transformer: nn.Module, n: int, slots: int = 1) -> Iterator[None]:
    """Within the block, the transformer's joint attentions treat the last `slots` text tokens as
    n copies of one token (in diffusers' head layout)."""
    with exported_attention(transformer, "heads", n, slots):
        yield
