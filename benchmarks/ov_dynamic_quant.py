"""OpenVINO CPU: speed of weight-compressed MatMuls by dynamic-quantization group size.

    python benchmarks/ov_dynamic_quant.py [--layers 4] [--json]

For MatMuls whose weights NNCF compressed (int8 per channel, int4 in groups of 64 or 128) the CPU
plugin quantizes the activations on the fly, in groups of `DYNAMIC_QUANTIZATION_GROUP_SIZE`
input channels, and runs int8 GEMMs. This measures a stack of SD3.5-Medium-sized
projections (589 tokens = 256 px image + 333 text, 1536 -> 6144 -> 1536) in one process:
fp32, then each weight format at several group sizes, as GOP/s and as a ratio to the
plugin's default group. fewstep's openvino-cpu target uses the fastest group
(`fewstep.targets.openvino_cpu.dynamic_quant_group`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

GROUPS = (32, 64, 128, 256, 512)
M, K, N = 589, 1536, 6144


def _stack(layers: int):
    import openvino as ov
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([M, K], np.float32, name="x")
    h = x
    for i in range(layers):
        shape = (N, K) if i % 2 == 0 else (K, N)
        h = ops.matmul(h, ops.constant((rng.standard_normal(shape) * 0.02).astype(np.float32)), False, True)
    return ov.Model([h], [x])


def _gops(model, config: dict, flops: float, repeats: int = 10) -> float:
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", **config})
    request = compiled.create_infer_request()
    feed = np.random.default_rng(1).standard_normal((M, K)).astype(np.float32)
    for _ in range(3):
        request.infer({0: feed})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        request.infer({0: feed})
        times.append(time.perf_counter() - start)
    return flops / statistics.median(times) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import nncf
    import openvino as ov

    model = _stack(args.layers)
    flops = 2.0 * M * K * N * args.layers
    default = ov.Core().get_property("CPU", "DYNAMIC_QUANTIZATION_GROUP_SIZE")
    formats = {  # as fewstep's openvino quantizer writes them (symmetric)
        "int8-weights": nncf.compress_weights(model.clone(), mode=nncf.CompressWeightsMode.INT8_SYM),
        **{
            f"int4-weights g{g}": nncf.compress_weights(
                model.clone(), mode=nncf.CompressWeightsMode.INT4_SYM, group_size=g, ratio=1.0, all_layers=True
            )
            for g in (64, 128)
        },
    }
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}
    fp32 = _gops(model, f32, flops)
    print(f"OpenVINO {ov.__version__}; {args.layers} MatMuls {M}x{K}x{N}; plugin default group {default}")
    print(f"fp32 weights: {fp32:.0f} GFLOP/s\n")
    print("| weights | group | GOP/s | vs default group | vs fp32 |")
    print("| --- | --- | --- | --- | --- |")
    results: dict = {"fp32_gflops": round(fp32, 1), "default_group": int(default)}
    for name, compressed in formats.items():
        speeds = {g: _gops(compressed, {**f32, "DYNAMIC_QUANTIZATION_GROUP_SIZE": g}, flops) for g in GROUPS}
        base = speeds.get(int(default)) or _gops(compressed, f32, flops)
        for g, v in speeds.items():
            print(f"| {name} | {g} | {v:.0f} | {v / base:.2f}x | {v / fp32:.2f}x |")
        best = max(speeds, key=speeds.get)
        results[name] = {"gops": {str(g): round(v, 1) for g, v in speeds.items()}, "best_group": best}
        print(f"| {name} | best: {best} | | | |")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
