"""Does the caption evaluator rank models the way the exact shapes evaluator does?

Each row is a model setting on the shapes domain (teacher at 28/8/4/2 steps and several
guidance settings, the shipped 4-step student, the scheduler-grid students). Every row is scored
twice on 1000 images: by the exact shapes evaluator on its held-out prompts, and by a caption
evaluator trained only on a captioned folder of shapes scenes (`fewstep evaluator train`) on its
own held-out captions. Printed: both scores per row, and Spearman's rank correlation between the
two evaluators over the rows, for FID and for alignment.

Usage:
  python benchmarks/make_caption_folder.py shapes -o runs/data/shapes --n 8000
  fewstep evaluator train --data imagefolder:runs/data/shapes -o runs/eval-shapes/caption-evaluator
  python benchmarks/evaluator_agreement.py --evaluator runs/eval-shapes/caption-evaluator [--num-images 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

from fewstep.evaluation import evaluate
from fewstep.families.captioned.evaluation import CaptionEvaluation
from fewstep.sampling import GenerationConfig
from fewstep.zoo.family import ShapesEvaluation

INTERVAL = (0.0, 0.8)
# (label, model, steps, guidance, guidance interval)
ROWS = [
    ("teacher@28 g2.0", "zoo:shapes", 28, 2.0, INTERVAL),
    ("teacher@28 g1.0", "zoo:shapes", 28, 1.0, None),
    ("teacher@28 g3.0", "zoo:shapes", 28, 3.0, INTERVAL),
    ("teacher@8 g2.0", "zoo:shapes", 8, 2.0, INTERVAL),
    ("teacher@4 g2.0", "zoo:shapes", 4, 2.0, INTERVAL),
    ("teacher@2 g2.0", "zoo:shapes", 2, 2.0, INTERVAL),
    ("student@4 (zoo:shapes-flash)", "zoo:shapes-flash", 4, 1.0, None),
    ("student@4 scheduler grid", "runs/ablations/scheduler-grid/distill", 4, 1.0, None),
    ("student@4 scheduler grid shift 6", "runs/ablations/scheduler-grid-shift6/distill", 4, 1.0, None),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evaluator", type=Path, required=True)
    ap.add_argument("--num-images", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cache", type=Path, default=None, help="JSONL of finished rows: kept, and rows in it skipped")
    args = ap.parse_args()
    done = {}
    if args.cache is not None and args.cache.exists():
        done = {r["row"]: r for r in map(json.loads, args.cache.read_text().splitlines()) if r.get("row")}
    caption, exact = CaptionEvaluation(args.evaluator), ShapesEvaluation()
    rows = []
    for label, model, steps, guidance, interval in ROWS:
        if not model.startswith("zoo:") and not Path(model).exists():
            print(f"# skipped {label}: {model} not found (see docs/benchmarks.md for how it was made)")
            continue
        if label in done:
            rows.append(done[label])
            continue
        cfg = GenerationConfig(steps=steps, num_images=args.num_images, seed=args.seed, guidance=guidance,
                               guidance_interval=interval, progress=False)  # fmt: skip
        start = time.perf_counter()
        row = {"row": label, "model": model}
        for name, evaluation in (("exact", exact), ("caption", caption)):
            r = evaluate(model, cfg, evaluation=evaluation)
            row[name] = {k: r[k] for k in ("fid", "fid_real", "alignment")}
        row["wall_s"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        if args.cache is not None:
            with open(args.cache, "a") as f:
                f.write(json.dumps(row) + "\n")
        if not args.json:
            e, c = row["exact"], row["caption"]
            line = f"{label:<34} exact FID {e['fid']:7.3f} align {e['alignment']:.3f} | "
            print(f"{line}caption FID {c['fid']:7.3f} align {c['alignment']:.3f}  ({row['wall_s']} s)", flush=True)
    result = {
        "rows": rows,
        "spearman_fid": float(spearmanr([r["exact"]["fid"] for r in rows], [r["caption"]["fid"] for r in rows])[0]),
        "spearman_alignment": float(
            spearmanr([r["exact"]["alignment"] for r in rows], [r["caption"]["alignment"] for r in rows])[0]
        ),
        "num_images": args.num_images,
        "evaluator": str(args.evaluator),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
    }
    if not args.json:
        print(f"Spearman over {len(rows)} rows: FID {result['spearman_fid']:.3f}, "
              f"alignment {result['spearman_alignment']:.3f}")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
