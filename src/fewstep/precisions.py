"""Precisions, in one registry: what each precision name means, how it is checked, and which
targets accept it. The scheme config classes (`quantize/config.py`) name themselves after these
entries; targets declare the names they accept (checked against this registry when a target is
loaded); gates start from each entry's thresholds.

A plugin adds a precision with `register_precision(Precision(...))` before its target loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

Kind = Literal["float", "weights", "static", "search", "qdq"]


@dataclass(frozen=True)
class Precision:
    name: str
    kind: Kind  # float: no quantizer; weights: weight-only; static: W8A8 calibrated; search: mixed; qdq: ModelOpt
    calibrated: bool  # whether its default scheme needs calibration data
    gates: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # starting thresholds
    description: str = ""

    @property
    def quantized(self) -> bool:
        return self.kind != "float"


_QUANT8 = {
    "tensor": {"cosine_min": 0.98, "rel_l2_max": 0.25, "max_abs_max": None},
    "image": {"psnr_min": 30.0, "ssim_min": 0.95},
    "distribution": {"fid_ratio_max": 1.05, "alignment_drop_max": 0.01},
}
_QUANT4 = {
    "tensor": {"cosine_min": 0.95, "rel_l2_max": 0.35, "max_abs_max": None},
    "image": {"psnr_min": 22.0, "ssim_min": 0.85},
    "distribution": {"fid_ratio_max": 1.10, "alignment_drop_max": 0.05},
}

_REGISTRY: dict[str, Precision] = {}


def register_precision(p: Precision) -> Precision:
    if p.name in _REGISTRY and _REGISTRY[p.name] != p:
        raise ValueError(f"precision {p.name!r} is registered already with other settings")
    _REGISTRY[p.name] = p
    return p


for _p in (
    Precision("fp32", "float", False, description="float32 everywhere"),
    Precision("fp16", "float", False, description="float16 compute (GPU targets)"),
    Precision("bf16", "float", False, description="bfloat16 compute (GPU targets)"),
    Precision("fp16-weights", "float", False, description="weights stored in float16, compute in float32"),
    Precision("int8", "static", True, _QUANT8, "static W8A8, calibrated on the student's own trajectories"),
    Precision("int8-weights", "weights", False, _QUANT8, "int8 weights, float activations"),
    Precision("int4-weights", "weights", False, _QUANT4, "group-wise int4 weights (data-free unless AWQ / ratio)"),
    Precision(
        "mixed",
        "search",
        False,
        {**_QUANT8, "image": {"psnr_min": 30.0, "ssim_min": 0.93}},
        "int4/int8 weights per layer: the smallest bundle whose gates pass",
    ),
    Precision("int8-sq", "qdq", True, _QUANT8, "ModelOpt SmoothQuant int8 (Q/DQ ONNX, TensorRT)"),
    Precision("fp8", "qdq", True, _QUANT8, "ModelOpt FP8 (Q/DQ ONNX, TensorRT)"),
    Precision("int4-awq", "qdq", True, _QUANT4, "ModelOpt INT4 AWQ (TensorRT)"),
):
    register_precision(_p)


def precision(name: str) -> Precision:
    """The registered precision; an unknown name is a ValueError listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown precision {name!r}; known: {', '.join(_REGISTRY)}") from None


def precisions() -> Mapping[str, Precision]:
    return MappingProxyType(_REGISTRY)


def default_gates(name: str) -> dict[str, dict[str, Any]]:
    """A fresh copy of the precision's starting thresholds (empty for an unknown or float one)."""
    p = _REGISTRY.get(name)
    return {k: dict(v) for k, v in (p.gates if p else {}).items()}
