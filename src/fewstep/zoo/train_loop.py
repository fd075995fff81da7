"""The toy family's training helpers: the shared loop (`fewstep.training`) plus EMA and an optional
`torch.compile`d forward."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable

import torch

from fewstep.training import adamw, augment, cosine_lr, optimize, pixels, recon_loss, to_tensor, train_loop

__all__ = ["adamw", "augment", "cosine_lr", "optimize", "to_tensor", "train_loop", "pixels", "recon_loss"]


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1 - decay)


class _CompiledOrEager:
    """`torch.compile(model)`, falling back to the eager model if compiling fails (inductor
    needs a C++ toolchain and Python headers); the fallback is reported once."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.compiled: Callable[..., object] | None = torch.compile(model)

    def __call__(self, *args, **kwargs):
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - any compile failure: run eager
                warnings.warn(f"torch.compile failed, training eager: {str(err).splitlines()[0][:200]}", stacklevel=2)
                self.compiled = None
        return self.model(*args, **kwargs)


def compiled_forward(model: torch.nn.Module, enabled: bool) -> Callable[..., object]:
    """The model's forward, compiled when asked and a C++ compiler is present.

    The compiled wrapper shares the model's parameters; checkpoints keep saving `model`
    itself, so their keys do not change.
    """
    if enabled and (shutil.which("g++") or shutil.which("c++")):
        return _CompiledOrEager(model)
    return model
