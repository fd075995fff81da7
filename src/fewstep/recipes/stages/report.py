"""The `report` stage: every earlier stage's metrics, image grids, gates and bundle measurements
in one `report.html` + `report.json`."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from fewstep import __version__
from fewstep.config import StrictModel
from fewstep.recipes.context import MANIFEST, NAME_RE, StageContext, register_stage


class ReportStage(StrictModel):
    """Collect every earlier stage's metrics and image grids into report.html / report.json."""

    kind: Literal["report"] = "report"
    name: str | None = Field(None, pattern=NAME_RE, max_length=64)
    title: str | None = None

    def default_name(self) -> str:
        return "report"


METRIC_COLUMNS = ("steps", "guidance", "images", "fid", "fid_real", "alignment", "seconds_per_image")
BUNDLE_COLUMNS = (
    "stage",
    "target",
    "precision",
    "gates",
    "failed",
    "PSNR dB",
    "SSIM",
    "FID ratio",
    "align drop",
    "latency s",
    "torch latency s",
    "speed-up",
    "peak RSS MB",
    "torch RSS MB",
    "size MB",
)


PSNR_CAP = 100.0  # gates cap PSNR at 100 dB: a capped value means identical images


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _cell(value: Any) -> str:
    cls = ' class="fail"' if value in ("FAIL", "FAILED") else ' class="pass"' if value in ("pass", "ok") else ""
    return f"<td{cls}>{_fmt(value)}</td>"


def _table(head: tuple[str, ...] | list[str], rows: list[list[Any]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _psnr(value: Any) -> Any:
    return "identical" if isinstance(value, (int, float)) and value >= PSNR_CAP else value


def bundle_row(r: dict[str, Any]) -> list[Any]:
    m = r["metrics"]
    gates = {g["gate"]: g for g in m["gates"]["results"]}

    def value(name: str) -> Any:
        return gates[name]["value"] if name in gates else ""

    precision = sorted(set(m["precision"].values()))
    rt, tt = m.get("runtime", {}), m.get("torch", {})
    return [
        r["stage"],
        m["target"],
        "/".join(precision),
        "pass" if m["gates"]["passed"] else "FAIL",
        sum(not g["passed"] for g in m["gates"]["results"]),
        _psnr(value("image/psnr")),
        value("image/ssim"),
        value("distribution/fid_ratio"),
        value("distribution/alignment_drop"),
        rt.get("latency_s", ""),
        tt.get("latency_s", ""),
        m.get("speedup_vs_torch", ""),
        rt.get("peak_rss_mb", ""),
        tt.get("peak_rss_mb", ""),
        m["bundle_bytes"] / 1e6,
    ]


def plots(rows: list[dict[str, Any]], out: Path) -> list[tuple[str, str]]:
    """Quality against latency and size per bundle, and FID / alignment per eval stage (PNG files
    in `out`; none when matplotlib is missing or there is nothing to plot)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    bundles = [r for r in rows if r["kind"] == "compile" and r.get("metrics", {}).get("runtime")]
    if bundles:
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in bundles:
            m = r["metrics"]
            gates = {g["gate"]: g["value"] for g in m["gates"]["results"]}
            y = min(gates.get("image/psnr", float("nan")), PSNR_CAP)
            ax.scatter(m["runtime"]["latency_s"], y, s=20 + m["bundle_bytes"] / 2e5,
                       c="tab:green" if m["gates"]["passed"] else "tab:red", alpha=0.7)  # fmt: skip
            ax.annotate(f"{r['stage']} ({m['bundle_bytes'] / 1e6:.1f} MB)", (m["runtime"]["latency_s"], y), fontsize=8)
        ax.set_xlabel("latency per image (s)")
        ax.set_ylabel("PSNR vs torch (dB; 100 = identical)")
        ax.set_title("bundles (marker area ~ size; red: gates failed)", fontsize=10)
        fig.tight_layout()
        fig.savefig(out / "plot-bundles.png", dpi=110)
        plt.close(fig)
        made.append(("bundles: quality vs latency and size", "plot-bundles.png"))
    evals = [r for r in rows if r["kind"] == "eval" and "fid" in r.get("metrics", {})]
    if evals:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.5))
        names = [r["stage"] for r in evals]
        a1.bar(names, [r["metrics"]["fid"] for r in evals], color="tab:blue")
        a1.set_title("domain FID (lower is better)")
        a2.bar(names, [r["metrics"]["alignment"] for r in evals], color="tab:orange")
        a2.set_title("alignment (higher is better)")
        for a in (a1, a2):
            a.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        fig.savefig(out / "plot-quality.png", dpi=110)
        plt.close(fig)
        made.append(("quality per eval stage", "plot-quality.png"))
    return made


def render_html(title: str, rows: list[dict[str, Any]], figures_extra: list[tuple[str, str]] | None = None) -> str:
    evals = [r for r in rows if r["kind"] == "eval"]
    bundles = [r for r in rows if r["kind"] == "compile"]
    cats = sorted({c for r in evals for c in r.get("metrics", {}).get("per_category", {})})
    eval_rows = [
        [r["stage"]]
        + [r["metrics"].get(c, "") for c in METRIC_COLUMNS]
        + [r["metrics"].get("per_category", {}).get(c, "") for c in cats]
        for r in evals
    ]
    parts = [f"<h2>Quality (held-out prompts)</h2>{_table(('stage', *METRIC_COLUMNS, *cats), eval_rows)}"]
    if bundles:
        parts.append("<h2>Bundles: gates, latency (one image), peak memory, size</h2>")
        parts.append(_table(BUNDLE_COLUMNS, [bundle_row(r) for r in bundles]))
        gate_rows = [
            [
                r["stage"],
                g["gate"],
                _psnr(g["value"]) if g["gate"].endswith("psnr") else g["value"],
                g["op"],
                g["threshold"],
                "ok" if g["passed"] else "FAILED",
            ]
            for r in bundles
            for g in r["metrics"]["gates"]["results"]
            if not g["gate"].startswith("tensor/") or not g["passed"] or g["gate"].endswith("/cosine")
        ]
        parts.append("<h3>Gate table</h3>" + _table(("stage", "gate", "value", "op", "threshold", "result"), gate_rows))
    if figures_extra:
        parts.append(
            "<h2>Plots</h2>"
            + "".join(
                f'<figure><img class="plot" src="{html.escape(src)}" alt="{html.escape(label)}">'
                f"<figcaption>{html.escape(label)}</figcaption></figure>"
                for label, src in figures_extra
            )
        )
    figures = [(r["stage"], g) for r in rows for g in r.get("grids", [])]
    grids = "".join(
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(label)}"><figcaption>{html.escape(label)}'
        f"</figcaption></figure>"
        for _, (label, src) in figures
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1em}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}figure{{display:inline-block;margin:1em}}
img{{image-rendering:pixelated;max-width:100%}}img.plot{{image-rendering:auto}}
td.fail{{background:#f8d0d0;color:#900;font-weight:bold}}td.pass{{color:#060}}</style></head>
<body><h1>{html.escape(title)}</h1><p>fewstep {__version__}. Eval grids share held-out prompts and seeds;
bundle grids show the gate prompts and seed for the torch model and for each bundle.</p>
{"".join(parts)}<h2>Images</h2>{grids}</body></html>
"""


def _teacher_grid(ctx: StageContext, metrics: dict[str, Any], out: Path) -> str | None:
    """The recipe's teacher on a compile stage's gate prompts and seed (28 steps)."""
    from fewstep.grids import save_grid
    from fewstep.sampling import GenerationConfig, generate
    from fewstep.sd3_pipeline import load_pipeline

    evals = [s for s in ctx.recipe.stages if s.kind == "eval" and s.model == "teacher"]
    guidance = evals[0].guidance if evals else 2.0
    interval = evals[0].guidance_interval if evals else None
    pipe = load_pipeline(ctx.model_dir("teacher"))
    cfg = GenerationConfig(
        steps=28, seed=metrics["seed"], guidance=guidance, guidance_interval=interval, progress=False
    )
    save_grid(generate(pipe, metrics["prompts"], cfg), out / "teacher-gate-prompts.png", captions=metrics["prompts"])
    return "teacher-gate-prompts.png"


@register_stage(ReportStage)
class ReportStageImpl:
    def inputs(self, cfg: ReportStage, ctx: StageContext) -> dict[str, Path]:
        return dict(ctx.outputs)

    def run(self, cfg: ReportStage, ctx: StageContext, out: Path) -> dict[str, Any]:
        rows = []
        teacher_done = False
        for name, path in ctx.outputs.items():
            manifest = json.loads((path / MANIFEST).read_text())
            row: dict[str, Any] = {"stage": name, "kind": manifest["kind"], "wall_time_s": manifest["wall_time_s"]}
            if (path / "metrics.json").exists():
                row["metrics"] = json.loads((path / "metrics.json").read_text())
            row["grids"] = []
            if manifest["kind"] == "compile" and not teacher_done:
                row["grids"].append(("teacher (torch, 28 steps)", _teacher_grid(ctx, row["metrics"], out)))
                teacher_done = True
            for src, label in (
                ("grid-torch.png", f"{name}: torch model"),
                ("grid.png", name),
                ("grid-diff.png", f"{name}: |bundle - torch| x 8"),
            ):
                if (path / src).exists():
                    dest = f"{name}-{src}"
                    shutil.copy(path / src, out / dest)
                    row["grids"].append((label, dest))
            if manifest["kind"] == "compile":
                row["metrics"].pop("prompts", None)
            rows.append(row)
        title = cfg.title or f"fewstep run: {ctx.recipe.name}"
        report = {"recipe": ctx.recipe.model_dump(mode="json"), "fewstep_version": __version__, "stages": rows}
        (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
        (out / "report.html").write_text(render_html(title, rows, plots(rows, out)))
        return {"stages": len(rows)}
