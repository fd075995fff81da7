"""What do SD3.5-Medium's adaLN modulation GEMMs cost per generation, and what would change it?

    python benchmarks/ov_modulation_gemm.py [--rows 1 4] [--hints bf16 f32] [--rounds 3] [--json]

Every transformer block turns the timestep + pooled-text vector into its norms' shift, scale and
gate vectors with one Linear per stream (`norm1.linear`, `norm1_context.linear`, and `norm_out`):
GEMMs with M = 1 that read 0.77 G weights per step and do almost no arithmetic. The op profile of
the 256 px W8A8 bundle puts them at 11 % of the step. Two levers a reader would ask about:

- **fewer weight bytes**: the same GEMMs with int4 weights (NNCF, symmetric, group 128) or with
  int8 weights only, against the bundle's static int8 (W8A8, NNCF PTQ);
- **one weight read for all steps**: the input depends only on the timestep and the prompt, so a
  4-step student could compute its 4 steps' modulations in one call with M = 4.

The shapes come from the diffusers transformer built on the meta device (no weights in memory);
the weights here are random (speed does not depend on them). Each variant is compiled once and
timed with `timing.median_seconds` (median of 15 after a warm-up), variants interleaved over
`--rounds` rounds (host load drifts on these VMs); the table gives the median of the rounds and
the milliseconds per 4-step generation (4 calls at M = 1, one call at M = 4).
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
from timing import median_seconds

STEPS = 4
MODES = ("w8a8", "int8-weights", "int4-weights")


def modulation_shapes() -> list[tuple[int, int]]:
    """(in, out) of every adaLN modulation Linear of SD3.5-Medium's transformer."""
    import torch
    from diffusers import SD3Transformer2DModel

    from fewstep.zoo.sd35_medium import SD35Config

    with torch.device("meta"):
        model = SD3Transformer2DModel(**SD35Config().transformer)
    return [
        (m.in_features, m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and name.endswith(".linear") and name.split(".")[-2].startswith("norm")
    ]


def float_model(shapes: list[tuple[int, int]], rows: int, seed: int = 0):
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(seed)
    x = ops.parameter([rows, shapes[0][0]], np.float32, name="emb")
    act = ops.swish(x)
    outs = [
        ops.matmul(act, ops.constant((rng.standard_normal((n, k)) * 0.02).astype(np.float32)), False, True)
        for k, n in shapes
    ]
    return ov.Model([ops.concat(outs, 1)], [x], "modulation")


def compressed(model, mode: str, rows: int):
    import nncf

    if mode == "w8a8":
        rng = np.random.default_rng(1)
        data = [{"emb": rng.standard_normal((rows, 1536)).astype(np.float32)} for _ in range(4)]
        return nncf.quantize(model, nncf.Dataset(data), subset_size=len(data))
    if mode == "int8-weights":
        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM)
    return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT4_SYM, group_size=128, ratio=1.0)


def timer(model, hint: str, rows: int):
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    x = np.random.default_rng(2).standard_normal((rows, 1536)).astype(np.float32)
    return lambda: median_seconds(lambda: request.infer({"emb": x}, share_inputs=True, share_outputs=True), 15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1, STEPS])
    ap.add_argument("--hints", nargs="+", default=["bf16", "f32"])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    from fewstep.cpu.isa import detect

    isa = detect()
    shapes = modulation_shapes()
    weights = sum(k * n for k, n in shapes)
    print(f"ISA: {isa.name if isa else 'unknown'}; {len(shapes)} modulation Linears, {weights / 1e9:.2f} G weights")
    timers = {}
    for mode in a.modes:
        for rows in a.rows:
            model = compressed(float_model(shapes, rows), mode, rows)
            for hint in a.hints:
                timers[(mode, rows, hint)] = timer(model, hint, rows)
    times: dict = {key: [] for key in timers}
    for _ in range(a.rounds):
        for key, fn in timers.items():
            times[key].append(fn())
    out = []
    print("| weights | M | hint | ms per call | ms per 4-step generation | G weights/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (mode, rows, hint), ts in times.items():
        s = statistics.median(ts)
        per_gen = s * (STEPS // rows if rows <= STEPS else 1) * 1e3
        out.append(
            {
                "mode": mode,
                "rows": rows,
                "hint": hint,
                "ms": s * 1e3,
                "ms_per_generation": per_gen,
                "rounds_ms": [t * 1e3 for t in ts],
            }
        )
        print(f"| {mode} | {rows} | {hint} | {s * 1e3:.1f} | {per_gen:.1f} | {weights / s / 1e9:.1f} |")
    if a.json:
        print(json.dumps({"isa": isa.name if isa else None, "weights": weights, "rows": out}))


if __name__ == "__main__":
    main()
