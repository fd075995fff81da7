"""How close to its compute floor can a W8A8 step get while attention pays a per-score cost?

    python benchmarks/floor_bound.py --resolution 1024 --fit FIT.json [--rows ROW ...] [--json]

The floor `sd35_medium.py` reports charges every FLOP of the transformer step at the int8 GEMM
peak, attention's two matrix products included. A fused attention kernel also does work per
score that the FLOP count does not hold: the scale, max, exp, sum and normalisation of the
softmax, and in an int8 MHA the dequantisation of the scores and the quantisation of the
probabilities. `ov_attention_tokens.py --int8 --layouts 24x64 12x128 48x32 --peak` splits the
runtime's kernel into that per-score cost and the rate of its matrix products by timing the same
FLOPs in three head layouts (the score count scales with the head count). This takes that fit
(its JSON last line, saved to FIT.json) and a cached `sd35_medium.py` row, and prints:

- the step's score count (its attention FLOPs / (4 x head dim)) and their per-score seconds at
  the fit's cost (the fit at the token count nearest the row's joint tokens);
- the bound: (floor + per-score seconds) / floor, the step / floor ratio the row would have if its
  GEMMs, the kernel's matrix products and every other op ran at the int8 peak, i.e. the lowest
  ratio reachable while the kernel's per-score cost stays what it is; the floor is the one of the
  row's profiled steps (int8 peak timed right before each, in the same process);
- beside it the row's measured step / floor and the per-score seconds as a share of the
  attention time its op profile counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from sd35_report import _floor_same_run, step_floors
from sd35_workers import parse_row

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROWS = ["openvino-cpu/int8/bf16/hoist/attn-int8", "openvino-cpu/int8/no-t5/bf16/hoist/attn-int8"]
HEAD_DIM = 64  # SD3.5-Medium: 24 heads x 64
TEXT_TOKENS = {False: 333, True: 78}  # CLIP 77 + T5 256; T5 dropped: CLIP 77 + 1 null token


def nearest_fit(fit: dict, tokens: int) -> dict:
    fits = [f for f in fit.get("fits", []) if f.get("ns_per_score") is not None]
    if not fits:
        raise SystemExit("the fit file has no per-score fit: run ov_attention_tokens.py with two or more --layouts")
    return min(fits, key=lambda f: abs(f["tokens"] - tokens))


def bound(row: str, resolution: int, results: Path, fit: dict) -> dict:
    def load(name: str) -> dict:
        path = results / f"{name.replace('/', '-')}.json"
        if not path.exists():
            raise SystemExit(f"{path}: no cached result (run sd35_medium.py --resolution {resolution} --only {name})")
        return json.loads(path.read_text())

    machine, d = load("machine"), load(row)
    dropped = "no-t5" in parse_row(row)[2]
    flops = "batch1_no_t5" if dropped else "batch1"
    attention = machine["flops"][f"transformer_{flops}_attention"]
    scores = attention / (4 * HEAD_DIM)
    joint = (resolution // 16) ** 2 + TEXT_TOKENS[dropped]
    f = nearest_fit(fit, joint)
    score_s = scores * f["ns_per_score"] * 1e-9
    measured = _floor_same_run(machine, flops, "w8a8", d)
    if measured is None:
        raise SystemExit(f"{row}: no profiled steps with a same-process int8 peak (a W8A8 row, profiled)")
    floor = statistics.median(step_floors(machine, flops, d["floor_pairs"]))
    return {
        "row": row,
        "resolution": resolution,
        "joint_tokens": joint,
        "fit_tokens": f["tokens"],
        "ns_per_score": f["ns_per_score"],
        "kernel_products_gops": f.get("gemm_gflops"),
        "scores_g": scores / 1e9,
        "score_s": score_s,
        "floor_s": floor,
        "bound": (floor + score_s) / floor,
        "measured": measured[0],
        "measured_range": list(measured[1:]),
        "score_share_of_attention": score_s / (d["attention_ms"] / 1e3) if d.get("attention_ms") else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, choices=[256, 512, 1024], required=True)
    ap.add_argument("--fit", type=Path, required=True, help="ov_attention_tokens.py's JSON last line, saved")
    ap.add_argument("--rows", nargs="+", default=DEFAULT_ROWS)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "sd35-medium-bench")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not a.fit.exists():
        raise SystemExit(f"{a.fit}: no such fit file")
    fit = json.loads(a.fit.read_text().strip().splitlines()[-1])
    results = a.work / str(a.resolution) / "results"
    rows = [bound(r, a.resolution, results, fit) for r in a.rows]
    print(f"ISA of the fit: {fit.get('isa')}; int8 attention: {fit.get('int8')}")
    print(
        "| row | joint tokens (fit at) | scores per step | ns per score | per-score s | floor s "
        "| bound: (floor + per-score) / floor | measured step / floor (range) | per-score share of attention |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        share = f"{r['score_share_of_attention']:.0%}" if r["score_share_of_attention"] is not None else ""
        lo, hi = r["measured_range"]
        print(
            f"| {r['row']} | {r['joint_tokens']} ({r['fit_tokens']}) | {r['scores_g']:.2f} G | {r['ns_per_score']:.3f} "
            f"| {r['score_s']:.2f} | {r['floor_s']:.2f} | {r['bound']:.2f}x | {r['measured']:.2f}x ({lo:.2f}–{hi:.2f}) "
            f"| {share} |"
        )
    if a.json:
        print(json.dumps({"isa": fit.get("isa"), "rows": rows}))


if __name__ == "__main__":
    main()
