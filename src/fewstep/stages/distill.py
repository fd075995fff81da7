"""The `distill` stage: SD3.5-Flash distillation of the stage's model into a K-step student."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fewstep.distill.api import distill
from fewstep.distill.config import FlashConfig
from fewstep.recipe import DistillStage
from fewstep.runner import StageContext, register_stage


@register_stage("distill")
class DistillStageImpl:
    def inputs(self, cfg: DistillStage, ctx: StageContext) -> dict[str, Path]:
        return {"teacher": ctx.model_dir(cfg.model)}

    def run(self, cfg: DistillStage, ctx: StageContext, out: Path) -> dict[str, Any]:
        flash = FlashConfig(**cfg.model_dump(exclude={"kind", "name", "model"}))
        name = cfg.name or "distill"
        # Checkpoints and the trajectory cache live outside the atomic output: they survive a kill.
        distill(
            ctx.model_dir(cfg.model),
            flash,
            out,
            work_dir=ctx.work_dir(name),
            cache_dir=ctx.run_dir / ".cache",
            progress=ctx.progress,
        )
        return {"steps": flash.steps, "t5_free": flash.t5_free}
