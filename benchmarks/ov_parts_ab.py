"""Two bundles' transformer steps, interleaved and profiled: where a change moved the time.

    python benchmarks/ov_parts_ab.py BUNDLE_A BUNDLE_B [--rounds 8] [--component transformer] [--json]

Each bundle's component is compiled as `ov_op_profile.py` compiles it (as the runtime does, the
plugin's counters on) and run on random inputs of its static shapes, A and B in turn for
`--rounds` rounds (the order reversed every other round). Each run's counters are summed into
parts: the weighted GEMMs (FullyConnected*), attention (its fused subgraphs or pieces, as
`ov_op_profile.attention_ms` counts them), Transpose, Concat, the RMS and MVN norms, the rest;
plus the wall time. The table gives each part's median ms for A and B and the median of the
per-round B / A ratios, so a change that moves time between parts (fewer transposes, a slower
attention kernel) shows where, with the host's drift paired out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from ov_op_profile import ATTENTION_OPS, ATTENTION_TAG, GEMM_OPS, by_op, open_profiled

NAMED = {"Transpose": "Transpose", "Concatenation": "Concat", "Concat": "Concat", "RMS": "RMS", "MVN": "MVN"}


def part(op: str) -> str:
    """The part one (layer type) of `by_op` belongs to."""
    if op in ATTENTION_OPS or op.endswith(ATTENTION_TAG):
        return "attention"
    if op.startswith(GEMM_OPS):
        return "GEMMs"
    return NAMED.get(op, "other")


def parts_ms(by: dict[tuple[str, str], float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for (op, _), ms in by.items():
        out[part(op)] = out.get(part(op), 0.0) + ms
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", type=Path, nargs=2)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--component", default="transformer")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    from fewstep.cpu.isa import detect

    runs = [open_profiled(b, a.component) for b in a.bundles]
    for c in runs:
        c.request.infer(c.feeds)  # warm-up
    rows: list[list[dict[str, float]]] = [[], []]
    for r in range(a.rounds):
        for i in (0, 1) if r % 2 == 0 else (1, 0):
            c = runs[i]
            start = time.perf_counter()
            c.request.infer(c.feeds)
            wall = (time.perf_counter() - start) * 1e3
            rows[i].append({"wall": wall, **parts_ms(by_op(c.request, c.attention))})
    isa = detect()
    print(f"ISA: {isa.name if isa else 'unknown'}; {a.rounds} interleaved profiled rounds")
    print(f"A: {a.bundles[0].name}; B: {a.bundles[1].name}")
    print("| part | A ms | B ms | B / A (median of rounds) |")
    print("| --- | --- | --- | --- |")
    names = sorted({k for rs in rows for row in rs for k in row}, key=lambda k: (k == "wall", k))
    table = {}
    for name in names:
        va, vb = ([row.get(name, 0.0) for row in rs] for rs in rows)
        ratios = [y / x for x, y in zip(va, vb) if x > 0]
        ratio = statistics.median(ratios) if ratios else float("nan")
        table[name] = {"a_ms": statistics.median(va), "b_ms": statistics.median(vb), "median_ratio": ratio}
        print(f"| {name} | {table[name]['a_ms']:.1f} | {table[name]['b_ms']:.1f} | {ratio:.3f} |")
    if a.json:
        print(json.dumps({"isa": isa.name if isa else None, "bundles": [str(b) for b in a.bundles], "parts": table}))


if __name__ == "__main__":
    main()
