"""The `eval` stage: generate held-out prompts and score them with the family's evaluator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fewstep.evaluation import evaluate
from fewstep.recipe import EvalStage
from fewstep.sampling import GenerationConfig
from fewstep.stages.base import StageContext, register_stage
from fewstep.zoo.registry import zoo_path


@register_stage("eval")
class EvalStageImpl:
    def inputs(self, cfg: EvalStage, ctx: StageContext) -> dict[str, Path]:
        return {"model": ctx.model_dir(cfg.model), "evaluator": zoo_path("shapes-evaluator")}

    def run(self, cfg: EvalStage, ctx: StageContext, out: Path) -> dict[str, Any]:
        ecfg = GenerationConfig(
            steps=cfg.steps,
            num_images=cfg.num_images,
            seed=cfg.seed,
            guidance=cfg.guidance,
            batch=cfg.batch,
            drop_t5=cfg.drop_t5,
            guidance_interval=cfg.guidance_interval,
            progress=ctx.progress,
        )
        result = evaluate(ctx.model_dir(cfg.model), ecfg, grid=out / "grid.png")
        result["grid"] = "grid.png"
        result["model"] = cfg.model
        (out / "metrics.json").write_text(json.dumps(result, indent=2))
        return {k: result[k] for k in ("fid", "fid_real", "alignment", "steps", "images")}
