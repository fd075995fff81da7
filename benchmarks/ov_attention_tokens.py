"""Does the token count's alignment set the speed of OpenVINO's fused attention?

    python benchmarks/ov_attention_tokens.py [--tokens 1101 1102 1104 1120 1152] [--hints bf16 f32]
        [--layouts 24x64 12x128] [--peak] [--raw-inputs] [--int8] [--torch f32 bf16] [--rounds 3] [--json]

SD3.5-Medium's joint attention runs over image + text tokens: 1024 + 333 = 1357 at 512 px with
T5's slot kept, 1024 + 78 = 1102 with the slot collapsed to one null token (4429 / 4174 at
1024 px). The CPU plugin fuses attention into a snippets subgraph whose brgemm kernels use AMX
only where K and N are multiples of the VNNI factor (2 for bf16), and block their loops in
fixed sizes, so an odd or ragged token count may run slower per FLOP than an aligned one. The
null-token collapse can choose the count exactly (m null tokens, each with a ln(n/m) key bias,
weigh as n), so a faster aligned count would be a free lever.

This times one attention of SD3.5-Medium's layout (24 heads x 64; inputs (1, L, 24, 64)
transposed to heads-first, additive key bias as in the collapsed model, output back to
(1, L, 1536)) at each token count and inference precision. As in the bundles, q, k and v come out
of an op that runs at the inference precision (here a per-channel scale, q and k's RMSNorm weight
in the model), so the fused subgraph reads bf16 under a bf16 hint. Fed straight from f32 model
inputs (`--raw-inputs`, the only path before 2026-12-06), the plugin fuses the f32 -> bf16
conversion into the attention subgraph (`jit_avx512_f32`, against the bundles'
`jit_avx512_bf16`), which ran 1.5x slower at 4174 tokens. The table names the fused subgraph's
kernel type so a reader can check which path was timed. Timed: median of 20 after a warm-up, in one
process, counts interleaved over 3 rounds (host load drifts on these VMs); GFLOP/s = 4·L²·1536
over the median of the rounds' medians.

`--layouts HEADSxDIM ...` times the same width (1536) split into other head layouts: the same
FLOPs, but the softmax's work (an exp per score) scales with the head count. With two or more
layouts at a token count, the script fits ms = a·(heads·L²) + b·(4·L²·1536) over them by least
squares, splitting the fused kernel's time into a per-score cost (softmax, scaling, bias: the
vector units) and a per-FLOP cost (the two brgemms: AMX where the CPU has it), so the attention's
floor can be charged with both. `--peak` times `sd35_machine`'s reference float GEMM (4429 x 1536
x 6144) at each hint in every round, so the fitted FLOP rate has a peak measured beside it.

`--int8` applies NNCF's static int8 PTQ (transformer preset) to the attention first, so the plugin
runs its int8 MHA subgraph, the kernel of fewstep's W8A8 bundles without AMX, and `--peak` then
times the int8 reference GEMM: the fit gives that kernel's per-score cost (softmax plus the scores'
dequantisation and the probabilities' quantisation) and its matrix products' rate against the int8
peak (`floor_bound.py` turns it into the lowest step / floor a bundle can reach). `--torch` adds
torch's own CPU SDPA in the given dtypes as rows (hint `torch-<dtype>`), the other attention
kernel on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
from timing import median_seconds

WIDTH = 1536  # SD3.5-Medium's attention width: 24 heads x 64


def layout(text: str) -> tuple[int, int]:
    """'24x64' -> (24, 64); the product must be the model's width."""
    try:
        heads, dim = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"layout {text!r}: expected HEADSxDIM, e.g. 24x64") from None
    if heads * dim != WIDTH:
        raise argparse.ArgumentTypeError(f"layout {text!r}: heads x dim must be {WIDTH}")
    return heads, dim


def attention_model(tokens: int, raw_inputs: bool = False, heads: int = 24, dim: int = 64):
    import openvino as ov
    import openvino.opset13 as ops

    shape = [1, tokens, heads, dim]
    params = [ops.parameter(shape, np.float32, name=n) for n in ("q", "k", "v")]
    # the bundles' key bias layout since 2026-12-06, (1, heads, 1, keys): OpenVINO 2026.4's bf16 kernel
    # computes a (1, 1, 1, keys) bias wrong (ov_mask_layouts.py); timings before that date used it
    bias = ops.parameter([1, heads, 1, tokens], np.float32, name="bias")
    perm = ops.constant(np.array([0, 2, 1, 3], np.int64))
    rng = np.random.default_rng(3)
    scales = [ops.constant((1 + 0.1 * rng.standard_normal(dim)).astype(np.float32)) for _ in params]
    produced = params if raw_inputs else [ops.multiply(x, w) for x, w in zip(params, scales)]
    heads = [ops.transpose(x, perm) for x in produced]
    out = ops.scaled_dot_product_attention(*heads, bias, causal=False)
    out = ops.reshape(ops.transpose(out, perm), ops.constant(np.array([1, tokens, WIDTH])), False)
    return ov.Model([out], [*params, bias], "attention")


def attention_kernel(compiled) -> str:
    """The kernel type of the subgraph the plugin fused attention's softmax into."""
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "Softmax" in info["originalLayersNames"].astype(str):
            return f"{info['layerType'].astype(str)} {info['primitiveType'].astype(str)}"
    return "not fused"


def quantized(model, feeds: list[np.ndarray]):
    """NNCF's static int8 PTQ of the attention (transformer preset, as fewstep's W8A8 `attention: int8`):
    q, k, v and the softmax's output quantized, so the plugin runs its int8 MHA subgraph."""
    import logging

    import nncf

    nncf.set_log_level(logging.WARNING)
    rng = np.random.default_rng(1)
    items = [[rng.standard_normal(f.shape).astype(np.float32) if i < 3 else f for i, f in enumerate(feeds)]]
    return nncf.quantize(model, nncf.Dataset(items * 2), subset_size=2, model_type=nncf.ModelType.TRANSFORMER)


def timer(tokens: int, hint: str, raw_inputs: bool = False, heads: int = 24, dim: int = 64, int8: bool = False):
    import openvino as ov

    rng = np.random.default_rng(0)
    feeds = [rng.standard_normal([1, tokens, heads, dim]).astype(np.float32) for _ in range(3)]
    feeds.append(np.zeros([1, heads, 1, tokens], np.float32))
    model = attention_model(tokens, raw_inputs, heads, dim)
    compiled = ov.Core().compile_model(
        quantized(model, feeds) if int8 else model,
        "CPU",
        {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"},
    )
    request = compiled.create_infer_request()
    return attention_kernel(compiled), lambda: median_seconds(
        lambda: request.infer(feeds, share_inputs=True, share_outputs=True), 20
    )


def torch_timer(tokens: int, dtype: str, heads: int = 24, dim: int = 64):
    """torch's own CPU SDPA on (1, heads, tokens, dim) in `dtype` (its flash-attention kernel), the same
    additive key bias: the other attention kernel a user of this machine could run."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    dt = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype]
    q, k, v = (torch.randn(1, heads, tokens, dim, generator=gen).to(dt) for _ in range(3))
    bias = torch.zeros(1, heads, 1, tokens, dtype=dt)

    def run() -> None:
        with torch.no_grad():
            F.scaled_dot_product_attention(q, k, v, attn_mask=bias)

    return f"torch {torch.__version__} SDPA", lambda: median_seconds(run, 5)


def reference_peaks(hints: list[str], int8: bool = False) -> dict:
    """`sd35_machine`'s reference GEMM (1024 px shape; int8 with `int8`, else float) compiled at each hint:
    rate(repeats) -> GFLOP/s (GOP/s)."""
    import tempfile
    from pathlib import Path

    from sd35_machine import reference_gemm

    work = Path(tempfile.mkdtemp(prefix="attention-peak-"))
    return {hint: reference_gemm(work / hint, 1024, int8=int8, hint=hint) for hint in hints}


def split_costs(rows: list[dict]) -> list[dict]:
    """Per (hint, tokens) with two or more layouts: the least-squares fit of
    ms = a·(heads·L²) + b·(4·L²·WIDTH): ns per score and the FLOP rate of the rest."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["hint"], r["tokens"]), []).append(r)
    fits = []
    for (hint, tokens), group in groups.items():
        if len({r["heads"] for r in group}) < 2:
            continue
        scores = np.array([[r["heads"] * tokens**2, 4 * tokens**2 * WIDTH] for r in group], float)
        (a, b), *_ = np.linalg.lstsq(scores, np.array([r["ms"] / 1e3 for r in group]), rcond=None)
        total = float(np.mean([r["ms"] for r in group if r["heads"] == 24] or [np.nan]))
        softmax_ms = a * 24 * tokens**2 * 1e3  # the 24 x 64 layout's per-score part
        fits.append(
            {
                "hint": hint,
                "tokens": tokens,
                "ns_per_score": a * 1e9,
                "gemm_gflops": 1 / b / 1e9 if b > 0 else None,
                "score_share_24x64": softmax_ms / total if total == total else None,
            }
        )
    return fits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[1101, 1102, 1104, 1120, 1152])
    ap.add_argument("--hints", nargs="+", default=["bf16", "f32"])
    ap.add_argument("--layouts", type=layout, nargs="+", default=[(24, 64)], help="HEADSxDIM, e.g. 24x64 12x128")
    ap.add_argument("--peak", action="store_true", help="time the reference float GEMM at each hint every round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--raw-inputs", action="store_true", help="feed the attention straight from f32 model inputs")
    ap.add_argument(
        "--torch", nargs="*", default=[], choices=["f32", "bf16"], help="also time torch's CPU SDPA in these dtypes"
    )
    ap.add_argument(
        "--int8", action="store_true", help="NNCF static int8 attention (the int8 MHA); --peak then times the int8 GEMM"
    )
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    from fewstep.cpu.isa import detect

    isa = detect()
    kind = "static int8 (NNCF)" if a.int8 else "float"
    print(f"ISA: {isa.name if isa else 'unknown'}; {kind} attention, width {WIDTH}, additive key bias")
    timers = {
        (h, t, heads, dim): timer(t, h, a.raw_inputs, heads, dim, a.int8)
        for h in a.hints
        for t in a.tokens
        for heads, dim in a.layouts
    }
    timers |= {
        (f"torch-{dt}", t, heads, dim): torch_timer(t, dt, heads, dim)
        for dt in a.torch
        for t in a.tokens
        for heads, dim in a.layouts
    }
    times: dict = {key: [] for key in timers}
    references = reference_peaks(a.hints, a.int8) if a.peak else {}
    peaks: dict = {hint: [] for hint in references}
    for _ in range(a.rounds):
        for key, (_, fn) in timers.items():
            times[key].append(fn())
        for hint, rate in references.items():
            peaks[hint].append(rate(5))
    rows = []
    print("| hint | tokens | heads x dim | fused attention | ms | GFLOP/s | ms per 1000² tokens |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (hint, tokens, heads, dim), ts in times.items():
        kernel = timers[(hint, tokens, heads, dim)][0]
        s = statistics.median(ts)
        gflops = 4 * tokens**2 * WIDTH / s / 1e9
        rows.append(
            {
                "hint": hint,
                "tokens": tokens,
                "heads": heads,
                "dim": dim,
                "kernel": kernel,
                "ms": s * 1e3,
                "gflops": gflops,
                "rounds_ms": [t * 1e3 for t in ts],
            }
        )
        print(
            f"| {hint} | {tokens} | {heads} x {dim} | {kernel} | {s * 1e3:.2f} | {gflops:.0f} "
            f"| {s * 1e3 / (tokens / 1000) ** 2:.2f} |"
        )
    fits = split_costs(rows)
    for f in fits:
        f["peak_gflops"] = statistics.median(peaks[f["hint"]]) if f["hint"] in peaks else None
        share = f"; the per-score part is {f['score_share_24x64']:.0%} of 24 x 64" if f["score_share_24x64"] else ""
        rate = f"{f['gemm_gflops']:.0f} GFLOP/s" if f["gemm_gflops"] else "n/a (fit not positive)"
        if f["peak_gflops"] and f["gemm_gflops"]:
            rate += f" ({f['gemm_gflops'] / f['peak_gflops']:.0%} of the GEMM peak, {f['peak_gflops']:.0f})"
        print(f"{f['hint']}, {f['tokens']} tokens: {f['ns_per_score']:.3f} ns per score, the rest at {rate}{share}")
    if a.json:
        out = {"isa": isa.name if isa else None, "raw_inputs": a.raw_inputs, "int8": a.int8, "rows": rows, "fits": fits}
        print(json.dumps(out))


if __name__ == "__main__":
    main()
