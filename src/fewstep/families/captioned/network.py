"""The image -> caption-concept network: a small convolutional trunk that keeps a coarse
spatial layout (4x4), a hidden layer whose activations are the FID features, and one logit per
vocabulary concept (multi-label)."""

from __future__ import annotations

import torch
from torch import nn


class ConceptNet(nn.Module):
    def __init__(self, num_concepts: int, width: int = 32, features: int = 256):
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> nn.Module:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.GELU())

        w = width
        self.trunk = nn.Sequential(
            block(3, w, 1), block(w, w, 1), block(w, 2 * w, 2), block(2 * w, 4 * w, 2), block(4 * w, 4 * w, 1)
        )
        self.pool = nn.AdaptiveAvgPool2d(4)  # where things are matters ("left of", "top")
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 16, features), nn.GELU())
        self.head = nn.Linear(features, num_concepts)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images: N,3,H,W in [0, 1] at the evaluator's resolution."""
        h = self.hidden(self.pool(self.trunk(images * 2 - 1)))
        return {"features": h, "logits": self.head(h)}
