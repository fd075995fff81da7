"""Ask a target's runtime, on this CPU and under this process's restrictions, whether its int8
kernel saturates: one u8 x s8 MatMul whose pair sums overflow int16 (exact result 64, about
32 where `vpmaddubsw` saturates). Asking the kernel, not /proc/cpuinfo, also sees through a
oneDNN cap or an emulated CPU."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

PROBE = Path(__file__).with_name("probes") / "int8_saturation.onnx"
EXACT = 64.0


def probe_output(target) -> np.ndarray:
    from fewstep.targets.base import ComponentIO, TensorSpec

    io = ComponentIO("int8_probe", (TensorSpec("x", (4, 64)),), ("y",))
    session = target.load(PROBE.parent, [PROBE.name], io)
    return session.run({"x": np.ones((4, 64), np.float32)})["y"]


@lru_cache(maxsize=None)
def _saturates(target_name: str) -> bool | None:
    from fewstep.targets.registry import get_target

    target = get_target(target_name)
    if not target.cpu_isa_aware or target.export_format != "onnx" or target.missing():
        return None
    y = probe_output(target)
    return bool(abs(float(y.mean()) - EXACT) > 0.5)


def int8_saturates(target) -> bool | None:
    """True when full-range int8 weights saturate in `target`'s runtime here; None when the
    target's int8 does not depend on the CPU (or it cannot be asked)."""
    return _saturates(target.name)
