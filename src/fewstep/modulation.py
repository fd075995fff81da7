"""The transformer's adaLN modulation, hoisted out of the denoising step.

Every adaLN norm of an SD3 transformer (each block's `norm1` / `norm1_context`, and `norm_out`)
maps the timestep-and-pooled-text embedding `temb` to its shifts, scales and gates with one
Linear of `silu(temb)`; nothing else reads `temb`. Those Linears hold about a third of a
billion weights in SD3.5-Medium (0.77 G), and a step runs them at one row per image: their cost
is reading the weights (11 % of a 256 px W8A8 step on a 2-core AMX Xeon, docs/benchmarks.md).
A K-step student knows all its timesteps up front, so the runtime can compute every step's
modulation in one call (K rows, one weight read) and feed the step only the result.

`Modulation` is that first part: (timestep, pooled) -> the concatenation of every adaLN Linear's
output. `modulated_body` runs the transformer with each adaLN Linear replaced by its slice of
that tensor: exact (the same arithmetic, split in two).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

# diffusers' adaLN norms whose `linear` maps silu(temb) to modulation vectors
ADALN_CLASSES = frozenset(
    {"AdaLayerNormZero", "SD35AdaLayerNormZeroX", "AdaLayerNormContinuous", "AdaLayerNormZeroSingle"}
)


def adaln_norms(transformer: nn.Module) -> list[nn.Module]:
    """The transformer's adaLN norms in module order (the order of the modulation's columns)."""
    return [
        m
        for m in transformer.modules()
        if type(m).__name__ in ADALN_CLASSES
        and isinstance(getattr(m, "linear", None), nn.Linear)
        and getattr(m, "emb", None) is None  # no embedding of its own: it reads temb
    ]


def _hoistable_norms(transformer: nn.Module) -> list[nn.Module]:
    """The adaLN norms of an SD3 transformer (whose embedding `temb` they alone read); else []."""
    if type(transformer).__name__ != "SD3Transformer2DModel" or not hasattr(transformer, "time_text_embed"):
        return []
    return adaln_norms(transformer)


def supports_hoist(transformer: nn.Module) -> bool:
    """An SD3 transformer whose embedding `temb` is read by adaLN norms only."""
    return bool(_hoistable_norms(transformer))


def modulation_width(transformer: nn.Module) -> int:
    """Columns of the hoisted modulation: every adaLN Linear's outputs, side by side."""
    return sum(m.linear.out_features for m in adaln_norms(transformer))


def check_hoist(transformer: nn.Module) -> list[nn.Module]:
    """The transformer's adaLN norms; a ValueError naming the option where it cannot be hoisted."""
    norms = _hoistable_norms(transformer)
    if not norms:
        raise ValueError(
            f"restructure.hoist_modulation: {type(transformer).__name__} is not an SD3 transformer with adaLN "
            "norms; the modulation can be hoisted from SD3Transformer2DModel only"
        )
    return norms


class Modulation(nn.Module):
    """(timestep, pooled projections) -> every adaLN Linear's output, concatenated (batch, width).

    It shares the transformer's modules (no weights copied)."""

    def __init__(self, transformer: nn.Module):
        super().__init__()
        norms = check_hoist(transformer)
        self.embed = transformer.time_text_embed
        self.linears = nn.ModuleList([m.linear for m in norms])

    def forward(self, timestep: torch.Tensor, pooled_projections: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.embed(timestep, pooled_projections))
        return torch.cat([linear(x) for linear in self.linears], dim=1)


class _Given:
    """The modulation tensor of the call in progress."""

    value: torch.Tensor | None = None


class _Columns(nn.Module):
    """Stands in for one adaLN Linear: its columns of the given modulation, whatever its input."""

    def __init__(self, given: _Given, start: int, stop: int):
        super().__init__()
        self.given, self.start, self.stop = given, start, stop

    def forward(self, _: torch.Tensor) -> torch.Tensor:
        return self.given.value[:, self.start : self.stop]


class _NoEmbedding(nn.Module):
    """Stands in for `time_text_embed`: zeros the adaLN stand-ins ignore (no embedding weights)."""

    def __init__(self, given: _Given, width: int):
        super().__init__()
        self.given, self.width = given, width

    def forward(self, *_: torch.Tensor) -> torch.Tensor:
        return self.given.value.new_zeros(self.given.value.shape[0], self.width)


@contextmanager
def modulated_body(transformer: nn.Module, modulation: torch.Tensor) -> Iterator[None]:
    """Within the block, the transformer's adaLN Linears return their columns of `modulation`
    (as `Modulation` computes it) and its embedding is not computed; call it with any timestep
    and pooled projections of the right batch."""
    norms = check_hoist(transformer)
    width = sum(m.linear.out_features for m in norms)
    if modulation.shape[-1] != width:
        raise ValueError(f"modulation has {modulation.shape[-1]} columns; this transformer's adaLN norms take {width}")
    given = _Given()
    given.value = modulation
    saved_linears = [m.linear for m in norms]
    saved_embed = transformer.time_text_embed
    try:
        start = 0
        for m in norms:
            stop = start + m.linear.out_features
            m.linear = _Columns(given, start, stop)
            start = stop
        transformer.time_text_embed = _NoEmbedding(given, saved_linears[0].in_features)
        yield
    finally:
        for m, linear in zip(norms, saved_linears):
            m.linear = linear
        transformer.time_text_embed = saved_embed
