"""Multi-head discriminator on the fake score's intermediate token features.

Small heads read the image-token features of several fake-score transformer blocks
("multi-head"); each head is re-initialised with a small probability per step so the
discriminator does not over-fit (METHOD.md: p = 0.005).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from fewstep.distill.schedule import velocity


class DiscriminatorHeads(nn.Module):
    def __init__(self, dim: int, blocks: tuple[int, ...]):
        super().__init__()
        self.blocks = tuple(blocks)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 1)) for _ in self.blocks
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """features: one (N, tokens, dim) tensor per block -> (N,) logits (mean over heads, tokens)."""
        logits = [head(f).mean(dim=(1, 2)) for head, f in zip(self.heads, features)]
        return torch.stack(logits).mean(0)

    def maybe_reinit(self, p: float, rng: np.random.Generator) -> int:
        """Re-initialise each head with probability p; return how many were reset."""
        reset = 0
        for head in self.heads:
            if rng.random() < p:
                for m in head.modules():
                    if isinstance(m, (nn.Linear, nn.LayerNorm)):
                        m.reset_parameters()
                reset += 1
        return reset


@contextmanager
def capture_blocks(transformer, blocks: tuple[int, ...]) -> Iterator[list[torch.Tensor]]:
    """Collect the image-token output of the given transformer blocks during a forward pass."""
    captured: list[torch.Tensor] = []
    hooks = []
    for i in blocks:
        block = transformer.transformer_blocks[i]

        def hook(_module, _inputs, output):
            captured.append(output[1] if isinstance(output, tuple) else output)

        hooks.append(block.register_forward_hook(hook))
    try:
        yield captured
    finally:
        for h in hooks:
            h.remove()


def discriminate(fake_score, heads: DiscriminatorHeads, x0: torch.Tensor, t: torch.Tensor, cond) -> torch.Tensor:
    """Noise x0 to t, run the fake score and classify its block features."""
    eps = torch.randn(x0.shape, dtype=x0.dtype).to(x0.device)  # the CPU stream on any device
    tt = t.to(x0.device).view(-1, 1, 1, 1)
    x_t = (1 - tt) * x0 + tt * eps
    with capture_blocks(fake_score, heads.blocks) as feats:
        velocity(fake_score, x_t, t, *cond)
    return heads(feats)


def discriminator_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    return nn.functional.softplus(fake_logits).mean() + nn.functional.softplus(-real_logits).mean()


def generator_adv_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return nn.functional.softplus(-fake_logits).mean()
