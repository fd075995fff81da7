"""TensorRT engine settings derived from a component's interface and the recipe: optimisation
profiles, precision flags, strong typing. Pure Python, so it is tested without TensorRT."""

from __future__ import annotations

from dataclasses import dataclass, field

from fewstep.precisions import precisions
from fewstep.targets.base import ComponentIO

FLOAT_FLAGS = {"fp16": ["FP16"], "bf16": ["BF16"], "fp32": []}


@dataclass(frozen=True)
class EnginePlan:
    strongly_typed: bool
    flags: list[str]
    profiles: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    workspace_mb: int = 4096


def engine_plan(io: ComponentIO, precision: str, batch: tuple[int, int, int] = (1, 1, 4)) -> EnginePlan:
    """One optimisation profile over the batch axis (min, opt, max); the other axes as exported.

    Q/DQ precisions build a strongly typed network (precisions come from the graph); float
    precisions build with the FP16 / BF16 builder flags instead.
    """
    lo, opt, hi = batch
    if not (1 <= lo <= opt <= hi):
        raise ValueError(f"shapes.batch: need 1 <= min <= opt <= max, got {list(batch)}")
    # static and ModelOpt precisions reach TensorRT as ONNX with explicit Q/DQ
    qdq = [n for n, p in precisions().items() if p.kind in ("static", "qdq")]
    if precision not in qdq and precision not in FLOAT_FLAGS:
        allowed = ", ".join((*FLOAT_FLAGS, *qdq))
        raise ValueError(f"tensorrt: precision {precision!r} not supported; allowed: {allowed}")
    profiles = {}
    fixed = io.static_sizes.get("batch")
    for t in io.inputs:
        dims = [(fixed or lo, fixed or opt, fixed or hi) if d == "batch" else (d, d, d) for d in t.shape]
        if any(isinstance(d[0], str) for d in dims):
            raise ValueError(f"{io.name}.{t.name}: only the batch axis may be dynamic, got {t.shape}")
        profiles[t.name] = tuple(tuple(int(d[i]) for d in dims) for i in range(3))  # type: ignore[assignment]
    strongly = precision in qdq
    return EnginePlan(strongly, [] if strongly else FLOAT_FLAGS[precision], profiles)
