"""The `distill` stage: SD3.5-Flash distillation of the stage's model into a K-step student."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fewstep.distill.config import FlashConfig
from fewstep.recipes.context import StageContext, model_field, register_stage, stage_name_field


class DistillStage(FlashConfig):
    """Distil the model into a K-step student (SD3.5-Flash); writes a diffusers directory."""

    kind: Literal["distill"] = "distill"
    name: str | None = stage_name_field("distill")
    model: str = model_field()

    def default_name(self) -> str:
        return "distill"

    def flash(self) -> FlashConfig:
        """The distillation settings alone (what `fewstep distill` takes)."""
        return FlashConfig.model_validate(self.model_dump(exclude={"kind", "name", "model"}))


@register_stage(DistillStage)
class DistillStageImpl:
    def inputs(self, cfg: DistillStage, ctx: StageContext) -> dict[str, Path]:
        return {"teacher": ctx.model_dir(cfg.model)}

    def run(self, cfg: DistillStage, ctx: StageContext, out: Path) -> dict[str, Any]:
        from fewstep.distill.run import distill

        flash = cfg.flash()
        name = cfg.name or cfg.default_name()
        # Checkpoints and the trajectory cache live outside the atomic output: they survive a kill.
        distill(
            ctx.model_dir(cfg.model),
            flash,
            out,
            work_dir=ctx.work_dir(name),
            cache_dir=ctx.run_dir / ".cache",
            progress=ctx.progress,
        )
        summary: dict[str, Any] = {"steps": flash.steps, "t5_free": flash.t5_free}
        losses = ctx.work_dir(name) / "losses.csv"
        if losses.exists():
            shutil.copy(losses, out / "distill_losses.csv")
            summary["grad_norm_dm"] = grad_norm_stats(losses)
        return summary


def grad_norm_stats(losses: Path) -> dict[str, float] | None:
    """Mean, standard deviation and coefficient of variation of the student's gradient norm
    over the distribution-matching generator steps (the noise timestep sharing should lower)."""
    values = []
    with open(losses) as f:
        for row in csv.reader(f):
            if len(row) > 1 and row[1] == "dm":
                fields = dict(item.split("=", 1) for item in row[2:] if "=" in item)
                if "grad_norm" in fields:
                    values.append(float(fields["grad_norm"]))
    if not values:
        return None
    arr = np.asarray(values)
    return {"steps": len(arr), "mean": float(arr.mean()), "std": float(arr.std()), "cv": float(arr.std() / arr.mean())}
