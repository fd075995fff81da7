"""Quantizer handlers, registered per (backend, scheme config type) next to their code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Handler = Callable[..., Path]
HANDLERS: dict[tuple[str, type], Handler] = {}


def register_quantizer(backend: str, config_type: type) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        HANDLERS[(backend, config_type)] = fn
        return fn

    return deco


def load_handlers(backend: str) -> None:
    """Import the backend's handler module (registers its quantizers); its SDK loads lazily."""
    import importlib

    importlib.import_module(f"fewstep.quantize.{backend}")


def quantize_model(backend: str, model: Any, io: Any, cfg: Any, calibration: list[dict], out: Path | None) -> Any:
    """Run the handler for `type(cfg)` on `backend` (a model file in, a file out; for torch-level
    backends such as ModelOpt a module in, a module out); errors list what the backend supports."""
    load_handlers(backend)
    handler = HANDLERS.get((backend, type(cfg)))
    if handler is None:
        known = sorted({c.model_fields["scheme"].default for b, c in HANDLERS if b == backend})
        raise ValueError(f"{backend}: no quantizer for scheme {cfg.scheme!r}; available: {', '.join(known)}")
    return handler(model, io, cfg, calibration, None if out is None else Path(out))
