"""Where an OpenVINO component's time goes: milliseconds per op type (CPU plugin counters).

    python benchmarks/ov_op_profile.py BUNDLE [--component transformer] [--repeats 3] [--top 15]

Compiles one component of a bundle as the runtime does (its IR's runtime options apply, e.g.
the dynamic-quantization group), runs it on random inputs of its static shapes, and sums the
plugin's per-node counters by (layer type, kernel) over the median run. The GEMM share next to
the rest shows how far a step can fall toward the GEMM-only compute floor.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

GEMM_OPS = ("FullyConnected", "MatMul", "Convolution")  # FullyConnectedCompressed: compressed weights
# attention: the fused kernels, or its pieces where they stay apart (MatMul = activation x
# activation: the CPU plugin turns every MatMul with constant weights into a FullyConnected)
ATTENTION_OPS = ("ScaledDotProductAttention", "MHA", "Softmax", "MatMul")


def attention_ms(by: dict[tuple[str, str], float]) -> float:
    """Milliseconds in attention (the scores, softmax and weighted sum) of one profiled run."""
    return sum(ms for (op, _), ms in by.items() if op in ATTENTION_OPS)


def profile(bundle: Path, component: str, repeats: int) -> tuple[dict[tuple[str, str], float], float]:
    import openvino as ov

    manifest = json.loads((bundle / "manifest.json").read_text())
    comp = manifest["components"][component]
    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True}
    compiled = ov.Core().compile_model(str(bundle / "components" / comp["files"][0]), "CPU", config)
    request = compiled.create_infer_request()
    rng = np.random.default_rng(0)
    feeds = {}
    for port in compiled.inputs:
        shape = list(port.get_shape())
        if port.get_element_type().get_type_name() in ("i64", "i32"):
            feeds[port.get_any_name()] = np.zeros(shape, np.int64)
        else:
            feeds[port.get_any_name()] = rng.standard_normal(shape).astype(np.float32)
    request.infer(feeds)  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        request.infer(feeds)
        wall = time.perf_counter() - start
        by: dict[tuple[str, str], float] = defaultdict(float)
        for info in request.get_profiling_info():
            by[(info.node_type, info.exec_type)] += info.real_time.total_seconds() * 1e3
        runs.append((wall, dict(by)))
    wall, by = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    return by, wall * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--component", default="transformer")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args()
    by, wall = profile(a.bundle, a.component, a.repeats)
    total = sum(by.values())
    print(f"{a.bundle.name}/{a.component}: wall {wall:.1f} ms, counted {total:.1f} ms")
    print("| op type | kernel | ms | share |")
    print("| --- | --- | --- | --- |")
    for (op, kernel), ms in sorted(by.items(), key=lambda kv: -kv[1])[: a.top]:
        print(f"| {op} | {kernel} | {ms:.1f} | {ms / total:.1%} |")
    gemm = sum(ms for (op, _), ms in by.items() if op.startswith(GEMM_OPS))
    print(f"GEMM-type ops ({', '.join(op + '*' for op in GEMM_OPS)}): {gemm:.1f} ms = {gemm / total:.1%}")
    att = attention_ms(by)
    print(f"attention ({', '.join(ATTENTION_OPS)}): {att:.1f} ms = {att / total:.1%}")
    print(f"(the run with the median wall time of {a.repeats})")


if __name__ == "__main__":
    main()
