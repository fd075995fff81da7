"""The `eval` stage: generate held-out prompts and score them with the family's evaluator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from fewstep.config import StrictModel
from fewstep.families import StandardMetrics
from fewstep.recipes.context import StageContext, model_field, register_stage, stage_name_field
from fewstep.student import check_guidance_interval


class EvalStage(StrictModel):
    """Generate images with a model and score them with the family's evaluator."""

    kind: Literal["eval"] = "eval"
    name: str | None = stage_name_field("eval-<steps>")
    model: str = model_field()
    steps: int = Field(28, ge=1, le=1000)
    guidance: float = Field(2.0, ge=0.0, le=30.0, description="classifier-free guidance scale (<= 1 disables CFG)")
    num_images: int = Field(200, ge=8, le=100_000)
    seed: int = Field(0, ge=0)
    batch: int = Field(200, ge=1, le=4096)
    drop_t5: bool = Field(False, description="run with the T5 slot zero-filled")
    guidance_interval: Annotated[tuple[float, float] | None, AfterValidator(check_guidance_interval)] = Field(
        None, description="[lo, hi]: apply CFG only where lo <= sigma <= hi (limited-interval guidance)"
    )
    metrics: StandardMetrics | None = Field(
        None, description="standard metrics with local networks (FID, CLIP score) instead of the family's evaluator"
    )

    def default_name(self) -> str:
        return f"eval-{self.steps}"

    def generation(self, progress: bool):
        from fewstep.sampling import GenerationConfig

        fields = self.model_dump(include=set(GenerationConfig.__dataclass_fields__))
        return GenerationConfig(**fields, progress=progress)


@register_stage(EvalStage)
class EvalStageImpl:
    def inputs(self, cfg: EvalStage, ctx: StageContext) -> dict[str, Path]:
        from fewstep.families import evaluation_with, family_for

        model = ctx.model_dir(cfg.model)
        evaluation = evaluation_with(family_for(model), cfg.metrics, model)
        return {"model": model, **(evaluation.inputs() if evaluation is not None else {})}

    def run(self, cfg: EvalStage, ctx: StageContext, out: Path) -> dict[str, Any]:
        from fewstep.evaluation import evaluate

        result = evaluate(ctx.model_dir(cfg.model), cfg.generation(ctx.progress), out / "grid.png", cfg.metrics)
        result["grid"] = "grid.png"
        result["model"] = cfg.model
        (out / "metrics.json").write_text(json.dumps(result, indent=2))
        return {k: result[k] for k in ("fid", "fid_real", "alignment", "steps", "images")}
