"""Which additive-mask layouts OpenVINO's fused attention computes right, and at what speed.

    python benchmarks/ov_mask_layouts.py [--tokens 64 334 1102 4174 4224] [--hints f32 bf16]
        [--layouts 1x1x1xL 1xHx1xL 1x1xLxL] [--time] [--json]

A T5-free fewstep bundle collapses the zero T5 slot to null tokens with a ln(n / m) bias on
their keys (fewstep/null_tokens.py). Up to 2026-12-06 that bias was exported as a (1, 1, 1, keys)
tensor, broadcast over heads and queries. On the AMX machine of that day, OpenVINO 2026.4.1's
CPU plugin fused such an attention into a snippets subgraph that, at a bf16 inference precision,
returned garbage (cosine near 0 against the exact result, NaN in part or all of the output),
while at f32 it was exact. With the head axis explicit, (1, heads, 1, keys), or the full
(1, 1, queries, keys) mask, the same subgraph is right. Which token counts go wrong depends on
the graph around the attention: in this script's graph up to 3328 tokens (3456 and more were
right); in real SD3.5-Medium blocks exported by fewstep at 334, 1102 and 4174 tokens alike
(`ov_null_bias_blocks.py`).

This builds one attention as the bundles' ONNX path exports it (q and k each scaled by
dim^-1/4, QKᵀ, + mask, softmax, ·V; SD3.5-Medium's 24 heads x 64), puts a ln(256) bias on the
last key, and compares each layout's output with a float64 reference: 1 - cosine, the largest
absolute error and the NaN fraction. `--time` adds the median of 5 runs (ms) per layout, so the
cost of the layout that works can be read beside the one that does not.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
from timing import median_seconds

from fewstep.gates.metrics import cosine

HEADS, DIM = 24, 64
NULL_BIAS = math.log(256)  # one null token standing for SD3's 256 zero T5 tokens
LAYOUTS = ("1x1x1xL", "1xHx1xL", "1x1xLxL")


def mask(layout: str, tokens: int) -> np.ndarray:
    bias = np.zeros(tokens, np.float32)
    bias[-1] = NULL_BIAS
    shape = {"1x1x1xL": (1, 1, 1, tokens), "1xHx1xL": (1, HEADS, 1, tokens), "1x1xLxL": (1, 1, tokens, tokens)}
    return np.ascontiguousarray(np.broadcast_to(bias, shape[layout]))


def attention_model(m: np.ndarray, tokens: int):
    import openvino as ov
    import openvino.opset13 as ops

    q, k, v = (ops.parameter([1, HEADS, tokens, DIM], np.float32, name=n) for n in "qkv")
    scale = ops.constant(np.float32(DIM**-0.25))
    kt = ops.transpose(k, ops.constant(np.array([0, 1, 3, 2], np.int64)))
    scores = ops.add(ops.matmul(ops.multiply(q, scale), ops.multiply(kt, scale), False, False), ops.constant(m))
    out = ops.matmul(ops.softmax(scores, -1), v, False, False)
    return ov.Model([out], [q, k, v], "attention")


def reference(x: list[np.ndarray], bias: np.ndarray) -> np.ndarray:
    """Exact attention in float64, one head at a time (4224 tokens: 143 MB of scores per head)."""
    out = np.empty(x[0].shape, np.float64)
    for h in range(HEADS):
        q, k, v = (a[0, h].astype(np.float64) for a in x)
        s = q @ k.T / math.sqrt(DIM) + bias
        p = np.exp(s - s.max(-1, keepdims=True))
        out[0, h] = (p / p.sum(-1, keepdims=True)) @ v
    return out


def check(tokens: int, hint: str, layout: str, timed: bool) -> dict:
    import openvino as ov

    rng = np.random.default_rng(0)
    x = [rng.standard_normal([1, HEADS, tokens, DIM]).astype(np.float32) for _ in range(3)]
    m = mask(layout, tokens)
    compiled = ov.Core().compile_model(attention_model(m, tokens), "CPU", {"INFERENCE_PRECISION_HINT": hint})
    request = compiled.create_infer_request()
    out = np.array(request.infer(x)[0])
    ref = reference(x, m[0, 0, -1])
    finite = np.nan_to_num(out)
    row = {
        "tokens": tokens,
        "hint": hint,
        "layout": layout,
        "one_minus_cos": 1 - cosine(finite, ref),
        "max_abs": float(np.abs(finite - ref).max()),
        "nan_share": float(np.isnan(out).mean()),
        "fused": sorted({op.get_rt_info()["layerType"].astype(str) for op in compiled.get_runtime_model().get_ops()}
                        - {"Const", "Input", "Output"}),
    }  # fmt: skip
    if timed:
        row["ms"] = 1e3 * median_seconds(lambda: request.infer(x, share_inputs=True, share_outputs=True), 5)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[64, 334, 1102, 4174, 4224])
    ap.add_argument("--hints", nargs="+", default=["f32", "bf16"], choices=["f32", "bf16"])
    ap.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    ap.add_argument("--time", action="store_true", help="median of 5 runs per layout (ms)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import openvino as ov

    if "bf16" in a.hints and "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise SystemExit("this CPU has no bf16 arithmetic in OpenVINO: run with --hints f32")
    print(f"OpenVINO {ov.get_version()}; one attention, {HEADS} heads x {DIM}, ln(256) bias on the last key")
    print("| tokens | hint | mask layout | 1 - cosine | max abs | NaN share | ms | fused as |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for tokens in a.tokens:
        for hint in a.hints:
            for layout in a.layouts:
                r = check(tokens, hint, layout, a.time)
                rows.append(r)
                ms = f"{r['ms']:.1f}" if "ms" in r else ""
                print(
                    f"| {tokens} | {hint} | {layout} | {r['one_minus_cos']:.1e} | {r['max_abs']:.3g} | "
                    f"{r['nan_share']:.2f} | {ms} | {' + '.join(r['fused'])} |",
                    flush=True,
                )
    if a.json:
        print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
