"""What `fewstep zoo train` costs on this machine, projected from short runs of every phase.

    python benchmarks/train_time.py [--json] [--teacher-steps 120]

Runs the real training code (`fewstep.zoo.train.train_all`) with short step counts in a
temporary directory, reads the seconds of every step from each phase's `losses.csv`, and
projects the full default schedule (`TrainConfig()`): per phase, setup + first-steps excess
(warm-up, torch.compile) + steady median step x steps + one checkpoint per
`checkpoint_every` steps. The teacher's text-encoder cache is filled before its measured
steps (a real run fills it within its first ~2000 steps) and the fill time is added once.
The teacher phase runs twice in the same process, eager and compiled, so the compile gain
is a ratio measured in one session. Prints the table, and
with --json a last line with the projected minutes.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from fewstep.zoo import train as train_mod
from fewstep.zoo.train import TrainConfig

WARM = 5  # steps counted as warm-up (allocator, first compile)
BUDGET_MIN = 90.0


def _step_seconds(work: Path) -> list[float]:
    with open(work / "losses.csv", newline="") as f:
        return [float(row[2]) for row in csv.reader(f)]


def _phase(name: str, run, work: Path, full_steps: int, ckpt_every: int, save_s: list[float]) -> dict:
    began = time.perf_counter()
    run()
    wall = time.perf_counter() - began
    secs = _step_seconds(work)
    steady = statistics.median(secs[WARM:])
    excess = max(0.0, sum(secs[:WARM]) - WARM * steady)
    saves = sum(save_s)
    setup = wall - sum(secs) - saves
    save_each = saves / max(1, len(save_s))
    projected = setup + excess + steady * full_steps + save_each * (full_steps // ckpt_every)
    save_s.clear()
    return {
        "phase": name,
        "measured_steps": len(secs),
        "step_ms": round(steady * 1000, 1),
        "warmup_s": round(excess, 1),
        "setup_s": round(setup, 1),
        "full_steps": full_steps,
        "projected_min": round(projected / 60, 2),
    }


def _filled_text_cache(init: Path) -> tuple[dict, float]:
    """Every training caption encoded, as a full run's cache holds them after ~2000 steps
    (measured: no new caption after that), and the seconds that encoding took."""
    from diffusers import StableDiffusion3Pipeline

    from fewstep.sd3_pipeline import encode_prompts
    from fewstep.zoo import shapes_data

    pipe = StableDiffusion3Pipeline.from_pretrained(str(init))
    captions = ["", *shapes_data.training_captions()]
    cache: dict = {}
    began = time.perf_counter()
    for i in range(0, len(captions), 64):  # batches of a training step's size
        encode_prompts(pipe, captions[i : i + 64], cache=cache)
    return cache, time.perf_counter() - began


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="measured steps of the evaluator/VAE/decoder phases")
    ap.add_argument("--teacher-steps", type=int, default=120, help="measured teacher steps per variant")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    full = TrainConfig(out=Path("unused"))
    save_s: list[float] = []
    real_save = train_mod.save_checkpoint

    def timed_save(*a, **kw):
        t = time.perf_counter()
        res = real_save(*a, **kw)
        save_s.append(time.perf_counter() - t)
        return res

    train_mod.save_checkpoint = timed_save
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="fewstep-train-time-") as tmp:
            out = Path(tmp)
            short = TrainConfig(
                out=out,
                evaluator_steps=args.steps,
                vae_steps=args.steps,
                decoder_steps=args.steps,
                teacher_steps=args.teacher_steps,
                progress=False,
                compile=False,
            )
            init = train_mod.init_pipeline(short)

            def measure(label: str, phase: str, run) -> dict:
                full_steps = getattr(full, f"{phase}_steps")
                return _phase(label, run, out / "work" / phase, full_steps, full.checkpoint_every, save_s)

            rows.append(measure("evaluator", "evaluator", lambda: train_mod.train_evaluator(short, out)))
            rows.append(measure("vae", "vae", lambda: train_mod.train_vae(short, out, init)))
            cache, fill_s = _filled_text_cache(init)
            teachers = []
            for label, cfg in (("teacher (eager)", short), ("teacher (compiled)", replace(short, compile=True))):
                shutil.rmtree(out / "work" / "teacher", ignore_errors=True)
                shutil.rmtree(out / "transformer", ignore_errors=True)
                torch._dynamo.reset()
                row = measure(label, "teacher", lambda c=cfg: train_mod.train_teacher(c, out, init, dict(cache)))
                # a real run fills the cache as captions appear: add the fill once
                row["setup_s"] = round(row["setup_s"] + fill_s, 1)
                row["projected_min"] = round(row["projected_min"] + fill_s / 60, 2)
                teachers.append(row)
            eager, compiled = teachers
            rows.append(measure("decoder", "decoder", lambda: train_mod.train_decoder(short, out)))
    finally:
        train_mod.save_checkpoint = real_save
    others = sum(r["projected_min"] for r in rows)
    rows.insert(2, eager)
    rows.insert(3, compiled)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; full schedule = TrainConfig() defaults")
    print("| phase | measured steps | step ms | warm-up s | setup s | full steps | projected min |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['phase']} | {r['measured_steps']} | {r['step_ms']} | {r['warmup_s']} | {r['setup_s']} | "
            f"{r['full_steps']} | {r['projected_min']} |"
        )
    total_eager = others + eager["projected_min"]
    total = others + compiled["projected_min"]
    speed = eager["step_ms"] / compiled["step_ms"]
    print(f"teacher step: compiled {speed:.2f}x faster than eager")
    print(f"projected total: {total:.1f} min compiled ({total_eager:.1f} min eager); budget {BUDGET_MIN:.0f} min")
    if args.json:
        print(
            json.dumps(
                {
                    "projected_min": round(total, 1),
                    "projected_min_eager": round(total_eager, 1),
                    "teacher_compile_speedup": round(speed, 3),
                    "budget_min": BUDGET_MIN,
                }
            )
        )


if __name__ == "__main__":
    main()
