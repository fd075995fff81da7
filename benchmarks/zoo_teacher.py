"""Quality of the zoo:shapes teacher at 28 and at 4 steps, against real images.

Usage: python benchmarks/zoo_teacher.py [--num-images 1000] [--guidance 4.0] [--json]

Prints one row per setting (domain FID, FID of two disjoint real sets of the same size,
their ratio, alignment overall / single-object / per category) and the 4-vs-28-step ratios
last. Every row uses the same held-out prompts and seeds.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from fewstep.evaluation import evaluate
from fewstep.sampling import GenerationConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="zoo:shapes")
    ap.add_argument("--num-images", type=int, default=1000)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--steps", type=int, nargs="+", default=[28, 4])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--guidance-interval",
        type=float,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="apply CFG only where LO <= sigma <= HI",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    for steps in args.steps:
        start = time.perf_counter()
        cfg = GenerationConfig(
            steps=steps,
            num_images=args.num_images,
            seed=args.seed,
            guidance=args.guidance,
            progress=not args.json,
            guidance_interval=tuple(args.guidance_interval) if args.guidance_interval else None,
        )
        r = evaluate(args.model, cfg)
        r["wall_s"] = time.perf_counter() - start
        rows.append(r)
    print(
        f"# {args.model}, {args.num_images} images, guidance {args.guidance} (interval {args.guidance_interval}), "
        f"seed {args.seed}, "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    print(
        "| steps | FID | FID real-vs-real | FID ratio | alignment | single-object | "
        + " | ".join(rows[0]["per_category"])
        + " | s/image |"
    )
    print("|" + " --- |" * (7 + len(rows[0]["per_category"])))
    for r in rows:
        cats = " | ".join(f"{v:.3f}" for v in r["per_category"].values())
        print(
            f"| {r['steps']} | {r['fid']:.3f} | {r['fid_real']:.3f} | {r['fid'] / r['fid_real']:.2f} | "
            f"{r['alignment']:.3f} | {r['per_kind']['single']:.3f} | {cats} | {r['seconds_per_image']:.4f} |"
        )
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        print(
            f"ratio {b['steps']}-step / {a['steps']}-step: FID x{b['fid'] / a['fid']:.2f}, "
            f"alignment {b['alignment'] - a['alignment']:+.3f}"
        )
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
