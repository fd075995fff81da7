"""The SD3.5-Flash ablation table on zoo:shapes: every row's recipe in its own process.

Usage: python benchmarks/distill_ablations.py [--workers 8] [--threads 2] [--json-out FILE]

Runs `recipes/ablations/*.yaml` and the teacher rows of `recipes/toy-flash.yaml` (same
evaluator, held-out prompts and seeds; 1000 images each) with `--workers` recipes at a time,
each limited to `--threads` threads, then prints one row per setting with the FID ratio to the
28-step teacher and the spread of the student's gradient norm during distribution matching.
Rows resume from their checkpoints when re-run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROWS = [
    ("teacher, 28 steps", "recipes/toy-flash.yaml", "teacher-28"),
    ("teacher, 4 steps", "recipes/toy-flash.yaml", "teacher-4"),
    ("student 4, trajectory guidance only", "recipes/ablations/tg-only.yaml", "student-4"),
    ("+ DM, re-noise (DMD2)", "recipes/ablations/dmd2-renoise.yaml", "student-4"),
    ("+ DM, timestep sharing", "recipes/ablations/timestep-sharing.yaml", "student-4"),
    ("+ GAN heads", "recipes/ablations/gan.yaml", "student-4"),
    ("+ split-timestep merge (full method)", "recipes/toy-flash.yaml", "student-4"),
    ("full method, T5-free student", "recipes/ablations/t5-free.yaml", "student-4"),
    ("full method, 2 steps", "recipes/ablations/steps-2.yaml", "student-2"),
    ("full method, 8 steps", "recipes/ablations/steps-8.yaml", "student-8"),
    ("full method, grid: scheduler (shift 3; GenAI-exact)", "recipes/ablations/scheduler-grid.yaml", "student-4"),
    (
        "full method, grid: scheduler (shift 6; GenAI-exact)",
        "recipes/ablations/scheduler-grid-shift6.yaml",
        "student-4",
    ),
]


def run_recipe(recipe: str, out_root: Path, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    name = Path(recipe).stem
    out = out_root / name
    start = time.perf_counter()
    log = out_root / f"{name}.log"
    out_root.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        cmd = [sys.executable, "-m", "fewstep.cli", "run", recipe, "-o", str(out), "--no-progress", "--json"]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True, env=env)
    return {"recipe": recipe, "rc": proc.returncode, "wall_s": time.perf_counter() - start, "out": str(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/ablations")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--only", nargs="*", default=None, help="recipe stems to run (the others are read from --out)")
    args = ap.parse_args()
    out_root = Path(args.out)
    recipes = sorted({r for _, r, _ in ROWS}, key=lambda r: r != "recipes/toy-flash.yaml")
    if args.only is not None:
        recipes = [r for r in recipes if Path(r).stem in args.only]
    with ThreadPoolExecutor(args.workers) as pool:
        runs = {r["recipe"]: r for r in pool.map(lambda r: run_recipe(r, out_root, args.threads), recipes)}
    for _, recipe, _ in ROWS:  # rows not run now: read what an earlier run left
        runs.setdefault(
            recipe, {"recipe": recipe, "rc": None, "wall_s": None, "out": str(out_root / Path(recipe).stem)}
        )
    rows = []
    for label, recipe, stage in ROWS:
        run_dir = Path(runs[recipe]["out"])
        metrics_file = run_dir / stage / "metrics.json"
        row = {
            "row": label,
            "recipe": recipe,
            "stage": stage,
            "rc": runs[recipe]["rc"],
            "recipe_wall_s": runs[recipe]["wall_s"],
        }
        if metrics_file.exists():
            m = json.loads(metrics_file.read_text())
            row.update(fid=m["fid"], fid_real=m["fid_real"], alignment=m["alignment"], per_kind=m["per_kind"])
        manifest = run_dir / "distill" / "manifest.json"
        if stage.startswith("student") and manifest.exists():
            summary = json.loads(manifest.read_text())["summary"]
            row["grad_norm_dm"] = summary.get("grad_norm_dm")
            row["distill_wall_s"] = json.loads(manifest.read_text())["wall_time_s"]
        rows.append(row)
    ref = next((r for r in rows if r["stage"] == "teacher-28" and "fid" in r), None)
    print("| row | FID | FID / teacher@28 | alignment | single-object | grad-norm CV (DM) | distill wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if "fid" not in r:
            print(f"| {r['row']} | failed (rc {r['rc']}, see {r['recipe']}) | | | | | |")
            continue
        ratio = r["fid"] / ref["fid"] if ref else float("nan")
        g = r.get("grad_norm_dm") or {}
        cv = f"{g['cv']:.3f}" if g else ""
        wall = f"{r['distill_wall_s']:.0f}" if "distill_wall_s" in r else ""
        print(
            f"| {r['row']} | {r['fid']:.2f} | {ratio:.2f} | {r['alignment']:.3f} | {r['per_kind']['single']:.3f} | "
            f"{cv} | {wall} |"
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
