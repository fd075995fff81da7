"""The `report` stage: every earlier stage's metrics and image grids in one HTML + JSON."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any

from fewstep import __version__
from fewstep.recipe import ReportStage
from fewstep.runner import MANIFEST, StageContext, register_stage

METRIC_COLUMNS = ("steps", "guidance", "images", "fid", "fid_real", "alignment", "seconds_per_image")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def render_html(title: str, rows: list[dict[str, Any]]) -> str:
    cats = sorted({c for r in rows for c in r.get("metrics", {}).get("per_category", {})})
    head = "".join(f"<th>{c}</th>" for c in ("stage", *METRIC_COLUMNS, *cats))
    body = []
    for r in rows:
        m = r.get("metrics", {})
        cells = [html.escape(r["stage"])] + [_fmt(m.get(c, "")) for c in METRIC_COLUMNS]
        cells += [_fmt(m.get("per_category", {}).get(c, "")) for c in cats]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    grids = "".join(
        f'<figure><img src="{html.escape(r["grid"])}" alt="{html.escape(r["stage"])}">'
        f"<figcaption>{html.escape(r['stage'])}</figcaption></figure>"
        for r in rows
        if r.get("grid")
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}figure{{display:inline-block;margin:1em}}
img{{image-rendering:pixelated;width:512px}}</style></head>
<body><h1>{html.escape(title)}</h1><p>fewstep {__version__}. Same held-out prompts and seeds in every grid.</p>
<table><tr>{head}</tr>{"".join(body)}</table>{grids}</body></html>
"""


@register_stage("report")
class ReportStageImpl:
    def inputs(self, cfg: ReportStage, ctx: StageContext) -> dict[str, Path]:
        return dict(ctx.outputs)

    def run(self, cfg: ReportStage, ctx: StageContext, out: Path) -> dict[str, Any]:
        rows = []
        for name, path in ctx.outputs.items():
            manifest = json.loads((path / MANIFEST).read_text())
            row: dict[str, Any] = {"stage": name, "kind": manifest["kind"], "wall_time_s": manifest["wall_time_s"]}
            if (path / "metrics.json").exists():
                row["metrics"] = json.loads((path / "metrics.json").read_text())
            if (path / "grid.png").exists():
                shutil.copy(path / "grid.png", out / f"{name}.png")
                row["grid"] = f"{name}.png"
            rows.append(row)
        title = cfg.title or f"fewstep run: {ctx.recipe.name}"
        report = {"recipe": ctx.recipe.model_dump(mode="json"), "fewstep_version": __version__, "stages": rows}
        (out / "report.json").write_text(json.dumps(report, indent=2))
        (out / "report.html").write_text(render_html(title, rows))
        return {"stages": len(rows)}
