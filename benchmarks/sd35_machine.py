"""What this CPU can do for `sd35_medium.py`: fp32 and int8 GEMM peaks (OpenVINO and torch, at
transformer-sized GEMMs), FLOP counts per component, and T5-XXL timed at a few layers."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sd35_workers import T5_MODES, family
from timing import median_seconds, seconds


def _gemm_onnx(m: int, k: int, n: int, int8: bool, path: Path) -> Path:
    """One transformer-sized GEMM as ONNX; int8 = Q/DQ on activations and weights (real int8 kernels)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((k, n)).astype(np.float32) * 0.02
    nodes, inits = [], []
    x_in = helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])
    y_out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])
    if int8:
        sw = np.abs(w).max(0) / 127
        wq = np.clip(np.round(w / sw), -127, 127).astype(np.int8)
        inits += [
            numpy_helper.from_array(wq, "wq"),
            numpy_helper.from_array(sw.astype(np.float32), "sw"),
            numpy_helper.from_array(np.array(0.05, np.float32), "sx"),
            numpy_helper.from_array(np.array(128, np.uint8), "zx"),
            numpy_helper.from_array(np.zeros(n, np.int8), "zw"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
            helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["wd"], axis=1),
            helper.make_node("MatMul", ["xd", "wd"], ["y"]),
        ]
    else:
        inits.append(numpy_helper.from_array(w, "w"))
        nodes.append(helper.make_node("MatMul", ["x", "w"], ["y"]))
    graph = helper.make_graph(nodes, "gemm", [x_in], [y_out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def gemm_shape(resolution: int) -> tuple[int, int, int]:
    """(M, K, N) of the reference GEMM: one block's MLP up-projection over the full token count."""
    from fewstep.zoo import sd35_medium as sd35

    return (resolution // 16) ** 2 + sd35.CLIP_LENGTH + sd35.T5_LENGTH, 1536, 6144


def reference_gemm(work: Path, resolution: int, int8: bool, hint: str = "f32") -> Callable[[int], float]:
    """The reference GEMM compiled in OpenVINO at an inference-precision `hint` (int8 = Q/DQ: real
    int8 kernels; a float GEMM at a bf16 hint: the bf16 peak, AMX bf16 where the CPU has it): a
    function of the repeat count that returns its median rate in GOP/s (GFLOP/s). Timed with shared
    buffers: the GEMM, not a copy of its output into numpy (up to half the time)."""
    import numpy as np
    import openvino as ov

    m, k, n = gemm_shape(resolution)
    label = "openvino_int8" if int8 else "openvino_fp32"
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(str(_gemm_onnx(m, k, n, int8, work / "tmp" / f"gemm-{label}.onnx"))),
        "CPU",
        {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"},
    )
    x = np.random.default_rng(1).standard_normal((m, k)).astype(np.float32)
    run = partial(compiled.create_infer_request().infer, {"x": x}, share_inputs=True, share_outputs=True)
    return lambda repeats: 2 * m * k * n / median_seconds(run, repeats) / 1e9


def w_machine(a) -> dict:
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fewstep.components import Transformer
    from fewstep.cpu.isa import detect
    from fewstep.zoo import sd35_medium as sd35

    m, k, n = gemm_shape(a.resolution)
    flops = 2 * m * k * n
    isa = detect()
    out: dict = {"gemm": {"m": m, "k": k, "n": n}, "isa": isa.name if isa else "unknown"}
    for label, int8 in (("openvino_fp32", False), ("openvino_int8", True)):
        out[f"{label}_gflops"] = reference_gemm(a.work, a.resolution, int8)(20)
    x = np.random.default_rng(1).standard_normal((m, k)).astype(np.float32)
    a_t, b_t = torch.from_numpy(x), torch.randn(k, n)
    out["torch_fp32_gflops"] = flops / median_seconds(lambda: a_t @ b_t, 20) / 1e9
    ai = torch.randint(-127, 127, (m, k), dtype=torch.int8)
    bi = torch.randint(-127, 127, (k, n), dtype=torch.int8)
    try:
        out["torch_int8_gops"] = flops / median_seconds(lambda: torch._int_mm(ai, bi), 20) / 1e9
    except RuntimeError as err:
        out["torch_int8_gops"] = None
        out["torch_int8_error"] = str(err)[:200]
    out["fp32_peak_gflops"] = max(out["openvino_fp32_gflops"], out["torch_fp32_gflops"])
    out["int8_peak_gops"] = max(out["openvino_int8_gflops"], out["torch_int8_gops"] or 0)

    cfg = family(a)
    s = a.resolution // 8
    counts = {}
    with torch.device("meta"):
        tr = sd35.build_transformer(cfg)
        # full text slot (77 CLIP + 256 T5 tokens) at batch 1 and 2 (CFG); T5 dropped: 77 + 1 null token
        for key, batch, null in (("batch1", 1, None), ("batch2", 2, None), ("batch1_no_t5", 1, sd35.T5_LENGTH)):
            text_tokens = sd35.CLIP_LENGTH + (1 if null else sd35.T5_LENGTH)
            with FlopCounterMode(display=False) as fc:
                Transformer(tr, null)(
                    torch.empty(batch, 16, s, s),
                    torch.empty(batch),
                    torch.empty(batch, text_tokens, cfg.transformer["joint_attention_dim"]),
                    torch.empty(batch, cfg.transformer["pooled_projection_dim"]),
                )
            counts[f"transformer_{key}"] = fc.get_total_flops()
            # attention scores and their weighted sum (batched matmuls on meta): fp32 in every bundle
            ops = fc.get_flop_counts()["Global"]
            counts[f"transformer_{key}_attention"] = sum(v for op, v in ops.items() if "bmm" in str(op))
        del tr
        from diffusers import AutoencoderKL

        vae = AutoencoderKL(**cfg.vae)
        with FlopCounterMode(display=False) as fc:
            vae.decode(torch.empty(1, 16, s, s))
        counts["vae_decoder"] = fc.get_total_flops()
        del vae
        for name, spec in (("clip_l", cfg.clip_l), ("clip_g", cfg.clip_g)):
            enc = sd35.build_clip(spec, 2, 1)
            with FlopCounterMode(display=False) as fc:
                enc(torch.zeros(1, sd35.CLIP_LENGTH, dtype=torch.long))
            counts[name] = fc.get_total_flops()
        t5 = sd35.build_t5(cfg)
        with FlopCounterMode(display=False) as fc:
            t5(torch.zeros(1, sd35.T5_LENGTH, dtype=torch.long))
        counts["t5"] = fc.get_total_flops()
    out["flops"] = counts
    out["params"] = {
        "transformer": sd35.parameter_count(sd35.build_transformer, cfg),
        "t5": sd35.parameter_count(sd35.build_t5, cfg),
    }
    return out


# T5-XXL depths timed: the per-layer slope is their difference over the layers between them
# (a wider gap and more repeats than 1 vs 3 layers x 3: the slope is multiplied by 23 layers)
T5_DEPTHS = (1, 4)
T5_REPEATS = 7


def _ov_t5_ir(model, ids, path: Path) -> Path:
    """The torch T5 converted by OpenVINO's PyTorch frontend, saved once per depth (every mode reads it)."""
    import openvino as ov
    import torch

    from fewstep.components import T5Encoder

    with torch.no_grad():
        ov.save_model(ov.convert_model(T5Encoder(model), example_input=(ids,)), str(path), compress_to_fp16=False)
    return path


def _ov_t5_seconds(xml: Path, ids, mode: str, hint: str | None) -> tuple[float, float]:
    """Median and spread (max - min) of one T5 forward in OpenVINO at the inference precision
    `hint` (None: the plugin's default)."""
    import nncf
    import openvino as ov

    from fewstep.targets.openvino_cpu import dynamic_quant_group

    ir = ov.Core().read_model(str(xml))
    config = {"PERFORMANCE_HINT": "LATENCY"} | ({"INFERENCE_PRECISION_HINT": hint} if hint else {})
    if mode != "fp32":  # int8 weights, as fewstep's quantizer writes them (optimum: asymmetric)
        sym = mode == "int8-weights"
        ir = nncf.compress_weights(
            ir, mode=nncf.CompressWeightsMode.INT8_SYM if sym else nncf.CompressWeightsMode.INT8_ASYM
        )
        if sym:  # fewstep's group; optimum's runs at the plugin default
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = dynamic_quant_group(ir)
    request = ov.Core().compile_model(ir, "CPU", config).create_infer_request()
    return _median_spread(partial(request.infer, {0: ids.numpy()}, share_inputs=True, share_outputs=True))


def _median_spread(fn) -> tuple[float, float]:
    """Median and spread (max - min) of T5_REPEATS timed calls after one warm-up."""
    times = seconds(fn, T5_REPEATS)
    return statistics.median(times), max(times) - min(times)


def w_t5(a) -> dict:
    """T5-XXL per forward, extrapolated from two depths: torch fp32 (the teacher), OpenVINO fp32
    and int8 weights (fewstep's group; optimum's asymmetric default), each at its precision hint."""
    import torch

    from fewstep.zoo import sd35_medium as sd35

    cfg = family(a)
    ids = torch.randint(0, cfg.t5["vocab_size"], (1, sd35.T5_LENGTH))
    per: dict = {name: {} for name in T5_MODES}
    spread: dict = {name: {} for name in T5_MODES}
    (a.work / "tmp").mkdir(parents=True, exist_ok=True)
    for layers in T5_DEPTHS:
        torch.manual_seed(0)
        model = sd35.build_t5(cfg.scaled(t5={"num_layers": layers})).eval()
        with torch.no_grad():
            per["torch"][layers], spread["torch"][layers] = _median_spread(lambda m=model: m(ids))
        xml = _ov_t5_ir(model, ids, a.work / "tmp" / f"t5-{layers}.xml")
        del model
        for name, mode in T5_MODES.items():
            if mode is not None:
                per[name][layers], spread[name][layers] = _ov_t5_seconds(xml, ids, *mode)
    full_layers = cfg.t5["num_layers"]
    params = sd35.parameter_count(sd35.build_t5, cfg)
    out: dict = {"weights_mb_fp32": params * 4 / 2**20, "depths": list(T5_DEPTHS), "repeats": T5_REPEATS}
    lo, hi = T5_DEPTHS
    for name, times in per.items():
        slope = (times[hi] - times[lo]) / (hi - lo)
        prefix = "" if name == "torch" else f"{name}_"
        out[f"{prefix}seconds_by_depth"] = times
        out[f"{prefix}spread_by_depth"] = spread[name]  # max - min of the repeats
        out[f"{prefix}seconds_per_layer"] = slope
        out[f"{prefix}seconds"] = times[lo] + (full_layers - lo) * slope
    out["note"] = (
        f"T5-XXL at 256 tokens, extrapolated from {lo}- and {hi}-layer models, "
        f"median of {T5_REPEATS} (torch fp32; OpenVINO)"
    )
    return out
