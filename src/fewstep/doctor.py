"""`fewstep doctor`: this machine's CPU ISA, the installed runtimes, and per CPU target which
precisions are exact and which are fast here (measured, not assumed)."""

from __future__ import annotations

import importlib.metadata as md
import time
from pathlib import Path
from typing import Any

import numpy as np

from fewstep.cpu.isa import ISA_NAMES, cpu_flags, detect, effective, onednn_cap

PACKAGES = (
    "openvino",
    "nncf",
    "onnxruntime",
    "onnx",
    "torch",
    "diffusers",
    "transformers",
    "nvidia-modelopt",
    "tensorrt",
)
FLAGS = ("sse4_1", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")


def cpu_report() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "unknown")
    host, here, cap = detect(), effective(), onednn_cap()
    return {
        "model": model,
        "flags": [f for f in FLAGS if f in cpu_flags()],
        "isa": host.name if host else None,
        "onednn_cap": cap.name if cap else None,
        "effective_isa": here.name if here else None,
        "int8_vnni": bool(here and here.vnni),
        # what the int8 scheme's `attention: auto` gives a bf16 bundle built for this CPU (`cpu: native`)
        "int8_attention_bf16": _native_attention(here),
    }


def _native_attention(here) -> str:
    from fewstep.quantize.cpu import native_plan

    return native_plan(here).attention("auto", "bf16")


def _cpuinfo() -> list[str]:
    path = Path("/proc/cpuinfo")
    return path.read_text().splitlines() if path.exists() else []


def runtimes() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    from fewstep.cpu.restriction import qemu_binary

    out["qemu-user"] = qemu_binary()
    return out


def _matmul_models(folder: Path, m: int = 256, k: int = 1024, n: int = 1024) -> tuple[Path, Path]:
    """fp32 and static-int8 (QDQ, 7-bit weights) MatMul models for the speed check."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((k, n)).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])
    fp32 = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "fp32", [x], [y], [numpy_helper.from_array(w, "w")]
    )
    scale = np.abs(w).max(0) / 63
    inits = [
        numpy_helper.from_array(np.array(8 / 255, np.float32), "xs"),
        numpy_helper.from_array(np.array(128, np.uint8), "xz"),
        numpy_helper.from_array(np.round(w / scale).astype(np.int8), "wq"),
        numpy_helper.from_array(scale.astype(np.float32), "ws"),
        numpy_helper.from_array(np.zeros(n, np.int8), "wz"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=1),
        helper.make_node("MatMul", ["xd", "wd"], ["y"]),
    ]
    int8 = helper.make_graph(nodes, "int8", [x], [y], inits)
    paths = []
    for graph in (fp32, int8):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        paths.append(folder / f"{graph.name}.onnx")
        onnx.save(model, str(paths[-1]))
    return paths[0], paths[1]


def int8_speedup(target, repeats: int = 20) -> float | None:
    """Median time of a 256x1024x1024 fp32 MatMul over its static-int8 twin in `target`'s runtime."""
    import importlib.util
    import tempfile

    from fewstep.targets.base import ComponentIO, TensorSpec

    if importlib.util.find_spec("onnx") is None or target.export_format != "onnx":
        return None
    io = ComponentIO("bench", (TensorSpec("x", (256, 1024)),), ("y",))
    feeds = {"x": np.random.default_rng(1).standard_normal((256, 1024)).astype(np.float32)}
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for path in _matmul_models(Path(tmp)):
            session = target.load(path.parent, [path.name], io)
            session.run(feeds)
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                session.run(feeds)
                samples.append(time.perf_counter() - start)
            times.append(float(np.median(samples)))
    return times[0] / times[1]


def target_report(target) -> dict[str, Any]:
    from fewstep.cpu.restriction import IsaUnavailable, restriction_for
    from fewstep.runtime.probe import int8_saturates

    saturates = int8_saturates(target)
    speedup = int8_speedup(target)
    exact = {p: True for p in target.precisions}
    exact["int8"] = {"portable": True, "native": not saturates}
    fast = {"int8": speedup is not None and speedup > 1.1}
    gate_on: dict[str, str] = {}
    for isa in ISA_NAMES:
        try:
            gate_on[isa] = restriction_for(target, isa).describe()
        except IsaUnavailable as e:
            gate_on[isa] = f"unavailable: {e}"
    return {
        "int8_saturates": saturates,
        "int8_matmul_speedup": None if speedup is None else round(speedup, 2),
        "exact": exact,
        "fast": fast,
        "gate_isa": gate_on,
    }


def doctor() -> dict[str, Any]:
    from fewstep.targets.registry import discover

    targets: dict[str, Any] = {}
    for name, entry in discover().items():
        t = entry.target
        if t is None:
            targets[name] = {"status": f"broken: {entry.error}"}
        elif t.missing():
            targets[name] = {"status": f"missing {', '.join(t.missing())}: pip install 'fewstep[{t.extra}]'"}
        elif not t.cpu_isa_aware:
            targets[name] = {"status": "installed", "note": "int8 numerics do not depend on this CPU's ISA"}
        else:
            targets[name] = {"status": "installed", **target_report(t)}
    return {"cpu": cpu_report(), "runtimes": runtimes(), "targets": targets}
