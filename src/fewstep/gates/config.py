"""Gate thresholds (recipe-facing, typed) and gate results."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from fewstep.config import StrictModel
from fewstep.families.standard import StandardMetrics
from fewstep.precisions import default_gates as precision_gates


class TensorGates(StrictModel):
    """Per component, on held-out inputs at every student timestep, bundle vs torch."""

    cosine_min: float = Field(0.999, ge=-1, le=1)
    rel_l2_max: float = Field(0.05, gt=0)
    max_abs_max: float | None = Field(0.1, gt=0, description="null records max-abs without gating it")
    vs_f32_cosine_min: float | None = Field(
        0.999,
        ge=-1,
        le=1,
        description="bundles with an inference precision other than f32 (bf16): each component's outputs against "
        "the same files run at f32, which isolates the runtime's arithmetic from weight quantization (with "
        "quantized activations the two runs may also round to different int8 levels: f32_twin_cosine, recorded "
        "beside it, says whether the bundle's run is farther from torch than its twin); null: not gated",
    )


class ImageGates(StrictModel):
    """End-to-end images, bundle vs torch student, same prompts and seeds."""

    psnr_min: float = Field(30.0, description="mean PSNR in dB")
    ssim_min: float = Field(0.95, ge=-1, le=1)
    lpips_network: Path | None = Field(
        None, description="local ONNX LPIPS network (two image inputs -> distance per pair); null: no LPIPS gate"
    )
    lpips_max: float = Field(0.1, gt=0, description="largest mean LPIPS distance, bundle vs torch images")

    @field_validator("lpips_network")
    @classmethod
    def _lpips(cls, value: Path | None) -> Path | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"lpips_network: {value} does not exist")
        return value


class DistributionGates(StrictModel):
    """Domain FID and alignment of bundle images vs the torch student (families with an evaluator)."""

    enabled: bool | None = Field(
        None, description="null: on when the model's family has an evaluator or `metrics` are given"
    )
    num_images: int = Field(200, ge=16, le=100_000)
    fid_ratio_max: float = Field(1.10, gt=0, description="bundle FID / torch-student FID")
    alignment_drop_max: float = Field(0.02, ge=0)
    metrics: StandardMetrics | None = Field(
        None,
        description="standard metrics with local networks (FID against a reference folder, CLIP score / 100 as "
        "alignment) for families without an evaluator",
    )


class GateConfig(StrictModel):
    enabled: bool = Field(
        True,
        description="false: build only (frees each torch component after export, for models near the RAM limit); "
        "gate the bundle later with `fewstep gate`",
    )
    num_prompts: int = Field(8, ge=1, le=1024, description="held-out prompts for the tensor and image gates")
    seed: int = Field(4242, ge=0)
    isa: tuple[str, ...] = Field(
        ("native",),
        description="CPUs to gate on: `native` and/or ISA names (avx2, avx512_core_vnni, ...); each runs the "
        "gates with the bundle's runtime restricted to that ISA (CPU targets)",
    )
    tensor: TensorGates = TensorGates()
    image: ImageGates = ImageGates()
    distribution: DistributionGates = DistributionGates()

    @field_validator("isa", mode="before")
    @classmethod
    def _isa(cls, value: Any) -> Any:
        from fewstep.cpu.isa import ISA_NAMES

        values = [value] if isinstance(value, str) else value
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"isa: {value!r}; give a list of native, {', '.join(ISA_NAMES)}")
        bad = [v for v in values if v != "native" and v not in ISA_NAMES]
        if bad:
            raise ValueError(f"isa: unknown {bad}; allowed: native, {', '.join(ISA_NAMES)}")
        return tuple(dict.fromkeys(values))


def default_gates(precision: str, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The precision's starting thresholds with `given` merged over them (nested dicts merge)."""
    out: dict[str, Any] = precision_gates(precision)
    for key, value in (given or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


@dataclass
class GateResult:
    """One checked number: passed when finite and on the right side of its threshold."""

    gate: str  # e.g. "tensor/transformer@t=0.750/cosine"
    value: float
    threshold: float | None
    op: str  # ">=" or "<="; "" for a recorded, ungated number
    passed: bool

    @classmethod
    def check(cls, gate: str, value: float, threshold: float | None, op: str) -> GateResult:
        value = float(value)
        if not math.isfinite(value):
            return cls(gate, value, threshold, op or "finite", False)
        if threshold is None:
            return cls(gate, value, None, "", True)
        # a tolerance of 1e-9: alignment is a count over images, and 0.629 - 0.619 is 0.0100000...09
        ok = value >= threshold - 1e-9 if op == ">=" else value <= threshold + 1e-9
        return cls(gate, value, threshold, op, ok)

    def describe(self) -> str:
        if not math.isfinite(self.value):
            return f"{self.gate}: {self.value} (NaN/Inf) — FAILED"
        if self.threshold is None:
            return f"{self.gate}: {self.value:.6g} (recorded)"
        margin = self.value - self.threshold
        margin = 0.0 if abs(margin) < 1e-9 else margin
        verdict = "ok" if self.passed else "FAILED"
        return f"{self.gate}: {self.value:.6g} {self.op} {self.threshold:g} (margin {margin:+.4g}) — {verdict}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if not math.isfinite(self.value):
            d["value"] = str(self.value)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GateResult:
        return cls(d["gate"], float(d["value"]), d["threshold"], d["op"], bool(d["passed"]))
