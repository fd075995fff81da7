"""Quantization schemes as typed configs (one class per scheme, selected by `scheme`).

The same objects serve the Python API and the recipe's `compile.quantization` block; each
backend registers one handler per config type (see `registry.py`).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal, Union

from pydantic import BaseModel, Field, field_validator

from fewstep.config import StrictModel
from fewstep.precisions import precision

DEFAULT_COMPONENTS = ("text_encoder", "text_encoder_2", "text_encoder_3", "transformer")
COMPONENT_NAMES = (*DEFAULT_COMPONENTS, "vae_decoder")
# ONNX op types the int8 quantizers can take (ONNX Runtime's QDQ quantizer registry covers more,
# but these are the weighted ops of SD3 exports)
INT8_OP_TYPES = ("MatMul", "Gemm", "Conv", "ConvTranspose", "Attention")


def _names(value: tuple[str, ...], allowed: tuple[str, ...], field: str) -> tuple[str, ...]:
    bad = [v for v in value if v not in allowed]
    if bad:
        raise ValueError(f"{field}: unknown {bad}; allowed: {', '.join(allowed)}")
    return value


def _group_size(value: int) -> int:
    if value != -1 and value < 8:
        raise ValueError(f"group_size {value}: -1 (per channel) or a group of 8 or more weights")
    return value


class _Scheme(StrictModel):
    components: tuple[str, ...] = Field(
        DEFAULT_COMPONENTS, description="components to quantize; the others stay fp32 (the VAE decoder by default)"
    )
    calibration_prompts: int = Field(32, ge=1, le=100_000, description="training prompts, disjoint from gate prompts")
    calibration_seed: int = Field(1234, ge=0, le=2**32 - 1)

    @field_validator("components")
    @classmethod
    def _components(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _names(value, COMPONENT_NAMES, "components")

    @property
    def needs_calibration(self) -> bool:
        """Whether this scheme, with these settings, quantizes from calibration data."""
        return precision(self.scheme).calibrated  # type: ignore[attr-defined]


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
    op_types: tuple[str, ...] = Field(
        ("MatMul", "Gemm", "Conv"), min_length=1, description="ONNX Runtime: op types to quantize"
    )

    @field_validator("op_types")
    @classmethod
    def _op_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _names(value, INT8_OP_TYPES, "op_types")

    @field_validator("attention", mode="before")
    @classmethod
    def _attention(cls, value: object) -> object:
        return "auto" if value is None else value

    attention: Literal["auto", "int8", "float"] = Field(
        "auto",
        description="attention's activation x activation MatMuls (QK^T, PV): int8 (quantized like the rest), or "
        "float: left out of the PTQ, so the runtime runs them in its fused float attention, in the bundle's "
        "`inference_precision`. auto: float where the component computes in bf16 and every CPU of the compile "
        "config's `cpu:` has AMX (1.8x faster W8A8 steps at 1024 px than f32 with int8 attention, 1.09x over "
        "int8 attention at bf16), int8 elsewhere (without AMX, int8 attention with bf16 elsewhere is 1.11x "
        "faster at 1024 px; at f32 float attention is slower); benchmarks/ov_attention_precision.py. "
        "Backends called outside a compile: OpenVINO, ONNX Runtime int8, ModelOpt float. null: auto",
    )
    calibration_crop: Annotated[int, Field(ge=8, le=4096)] | Literal["auto"] | None = Field(
        "auto",
        description="the VAE decoder (OpenVINO): calibrate on crops of this many latent pixels a side and carry "
        "the quantizers to full size, for resolutions whose activation statistics do not fit in memory (SD3.5 at "
        "1024 px asks for 30.7 GB); auto: the largest halving of the latent side that fits in the available "
        "memory, full size where it fits; null: always full size",
    )
    reduce_range: bool | None = Field(
        None,
        description="7-bit int8 weights, which no u8 x s8 kernel can saturate (CPUs without VNNI); null: from "
        "the compile config's `cpu:` (portable: true)",
    )


class WeightOnlyConfig(_Scheme):
    """Group-wise weight-only compression; activations stay float."""

    scheme: Literal["int8-weights", "int4-weights"] = "int4-weights"
    group_size: int = Field(64, ge=-1, le=65536, description="-1: per channel; else 8 or more")
    symmetric: bool = True
    ratio: float = Field(1.0, gt=0, le=1, description="int4 only: share of weights in int4 (rest int8, NNCF)")
    awq: bool = Field(False, description="data-aware AWQ (OpenVINO/NNCF; needs calibration)")
    scale_estimation: bool = Field(False, description="data-aware scale estimation (OpenVINO/NNCF)")
    accuracy_level: Literal[0, 1, 4] = Field(
        4,
        description="ONNX Runtime MatMulNBits compute: 4 = int8 on activations quantized on the fly (what "
        "OpenVINO's CPU plugin does for compressed weights), 1 = fp32, 0 = the kernel's default (fp32)",
    )

    @field_validator("group_size")
    @classmethod
    def _group(cls, value: int) -> int:
        return _group_size(value)

    @property
    def bits(self) -> int:
        return 4 if self.scheme == "int4-weights" else 8

    @property
    def needs_calibration(self) -> bool:
        # data-aware: AWQ, scale estimation, and NNCF's sensitivity ranking for a mixed int4/int8 ratio
        return self.awq or self.scale_estimation or self.ratio < 1.0


class MixedConfig(_Scheme):
    """Per-layer precision from a sensitivity search: the smallest bundle whose gates pass."""

    scheme: Literal["mixed"] = "mixed"
    low: Literal["int4-weights"] = "int4-weights"
    high: Literal["int8-weights"] = "int8-weights"
    group_size: int = Field(64, ge=-1, le=65536, description="-1: per channel; else 8 or more")
    max_trials: int = Field(12, ge=1, le=64, description="gated trial bundles the search may build")

    @field_validator("group_size")
    @classmethod
    def _group(cls, value: int) -> int:
        return _group_size(value)


class ModelOptConfig(_Scheme):
    """NVIDIA Model Optimizer schemes for TensorRT (fake-quant in torch, exported as Q/DQ ONNX)."""

    scheme: Literal["int8-sq", "fp8", "int4-awq"] = "fp8"
    components: tuple[str, ...] = Field(("transformer",), description="components to quantize")


QuantConfig = Annotated[
    Union[Int8Config, WeightOnlyConfig, MixedConfig, ModelOptConfig],  # noqa: UP007
    Field(discriminator="scheme"),
]


def _scheme_classes() -> dict[str, type[BaseModel]]:
    """Precision name -> its scheme config class, read off each class's `scheme` literal."""
    from typing import get_args

    out: dict[str, type[BaseModel]] = {}
    for cls in get_args(get_args(QuantConfig)[0]):
        for name in get_args(cls.model_fields["scheme"].annotation):
            out[name] = cls
    return out


SCHEME_CLASSES = _scheme_classes()


def default_scheme(precision: str) -> BaseModel | None:
    """The scheme config for a precision name with default settings (None for float precisions)."""
    cls = SCHEME_CLASSES.get(precision)
    return None if cls is None else cls(scheme=precision)
