"""Ask a target's runtime, on this CPU and under this process's restrictions, two things:

- does its int8 kernel saturate? One u8 x s8 MatMul whose pair sums overflow int16 (exact
  result 64, about 32 where `vpmaddubsw` saturates). Asking the kernel, not /proc/cpuinfo, also
  sees through a oneDNN cap or an emulated CPU;
- is its float math right? A tanh-GELU (which OpenVINO fuses into one JIT kernel) against numpy:
  an emulator that mis-executes an instruction fails here (qemu 7.2 puts OpenVINO's AVX2
  tanh-GELU off by 2.4), so a broken emulation is never mistaken for the CPU's numerics.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

PROBES = Path(__file__).with_name("probes")
PROBE = PROBES / "int8_saturation.onnx"
FIDELITY = PROBES / "fp32_fidelity.onnx"
EXACT = 64.0


def _run(target, path: Path, name: str, x: np.ndarray) -> np.ndarray:
    from fewstep.targets.base import ComponentIO, TensorSpec

    io = ComponentIO(name, (TensorSpec("x", x.shape),), ("y",))
    return target.load(path.parent, [path.name], io).run({"x": x})["y"]


def probe_output(target) -> np.ndarray:
    return _run(target, PROBE, "int8_probe", np.ones((4, 64), np.float32))


def fidelity_error(target) -> float:
    """Max abs error of the runtime's tanh-GELU on [-8, 8] (about 5e-7 on a real CPU)."""
    x = np.linspace(-8, 8, 16 * 128, dtype=np.float32).reshape(16, 128)
    ref = 0.5 * x.astype(np.float64) * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x.astype(np.float64) ** 3)))
    return float(np.abs(_run(target, FIDELITY, "fidelity_probe", x) - ref).max())


def _askable(target) -> bool:
    return target.cpu_isa_aware and target.export_format == "onnx" and not target.missing(runtime=True)


@cache
def _saturates(target_name: str) -> bool | None:
    from fewstep.targets.registry import get_target

    target = get_target(target_name)
    if not _askable(target):
        return None
    return bool(abs(float(probe_output(target).mean()) - EXACT) > 0.5)


def int8_saturates(target) -> bool | None:
    """True when full-range int8 weights saturate in `target`'s runtime here; None when the
    target's int8 does not depend on the CPU (or it cannot be asked)."""
    return _saturates(target.name)


def float_math_faithful(target, tolerance: float = 1e-3) -> bool | None:
    return fidelity_error(target) <= tolerance if _askable(target) else None
