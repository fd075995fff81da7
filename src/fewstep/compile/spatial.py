"""The build's crop-calibration step (`quantize/spatial.py` says why): which crop a component's
int8 scheme calibrates on, and its crop-size export, made while the torch module is still loaded."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from fewstep.compile.steps import StepResult, export_step
from fewstep.quantize.config import Int8Config
from fewstep.quantize.spatial import SPATIAL_INPUTS, auto_crop, resizer
from fewstep.runtime import memory


@dataclass(frozen=True)
class Crop:
    """A component's crop-size export and what its calibration inputs are cut to."""

    size: int  # latent pixels a side
    input: str  # the spatial input cropped
    exported: StepResult


def _spatial_side(comp, name: str) -> int:
    spec = next(t for t in comp.io.inputs if t.name == name)
    h, w = spec.shape[-2:]
    if not (isinstance(h, int) and isinstance(w, int)) or h != w:
        raise ValueError(f"{comp.io.name}: calibration_crop needs a static square {name!r}, got {h}x{w}")
    return h


def crop_size(comp, target, scheme, full: Path) -> int | None:
    """The crop side `scheme` asks for on `comp` (None: calibrate at full size)."""
    wanted = getattr(scheme, "calibration_crop", None) if isinstance(scheme, Int8Config) else None
    name = SPATIAL_INPUTS.get(comp.io.name)
    if wanted is None or name is None or target.quantizes_before_export:
        return None
    module = resizer(target.quant_backend)
    if module is None:
        if wanted == "auto":
            return None
        raise ValueError(
            f"calibration_crop: {target.name!r} quantizes with {target.quant_backend!r}, which cannot carry "
            "crop-calibrated quantizers to full size (only openvino can); set calibration_crop: auto or null"
        )
    side = _spatial_side(comp, name)
    if wanted == "auto":
        need = module.statistics_bytes(full)
        return None if need is None else auto_crop(side, need, memory.available_memory_bytes())
    if wanted > side:
        raise ValueError(f"calibration_crop: {wanted} is larger than the {side}x{side} latent of {comp.io.name}")
    return None if wanted == side else wanted


def crop_component(comp, size: int):
    """`comp` with its spatial input (`SPATIAL_INPUTS`) at `size` x `size`: the same module, so
    its export names every op as the full-size export does."""
    name = SPATIAL_INPUTS[comp.io.name]
    inputs = tuple(replace(t, shape=(*t.shape[:-2], size, size)) if t.name == name else t for t in comp.io.inputs)
    example = tuple(
        torch.randn(*x.shape[:-2], size, size) if t.name == name else x
        for t, x in zip(comp.io.inputs, comp.example, strict=True)
    )
    return replace(comp, io=replace(comp.io, inputs=inputs), example=example)


def crop_export(work: Path, comp, target, scheme, full: StepResult, **export: Any) -> Crop | None:
    """The crop-size export of `comp` (a cached export step) where `scheme` calibrates on crops;
    `export` is export_step's model, batch, exporter and restructure keywords."""
    size = crop_size(comp, target, scheme, full.path)
    if size is None:
        return None
    small = crop_component(comp, size)
    exported, _ = export_step(
        work, small, target, torch_scheme=None, calibration=None, items=[], variant=f"crop{size}", **export
    )
    return Crop(size, SPATIAL_INPUTS[comp.io.name], exported)
