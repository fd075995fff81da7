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

from fewstep.recipe import load_recipe
from fewstep.runner import run_recipe


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
    for r in results:
        if r.kind != "compile":
            continue
        m = json.loads((r.out / "metrics.json").read_text())
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
            }
        )
    if args.json:
        print(json.dumps(rows))
        return
    print(f"# {recipe.model}, {platform.processor() or platform.machine()}; latency = median of one-image runs")
    print(
        "| bundle | gates | min tensor cosine | PSNR dB | SSIM | FID ratio | align drop | latency ms | torch ms | "
        "speed-up | peak RSS MB | torch RSS MB | RSS ratio | size MB |"
    )
    print("|" + " --- |" * 14)
    for x in rows:
        print(
            f"| {x['target']} {'/'.join(x['precision'])} | {'pass' if x['gates_passed'] else 'FAIL'} "
            f"({x['checks']}) | {x['min_tensor_cosine']:.6f} | {x['psnr_db']:.1f} | {x['ssim']:.4f} | "
            f"{x['fid_ratio']:.4f} | {x['alignment_drop']:+.3f} | {x['latency_s'] * 1e3:.1f} | "
            f"{x['torch_latency_s'] * 1e3:.1f} | {x['speedup']:.2f}x | {x['peak_rss_mb']:.0f} | "
            f"{x['torch_peak_rss_mb']:.0f} | {x['rss_ratio']:.2f} | {x['size_mb']:.1f} |"
        )


if __name__ == "__main__":
    main()
