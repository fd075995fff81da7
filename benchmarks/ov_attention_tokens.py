"""Does the token count's alignment set the speed of OpenVINO's fused attention?

    python benchmarks/ov_attention_tokens.py [--tokens 1101 1102 1104 1120 1152] [--hints bf16 f32] [--json]

SD3.5-Medium's joint attention runs over image + text tokens: 1024 + 333 = 1357 at 512 px with
T5's slot kept, 1024 + 78 = 1102 with the slot collapsed to one null token (4429 / 4174 at
1024 px). The CPU plugin fuses attention into a snippets subgraph whose brgemm kernels use AMX
only where K and N are multiples of the VNNI factor (2 for bf16), and block their loops in
fixed sizes, so an odd or ragged token count may run slower per FLOP than an aligned one. The
null-token collapse can choose the count exactly (m null tokens, each with a ln(n/m) key bias,
weigh as n), so a faster aligned count would be a free lever.

This times one attention of SD3.5-Medium's layout (24 heads x 64; inputs (1, L, 24, 64)
transposed to heads-first, additive key bias as in the collapsed model, output back to
(1, L, 1536)) at each token count and inference precision: median of 20 after a warm-up, in one
process, counts interleaved over 3 rounds (host load drifts on these VMs); GFLOP/s = 4·L²·1536
over the median of the rounds' medians.
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
from timing import median_seconds

HEADS, HEAD_DIM = 24, 64


def attention_model(tokens: int):
    import openvino as ov
    import openvino.opset13 as ops

    shape = [1, tokens, HEADS, HEAD_DIM]
    q, k, v = (ops.parameter(shape, np.float32, name=n) for n in ("q", "k", "v"))
    bias = ops.parameter([1, 1, 1, tokens], np.float32, name="bias")
    perm = ops.constant(np.array([0, 2, 1, 3], np.int64))
    heads = [ops.transpose(x, perm) for x in (q, k, v)]
    out = ops.scaled_dot_product_attention(*heads, bias, causal=False)
    out = ops.reshape(ops.transpose(out, perm), ops.constant(np.array([1, tokens, HEADS * HEAD_DIM])), False)
    return ov.Model([out], [q, k, v, bias], "attention")


def timer(tokens: int, hint: str):
    import openvino as ov

    compiled = ov.Core().compile_model(
        attention_model(tokens), "CPU", {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    )
    rng = np.random.default_rng(0)
    feeds = [rng.standard_normal([1, tokens, HEADS, HEAD_DIM]).astype(np.float32) for _ in range(3)]
    feeds.append(np.zeros([1, 1, 1, tokens], np.float32))
    request = compiled.create_infer_request()
    return lambda: median_seconds(lambda: request.infer(feeds, share_inputs=True, share_outputs=True), 20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[1101, 1102, 1104, 1120, 1152])
    ap.add_argument("--hints", nargs="+", default=["bf16", "f32"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    from fewstep.cpu.isa import detect

    isa = detect()
    print(f"ISA: {isa.name if isa else 'unknown'}; attention 24 heads x 64, additive key bias")
    timers = {(h, t): timer(t, h) for h in a.hints for t in a.tokens}
    times: dict = {key: [] for key in timers}
    for _ in range(a.rounds):
        for key, fn in timers.items():
            times[key].append(fn())
    rows = []
    print("| hint | tokens | ms | GFLOP/s | ms per 1000² tokens |")
    print("| --- | --- | --- | --- | --- |")
    for (hint, tokens), ts in times.items():
        s = statistics.median(ts)
        gflops = 4 * tokens**2 * HEADS * HEAD_DIM / s / 1e9
        rows.append(
            {"hint": hint, "tokens": tokens, "ms": s * 1e3, "gflops": gflops, "rounds_ms": [t * 1e3 for t in ts]}
        )
        print(f"| {hint} | {tokens} | {s * 1e3:.2f} | {gflops:.0f} | {s * 1e3 / (tokens / 1000) ** 2:.2f} |")
    if a.json:
        print(json.dumps({"isa": isa.name if isa else None, "rows": rows}))


if __name__ == "__main__":
    main()
