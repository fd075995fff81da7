"""The compile verb's typed config (the recipe's `compile` stage is this plus name/model)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from fewstep.config import StrictModel
from fewstep.gates.config import GateConfig, default_gates
from fewstep.quantize.config import QuantConfig, default_scheme
from fewstep.runtime.manifest import MODULATION
from fewstep.student import check_guidance_interval

COMPONENTS = ("text_encoder", "text_encoder_2", "text_encoder_3", "transformer", MODULATION, "vae_decoder")


class Exporter(str, Enum):
    """The torch -> ONNX exporter."""

    torchscript = "torchscript"  # fast; the form ModelOpt's Q/DQ export needs
    dynamo = "dynamo"  # torch.export based (opset 18)


class Shapes(str, Enum):
    auto = "auto"  # the target's preference (static for OpenVINO's CPU plugin)
    static = "static"
    dynamic = "dynamic"


class T5Gate(StrictModel):
    """Accept dropping T5 only if the T5-free torch model stays this close to the full one."""

    num_images: int = Field(200, ge=16, le=100_000)
    alignment_drop_max: float = Field(0.03, ge=0)
    fid_ratio_max: float = Field(1.25, gt=0)


class Truncate(StrictModel):
    """Keep the first `keep` layers of an encoder, fine-tuned to match the full one."""

    keep: dict[str, int] = Field(default_factory=dict, description="encoder -> layers kept, e.g. {text_encoder_3: 1}")
    steps: int = Field(300, ge=0, le=100_000, description="feature-matching fine-tune steps")
    prompts: int = Field(512, ge=8, le=1_000_000, description="training prompts for the fine-tune")
    batch: int = Field(32, ge=1, le=4096)
    lr: float = Field(3e-4, gt=0)


class Restructure(StrictModel):
    """Text-encoder restructuring, each change gated before it is accepted."""

    drop_t5: bool = Field(False, description="omit T5 from the bundle (zero-filled slot) if its gate passes")
    truncate: Truncate = Truncate()
    t5_gate: T5Gate = Field(T5Gate(), description="the gate every restructuring must pass (T5 drop, truncation)")
    force: bool = Field(False, description="apply without the gate (families with no evaluator)")
    collapse_null_tokens: bool = Field(
        True,
        description="without T5, run the transformer on one null token standing for the zero-filled T5 slot "
        "(exact: identical tokens weigh as one key with a ln(n) attention bias)",
    )
    null_slots: int = Field(
        1,
        ge=1,
        description="null tokens the collapsed zero T5 slot keeps (each with a ln(n / m) bias: exact for any "
        "1 <= m <= the slot's length); more than 1 sets the joint token count (e.g. 51: 128 text tokens; "
        "no speed gain measured at 1024 px: docs/benchmarks.md)",
    )

    hoist_modulation: bool = Field(
        False,
        description="run the transformer's adaLN modulation (0.77 G weights in SD3.5-Medium, one row per image "
        "per step) as its own component, once per generation for all K steps; each step takes its result "
        "(exact; fewstep's runtime only: the diffusers-style layouts need the transformer whole)",
    )

    @model_validator(mode="after")
    def _encoders(self) -> Restructure:
        if self.null_slots != 1 and not self.collapse_null_tokens:
            raise ValueError(
                f"null_slots: {self.null_slots} null tokens need collapse_null_tokens: true (false feeds the full slot)"
            )
        low = {k: v for k, v in self.truncate.keep.items() if v < 1}
        if low:
            raise ValueError(f"truncate.keep: {low}: keep at least 1 layer (drop an encoder with drop_t5 instead)")
        bad = sorted(set(self.truncate.keep) - {"text_encoder", "text_encoder_2", "text_encoder_3"})
        if bad:
            raise ValueError(
                f"truncate.keep: unknown encoder(s) {bad}; allowed: text_encoder, text_encoder_2, text_encoder_3"
            )
        return self


class CompileConfig(StrictModel):
    """Export, build and gate one bundle for one target."""

    target: str = Field("openvino-cpu", description="a registered target (see `fewstep targets`)")
    precision: str = Field("fp32", description="precision of every component unless overridden")
    component_precision: dict[str, str] = Field(default_factory=dict, description="per-component precision overrides")
    shapes: Shapes = Shapes.auto
    batch: int = Field(1, ge=1, le=1024, description="batch size of static shapes (images per call)")
    exporter: Exporter = Exporter.torchscript
    steps: int | None = Field(None, ge=1, le=1000, description="null: the student's K (or 28 for a plain pipeline)")
    guidance: float | None = Field(None, ge=0, le=30, description="null: the student's (1.0) or 7.0")
    quantization: QuantConfig | None = Field(None, description="scheme settings; precision follows its `scheme`")
    component_quantization: dict[str, QuantConfig] = Field(
        default_factory=dict,
        description="per-component scheme overrides, e.g. int4-weights transformer with an int8 VAE decoder",
    )
    restructure: Restructure = Restructure()
    guidance_interval: Annotated[tuple[float, float] | None, AfterValidator(check_guidance_interval)] = Field(
        None, description="[lo, hi]: CFG only where lo <= sigma <= hi (plain pipelines)"
    )
    cpu: str | tuple[str, ...] = Field(
        "portable",
        description="CPU targets: the CPUs the int8 must be exact on. portable: every x86-64 CPU (7-bit int8 "
        "weights); native: this machine's ISA (full range where it has VNNI; the bundle then refuses CPUs "
        "without); or a list of ISAs, e.g. [avx2, avx512_core_vnni]",
    )
    inference_precision: Literal["f32", "bf16"] = Field(
        "f32",
        description="the runtime's float arithmetic: f32 (the same numerics on every CPU), or bf16 (openvino-cpu: "
        "AMX / AVX512-BF16 CPUs, OpenVINO's own default there; other CPUs compute f32). Recorded in the bundle; "
        "the gates measure it",
    )
    component_inference_precision: dict[str, Literal["f32", "bf16"]] = Field(
        default_factory=dict,
        description="per-component overrides of inference_precision, e.g. {vae_decoder: f32} in a bf16 bundle "
        "(the hoisted transformer_modulation always runs at f32)",
    )
    attention_layout: Literal["auto", "heads", "tokens", "keys"] = Field(
        "auto",
        description="where the transformer's exported attentions split their heads off: heads (diffusers' graph: "
        "q, k, v transposed before their norms and concatenation), tokens (all three kept token-major up to the "
        "attention, whose inputs then transpose), keys (k and v token-major, q head-major), or auto (the "
        "target's choice: heads for the built-in targets, where the others measured no faster). The same "
        "outputs in every layout",
    )
    openvino_layout: bool = Field(
        False,
        description="openvino-cpu: the bundle in the diffusers-style OpenVINO layout (model_index.json, "
        "<component>/openvino_model.xml, openvino-tokenizers) that OpenVINO GenAI's Text2ImagePipeline and "
        "optimum-intel load; fewstep reads it too",
    )
    onnx_layout: bool = Field(
        False,
        description="onnxruntime targets: the bundle in the diffusers-style ONNX layout (model_index.json, "
        "<component>/model.onnx) that optimum's ORTStableDiffusion3Pipeline loads; fewstep reads it too",
    )
    gates: GateConfig = GateConfig()
    require_gates: bool = Field(True, description="fail the stage when a gate fails")
    measure: bool = Field(True, description="measure latency and peak memory of bundle and torch model")
    measure_repeats: int = Field(20, ge=1, le=1000)

    @model_validator(mode="before")
    @classmethod
    def _precision_from_scheme(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if isinstance(data.get("quantization"), dict):
            scheme = data["quantization"].get("scheme")
            if "precision" not in data and scheme:
                data = {**data, "precision": scheme}
            elif scheme and data["precision"] != scheme:
                raise ValueError(f"precision: {data['precision']!r} contradicts quantization.scheme {scheme!r}")
        gates = data.get("gates")
        if gates is None or isinstance(gates, dict):  # quantized precisions start from looser thresholds
            data = {**data, "gates": default_gates(str(data.get("precision", "fp32")), gates)}
        return data

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, value: Any) -> Any:
        from fewstep.quantize.cpu import check_policy

        return check_policy(value)

    def scheme(self) -> Any:
        """The quantization scheme config (None for float precisions)."""
        return self.quantization or default_scheme(self.precision)

    def attention_layout_for(self, target) -> str:
        """`attention_layout` resolved for `target` (its `attention_layout` where this is auto)."""
        return target.attention_layout if self.attention_layout == "auto" else self.attention_layout

    @property
    def layout(self) -> str | None:
        """The ecosystem layout the bundle is written in ("openvino", "onnx"), or None."""
        return "openvino" if self.openvino_layout else "onnx" if self.onnx_layout else None

    @model_validator(mode="after")
    def _check_target(self) -> CompileConfig:
        from fewstep.targets.registry import get_target

        if self.openvino_layout and self.onnx_layout:
            raise ValueError("openvino_layout and onnx_layout: a bundle has one layout; choose by target")
        if self.layout and self.restructure.hoist_modulation:
            raise ValueError(
                f"restructure.hoist_modulation: the {self.layout} layout's clients (optimum, OpenVINO GenAI) call the "
                f"transformer whole, with timestep and pooled projections; set {self.layout}_layout: false or "
                "hoist_modulation: false"
            )
        for field in ("component_precision", "component_quantization", "component_inference_precision"):
            bad = sorted(set(getattr(self, field)) - set(COMPONENTS))
            if bad:
                raise ValueError(f"{field}: unknown component(s) {bad}; allowed: {', '.join(COMPONENTS)}")
        both = sorted(set(self.component_precision) & set(self.component_quantization))
        if both:
            raise ValueError(f"component_quantization: {both} also in component_precision; give each component one")
        mixed = sorted(k for k, v in self.component_quantization.items() if v.scheme == "mixed")
        if mixed:
            raise ValueError(f"component_quantization.{mixed[0]}: 'mixed' is a whole-bundle search, not per component")
        try:
            target = get_target(self.target)
        except ValueError as err:
            raise ValueError(f"target: {err}") from None
        if self.restructure.hoist_modulation and target.export_format == "torch":
            raise ValueError(
                f"restructure.hoist_modulation: {self.target} runs the torch model, which each component would "
                "load whole; the hoist is for targets that run exported graphs (openvino-cpu, onnxruntime-*, tensorrt)"
            )
        for where, p in [
            ("precision", self.precision),
            *((f"component_precision.{k}", v) for k, v in self.component_precision.items()),
            *((f"component_quantization.{k}.scheme", v.scheme) for k, v in self.component_quantization.items()),
        ]:
            if p not in target.precisions:
                raise ValueError(
                    f"{where}: {p!r} is not supported by {self.target}; allowed: {', '.join(target.precisions)}"
                )
        for where, p in [
            ("inference_precision", self.inference_precision),
            *((f"component_inference_precision.{k}", v) for k, v in self.component_inference_precision.items()),
        ]:
            if p not in target.inference_precisions:
                allowed = ", ".join(target.inference_precisions)
                raise ValueError(f"{where}: {p!r} is not supported by {self.target}; allowed: {allowed}")
        return self
