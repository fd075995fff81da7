"""The SD3.5-Flash ablation table on zoo:shapes: every row's recipe in its own process.

Usage: python benchmarks/distill_ablations.py [--seeds 3] [--workers 8] [--threads 2] [--json-out FILE]

Runs `recipes/ablations/*.yaml` and the teacher rows of `recipes/toy-flash.yaml` (same
evaluator, held-out prompts and seeds; 1000 images each) with `--workers` recipes at a time,
each limited to `--threads` threads, then prints one row per setting with the FID ratio to the
28-step teacher and the spread of the student's gradient norm during distribution matching.
Rows resume from their checkpoints when re-run.

`--seeds N` distils every student row with distillation seeds 0..N-1 (seed 0 in `--out` itself,
seed s in `--out/seed-s`, from a copy of the recipe whose distill stages set `seed: s`; the
evaluation prompts and image seeds stay the same) and prints mean ± std over seeds. The teacher
rows do not depend on the distillation seed and run once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def seeded_recipe(recipe: str, seed: int, out_root: Path) -> str:
    """The recipe itself for seed 0, else a copy whose distill stages use `seed`."""
    if seed == 0:
        return recipe
    import yaml

    data = yaml.safe_load(Path(recipe).read_text())
    for stage in data["stages"]:
        if stage.get("kind") == "distill":
            stage["seed"] = seed
    path = out_root / "recipes" / Path(recipe).name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def seed_root(out_root: Path, seed: int) -> Path:
    return out_root if seed == 0 else out_root / f"seed-{seed}"


def run_recipe(recipe: str, out_root: Path, threads: int, seed: int = 0) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    name = Path(recipe).stem
    out_root = seed_root(out_root, seed)
    recipe = seeded_recipe(recipe, seed, out_root)
    out = out_root / name
    start = time.perf_counter()
    log = out_root / f"{name}.log"
    out_root.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        cmd = [sys.executable, "-m", "fewstep.cli", "run", recipe, "-o", str(out), "--no-progress", "--json"]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True, env=env)
    wall = time.perf_counter() - start
    return {"recipe": recipe, "rc": proc.returncode, "wall_s": wall, "out": str(out), "seed": seed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/ablations")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--only", nargs="*", default=None, help="recipe stems to run (the others are read from --out)")
    ap.add_argument("--seeds", type=int, default=1, help="distillation seeds per student row (0..N-1)")
    args = ap.parse_args()
    out_root = Path(args.out)
    recipes = sorted({r for _, r, _ in ROWS}, key=lambda r: r != "recipes/toy-flash.yaml")
    if args.only is not None:
        recipes = [r for r in recipes if Path(r).stem in args.only]
    jobs = [(r, seed) for seed in range(args.seeds) for r in recipes if seed == 0 or r in STUDENT_RECIPES]
    with ThreadPoolExecutor(args.workers) as pool:
        done = list(pool.map(lambda job: run_recipe(job[0], out_root, args.threads, job[1]), jobs))
    runs = {(r["recipe_stem"], r["seed"]): r for r in ({**d, "recipe_stem": Path(d["recipe"]).stem} for d in done)}
    rows = []
    for label, recipe, stage in ROWS:
        seeds = range(args.seeds) if stage.startswith("student") else [0]
        per_seed = [read_row(seed_root(out_root, s) / Path(recipe).stem, stage) for s in seeds]
        ran = [runs.get((Path(recipe).stem, s), {}) for s in seeds]
        rows.append({"row": label, "recipe": recipe, "stage": stage, "seeds": list(seeds), "per_seed": per_seed,
                     "rc": [r.get("rc") for r in ran]})  # fmt: skip
    ref = next((r["per_seed"][0] for r in rows if r["stage"] == "teacher-28" and r["per_seed"][0]), None)
    print("| row | seeds | FID | FID / teacher@28 | alignment | single-object | grad-norm CV (DM) | distill wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        got = [m for m in r["per_seed"] if m]
        if not got:
            print(f"| {r['row']} | | failed or not run (rc {r['rc']}, see {r['recipe']}) | | | | | |")
            continue
        ratio = [m["fid"] / ref["fid"] for m in got] if ref else [float("nan")]
        cv = [m["grad_norm_dm"]["cv"] for m in got if m.get("grad_norm_dm")]
        wall = [m["distill_wall_s"] for m in got if "distill_wall_s" in m]
        print(
            f"| {r['row']} | {len(got)} | {pm([m['fid'] for m in got], 2)} | {pm(ratio, 2)} | "
            f"{pm([m['alignment'] for m in got], 3)} | {pm([m['per_kind']['single'] for m in got], 3)} | "
            f"{pm(cv, 3) if cv else ''} | {pm(wall, 0) if wall else ''} |"
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2))


STUDENT_RECIPES = {r for _, r, stage in ROWS if stage.startswith("student")}


def read_row(run_dir: Path, stage: str) -> dict:
    """One run's scores for a stage (empty when it has not produced them)."""
    metrics_file = run_dir / stage / "metrics.json"
    if not metrics_file.exists():
        return {}
    m = json.loads(metrics_file.read_text())
    row = {k: m[k] for k in ("fid", "fid_real", "alignment", "per_kind")}
    manifest = run_dir / "distill" / "manifest.json"
    if stage.startswith("student") and manifest.exists():
        record = json.loads(manifest.read_text())
        row["grad_norm_dm"] = record["summary"].get("grad_norm_dm")
        row["distill_wall_s"] = record["wall_time_s"]
    return row


def pm(values: list[float], digits: int) -> str:
    """mean ± sample std (just the value for one seed)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


if __name__ == "__main__":
    main()
