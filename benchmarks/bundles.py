"""Bundles of the 4-step zoo:shapes student vs the torch student, measured in one run.

Usage: python benchmarks/bundles.py [--recipe recipes/toy-flash-bundles.yaml] [--json]

Runs the recipe (export, build, every gate, then latency and peak RSS of each bundle and of
the torch student, each in a fresh process, one image at a time) and prints one row per
bundle with its ratios against the torch student last.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from fewstep.recipes.runner import run_recipe
from fewstep.recipes.schema import load_recipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="recipes/toy-flash-bundles.yaml")
    ap.add_argument("-o", "--output", default=None)
    ap.add_argument("--force", action="store_true", help="re-run every stage")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    recipe = load_recipe(args.recipe)
    run_dir = Path(args.output or Path("runs") / recipe.name)
    names = {r.name for r in recipe.stages if r.kind == "compile"} if args.force else set()
    results = run_recipe(recipe, run_dir, force={n for n in names if n}, progress=not args.json)
    rows = []
    decisions = []
    for r in results:
        if r.kind != "compile":
            continue
        m = json.loads((r.out / "metrics.json").read_text())
        bundle = json.loads((r.out / "bundle" / "manifest.json").read_text())
        if bundle.get("restructure"):
            decisions.append((r.name, bundle["restructure"]))
        if "runtime" not in m:  # not measured (a decision-only stage)
            continue
        gates = {g["gate"]: g for g in m["gates"]["results"]}
        rows.append(
            {
                "stage": r.name,
                "target": m["target"],
                "precision": sorted(set(m["precision"].values())),
                "gates_passed": m["gates"]["passed"],
                "checks": len(gates),
                "min_tensor_cosine": min(g["value"] for k, g in gates.items() if k.endswith("/cosine")),
                "psnr_db": gates["image/psnr"]["value"],
                "ssim": gates["image/ssim"]["value"],
                "fid_ratio": gates.get("distribution/fid_ratio", {}).get("value"),
                "alignment_drop": gates.get("distribution/alignment_drop", {}).get("value"),
                "latency_s": m["runtime"]["latency_s"],
                "torch_latency_s": m["torch"]["latency_s"],
                "speedup": m["speedup_vs_torch"],
                "peak_rss_mb": m["runtime"]["peak_rss_mb"],
                "torch_peak_rss_mb": m["torch"]["peak_rss_mb"],
                "rss_ratio": m["runtime"]["peak_rss_mb"] / m["torch"]["peak_rss_mb"],
                "size_mb": m["bundle_bytes"] / 1e6,
                "t5": "text_encoder_3" in m["precision"],
            }
        )
    # ratios against the fp32 bundle (with T5) of the same target, measured in this run
    base = {x["target"]: x for x in rows if x["precision"] == ["fp32"] and x["t5"]}
    for x in rows:
        b = base.get(x["target"])
        if b:
            x["size_vs_fp32"] = x["size_mb"] / b["size_mb"]
            x["latency_vs_fp32"] = x["latency_s"] / b["latency_s"]
            x["rss_vs_fp32"] = x["peak_rss_mb"] / b["peak_rss_mb"]
    if args.json:
        print(json.dumps({"bundles": rows, "restructure": dict(decisions)}))
        return
    print(f"# {recipe.model}, {platform.processor() or platform.machine()}; latency = median of one-image runs")
    print(
        "| bundle | gates | min tensor cosine | PSNR dB | SSIM | FID ratio | align drop | latency ms | torch ms | "
        "speed-up | peak RSS MB | torch RSS MB | RSS ratio | size MB | size / fp32 | latency / fp32 | RSS / fp32 |"
    )
    print("|" + " --- |" * 17)
    for x in rows:
        print(
            f"| {x['stage']}: {x['target']} {'/'.join(x['precision'])}{'' if x['t5'] else ' no-T5'} | "
            f"{'pass' if x['gates_passed'] else 'FAIL'} "
            f"({x['checks']}) | {x['min_tensor_cosine']:.6f} | {x['psnr_db']:.1f} | {x['ssim']:.4f} | "
            f"{x['fid_ratio']:.4f} | {x['alignment_drop']:+.3f} | {x['latency_s'] * 1e3:.1f} | "
            f"{x['torch_latency_s'] * 1e3:.1f} | {x['speedup']:.2f}x | {x['peak_rss_mb']:.0f} | "
            f"{x['torch_peak_rss_mb']:.0f} | {x['rss_ratio']:.2f} | {x['size_mb']:.1f} | "
            f"{x.get('size_vs_fp32', float('nan')):.2f} | {x.get('latency_vs_fp32', float('nan')):.2f} | "
            f"{x.get('rss_vs_fp32', float('nan')):.2f} |"
        )
    for name, record in decisions:
        print(f"restructure {name}: {json.dumps(record)}")


if __name__ == "__main__":
    main()
