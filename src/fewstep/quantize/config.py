"""Quantization schemes as typed configs (one class per scheme, selected by `scheme`).

The same objects serve the Python API and the recipe's `compile.quantization` block; each
backend registers one handler per config type (see `registry.py`).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_COMPONENTS = ("text_encoder", "text_encoder_2", "text_encoder_3", "transformer")


class _Scheme(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    components: tuple[str, ...] = Field(
        DEFAULT_COMPONENTS, description="components to quantize; the others stay fp32 (the VAE decoder by default)"
    )
    calibration_prompts: int = Field(32, ge=1, le=100_000, description="training prompts, disjoint from gate prompts")
    calibration_seed: int = Field(1234, ge=0)


class Int8Mode(str, Enum):
    auto = "auto"  # OpenVINO: hybrid for the transformer, full for the text encoders
    full = "full"  # every supported op: weights and activations in int8
    hybrid = "hybrid"  # weighted ops: int8 weights only; the remaining activations PTQ (optimum-intel's scheme)
    # static W8A8 at a fraction of `full`'s memory: weights compressed to per-channel int8 first, then
    # activation ranges calibrated on the compressed model (no SmoothQuant or bias correction, which
    # need float weights); for models whose fp32 PTQ does not fit in memory
    weights_first = "weights-first"


class Int8Config(_Scheme):
    """INT8 weights and activations, static, calibrated on the student's own trajectories."""

    scheme: Literal["int8"] = "int8"
    mode: Int8Mode = Field(Int8Mode.auto, description="OpenVINO only; ONNX Runtime runs QDQ on `op_types`")
    per_channel: bool = True
    op_types: tuple[str, ...] = Field(("MatMul", "Gemm", "Conv"), description="ONNX Runtime: op types to quantize")
    reduce_range: bool | None = Field(
        None,
        description="7-bit int8 weights, which no u8 x s8 kernel can saturate (CPUs without VNNI); null: from "
        "the compile config's `cpu:` (portable: true)",
    )


class WeightOnlyConfig(_Scheme):
    """Group-wise weight-only compression; activations stay float."""

    scheme: Literal["int8-weights", "int4-weights"] = "int4-weights"
    group_size: int = Field(64, ge=-1, description="-1: per channel")
    symmetric: bool = True
    ratio: float = Field(1.0, gt=0, le=1, description="int4 only: share of weights in int4 (rest int8, NNCF)")
    awq: bool = Field(False, description="data-aware AWQ (OpenVINO/NNCF; needs calibration)")
    scale_estimation: bool = Field(False, description="data-aware scale estimation (OpenVINO/NNCF)")
    accuracy_level: Literal[0, 1, 4] = Field(
        4,
        description="ONNX Runtime MatMulNBits compute: 4 = int8 on activations quantized on the fly (what "
        "OpenVINO's CPU plugin does for compressed weights), 1 = fp32, 0 = the kernel's default (fp32)",
    )

    @property
    def bits(self) -> int:
        return 4 if self.scheme == "int4-weights" else 8


class MixedConfig(_Scheme):
    """Per-layer precision from a sensitivity search: the smallest bundle whose gates pass."""

    scheme: Literal["mixed"] = "mixed"
    low: Literal["int4-weights"] = "int4-weights"
    high: Literal["int8-weights"] = "int8-weights"
    group_size: int = Field(64, ge=-1)
    max_trials: int = Field(12, ge=1, le=64, description="gated trial bundles the search may build")


class ModelOptConfig(_Scheme):
    """NVIDIA Model Optimizer schemes for TensorRT (fake-quant in torch, exported as Q/DQ ONNX)."""

    scheme: Literal["int8-sq", "fp8", "int4-awq"] = "fp8"
    components: tuple[str, ...] = Field(("transformer",), description="components to quantize")


QuantConfig = Annotated[
    Union[Int8Config, WeightOnlyConfig, MixedConfig, ModelOptConfig],  # noqa: UP007
    Field(discriminator="scheme"),
]
SCHEMES = ("int8", "int8-weights", "int4-weights", "mixed", "int8-sq", "fp8", "int4-awq")


def default_scheme(precision: str) -> BaseModel | None:
    """The scheme config for a precision name with default settings (None for float precisions)."""
    if precision == "int8":
        return Int8Config()
    if precision in ("int8-weights", "int4-weights"):
        return WeightOnlyConfig(scheme=precision)
    if precision == "mixed":
        return MixedConfig()
    if precision in ("int8-sq", "fp8", "int4-awq"):
        return ModelOptConfig(scheme=precision)
    return None
