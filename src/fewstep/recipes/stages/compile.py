"""The `compile` stage: a gated bundle in `<stage>/bundle/`, plus gates, images and measurements."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from fewstep.compile.config import CompileConfig
from fewstep.recipes.context import StageContext, model_field, register_stage, stage_name_field


class CompileStage(CompileConfig):
    """Export, build and gate a deployable bundle of a model for one target."""

    kind: Literal["compile"] = "compile"
    name: str | None = stage_name_field("compile-<target>-<precision>")
    model: str = model_field()

    def default_name(self) -> str:
        return f"compile-{self.target}-{self.precision}"


@register_stage(CompileStage)
class CompileStageImpl:
    def inputs(self, cfg: CompileStage, ctx: StageContext) -> dict[str, Path]:
        return {"model": ctx.model_dir(cfg.model)}

    def run(self, cfg: CompileStage, ctx: StageContext, out: Path) -> dict[str, Any]:
        from fewstep.compile.api import compile_bundle
        from fewstep.compile.measure import dir_size, measure_bundle, measure_torch
        from fewstep.grids import difference, save_grid
        from fewstep.runtime.bundle import read_manifest

        model = ctx.model_dir(cfg.model)
        # keyed by the stage name, not `out` (a temporary directory): the work dir with the cached
        # calibration survives an interrupted attempt
        bundle_dir, report = compile_bundle(model, cfg, out / "bundle", work_dir=ctx.work_dir(ctx.stage))
        images = report.extra["images"]
        captions = images["prompts"]
        save_grid(images["bundle"], out / "grid.png", captions=captions)
        save_grid(images["torch"], out / "grid-torch.png", captions=captions)
        save_grid(difference(images["bundle"], images["torch"]), out / "grid-diff.png", captions=captions)
        manifest = read_manifest(bundle_dir, check=False)
        metrics: dict[str, Any] = {
            "target": cfg.target,
            "precision": manifest.precision,
            "steps": manifest.pipeline.steps,
            "gates": report.to_json(),
            "bundle_bytes": dir_size(bundle_dir),
            "prompts": images["prompts"],
            "seed": cfg.gates.seed,
        }
        if cfg.measure:
            p = manifest.pipeline
            metrics["runtime"] = measure_bundle(bundle_dir, cfg.measure_repeats)
            metrics["torch"] = measure_torch(model, p.steps, p.guidance, cfg.measure_repeats)
            metrics["speedup_vs_torch"] = metrics["torch"]["latency_s"] / metrics["runtime"]["latency_s"]
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        return {
            "target": cfg.target,
            "gates_passed": report.passed,
            "bundle_bytes": metrics["bundle_bytes"],
            "latency_s": metrics.get("runtime", {}).get("latency_s"),
        }
