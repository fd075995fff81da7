"""The compile verb's typed config (the recipe's `compile` stage is this plus name/model)."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fewstep.compile.export import Exporter
from fewstep.gates.config import GateConfig

COMPONENTS = ("text_encoder", "text_encoder_2", "text_encoder_3", "transformer", "vae_decoder")


class Shapes(str, Enum):
    auto = "auto"  # the target's preference (static for OpenVINO's CPU plugin)
    static = "static"
    dynamic = "dynamic"


class CompileConfig(BaseModel):
    """Export, build and gate one bundle for one target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = Field("openvino-cpu", description="a registered target (see `fewstep targets`)")
    precision: str = Field("fp32", description="precision of every component unless overridden")
    component_precision: dict[str, str] = Field(default_factory=dict, description="per-component precision overrides")
    shapes: Shapes = Shapes.auto
    batch: int = Field(1, ge=1, le=1024, description="batch size of static shapes (images per call)")
    exporter: Exporter = Exporter.torchscript
    steps: int | None = Field(None, ge=1, le=1000, description="null: the student's K (or 28 for a plain pipeline)")
    guidance: float | None = Field(None, ge=0, le=30, description="null: the student's (1.0) or 7.0")
    guidance_interval: tuple[float, float] | None = Field(
        None, description="[lo, hi]: CFG only where lo <= sigma <= hi (plain pipelines)"
    )
    gates: GateConfig = GateConfig()
    require_gates: bool = Field(True, description="fail the stage when a gate fails")
    measure: bool = Field(True, description="measure latency and peak memory of bundle and torch model")
    measure_repeats: int = Field(20, ge=1, le=1000)

    @model_validator(mode="after")
    def _check_target(self) -> CompileConfig:
        from fewstep.targets.registry import get_target

        bad = sorted(set(self.component_precision) - set(COMPONENTS))
        if bad:
            raise ValueError(f"component_precision: unknown component(s) {bad}; allowed: {', '.join(COMPONENTS)}")
        try:
            target = get_target(self.target)
        except ValueError as err:
            raise ValueError(f"target: {err}") from None
        for where, p in [
            ("precision", self.precision),
            *((f"component_precision.{k}", v) for k, v in self.component_precision.items()),
        ]:
            if p not in target.precisions:
                raise ValueError(
                    f"{where}: {p!r} is not supported by {self.target}; allowed: {', '.join(target.precisions)}"
                )
        return self
