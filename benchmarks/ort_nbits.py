"""ONNX Runtime CPU: speed of MatMulNBits (weight-only int4/int8) by accuracy level.

    python benchmarks/ort_nbits.py [--m 589] [--layers 4] [--json]

Four chained transformer-sized MatMuls (m x 1536 x 6144 and back) in fp32, then with weights
quantized by ONNX Runtime's MatMulNBitsQuantizer (symmetric, blocks of 128) at accuracy_level
0 (the kernel's default: fp32 compute) and 4 (int8 compute on activations quantized on the
fly). GOP/s and the ratio to fp32, all in one process. fewstep's onnxruntime-cpu weight-only
schemes use level 4 (`WeightOnlyConfig.accuracy_level`).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from timing import median_seconds


def _model(m: int, k: int, n: int, layers: int):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = (rng.standard_normal((k, n)) * 0.02).astype(np.float32)
    nodes, inits, cur = [], [], "x"
    for i in range(layers):
        inits.append(numpy_helper.from_array(w if i % 2 == 0 else np.ascontiguousarray(w.T), f"w{i}"))
        nodes.append(helper.make_node("MatMul", [cur, f"w{i}"], [f"y{i}"]))
        cur = f"y{i}"
    width = k if layers % 2 == 0 else n
    graph = helper.make_graph(
        nodes,
        "gemms",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, [m, width])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _gops(model, x: np.ndarray, flops: float) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return flops / median_seconds(lambda: sess.run(None, {"x": x}), 5) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=589, help="rows (tokens); 589 = SD3.5-Medium at 256 px with T5")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    import logging

    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
    k, n = 1536, 6144
    model = _model(a.m, k, n, a.layers)
    x = np.random.default_rng(1).standard_normal((a.m, k)).astype(np.float32)
    flops = 2.0 * a.m * k * n * a.layers
    fp32 = _gops(model, x, flops)
    print(f"ONNX Runtime {ort.__version__}; {a.layers} MatMuls {a.m}x{k}x{n}; fp32 {fp32:.0f} GFLOP/s")
    print("| weights | accuracy_level | GOP/s | vs fp32 |")
    print("| --- | --- | --- | --- |")
    results: dict = {"fp32_gflops": round(fp32, 1)}
    for bits in (4, 8):
        for level in (0, 4):
            quant = MatMulNBitsQuantizer(
                onnx.ModelProto.FromString(model.SerializeToString()),
                bits=bits,
                block_size=128,
                is_symmetric=True,
                accuracy_level=level or None,
            )
            quant.process()
            speed = _gops(quant.model.model, x, flops)
            results[f"int{bits}_level{level}_gops"] = round(speed, 1)
            print(f"| int{bits} | {level} | {speed:.0f} | {speed / fp32:.2f}x |")
    if a.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
