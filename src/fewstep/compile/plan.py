"""What each component becomes: its precision and scheme config, and the CPU policy applied to
int8 weights (7-bit unless every CPU the bundle targets has VNNI)."""

from __future__ import annotations

from typing import Any

from fewstep.compile.config import CompileConfig
from fewstep.quantize.config import Int8Config, default_scheme
from fewstep.runtime.manifest import MODULATION

Plan = dict[str, tuple[str, Any]]  # component -> (precision label, scheme config or None)


def component_plan(cfg: CompileConfig, names: list[str]) -> Plan:
    """(precision, scheme config or None) for every component."""
    scheme = cfg.scheme()
    plan = {}
    for name in names:
        if name in cfg.component_quantization:
            own = cfg.component_quantization[name]
            plan[name] = (own.scheme, own)
            continue
        if name in cfg.component_precision:
            p = cfg.component_precision[name]
        elif scheme is not None:
            p = scheme.scheme if name in scheme.components else "fp32"
        else:
            p = cfg.precision
        s = scheme if scheme is not None and p == scheme.scheme else default_scheme(p)
        plan[name] = (p, s)
    own = MODULATION in cfg.component_precision or MODULATION in cfg.component_quantization
    if MODULATION in plan and not own:
        plan[MODULATION] = modulation_plan(cfg, plan["transformer"][0])
    return plan


# The hoisted modulation runs a few rows per generation: reading its weights is its cost, so it keeps
# the transformer's weight format without activation quantization (a static int8 transformer: int8 weights).
MODULATION_PRECISION = {"int8": "int8-weights", "int8-weights": "int8-weights", "int4-weights": "int4-weights"}


def modulation_plan(cfg: CompileConfig, transformer: str) -> tuple[str, Any]:
    """The hoisted modulation's (precision, scheme): the transformer's weights, weight-only, where
    the target has that precision; otherwise the transformer's float precision or fp32."""
    from fewstep.precisions import precision as precision_info
    from fewstep.targets.registry import get_target

    supported = get_target(cfg.target).precisions
    wanted = MODULATION_PRECISION.get(transformer)
    if wanted is None:
        wanted = transformer if not precision_info(transformer).quantized else "fp32"
    p = wanted if wanted in supported else "fp32"
    return p, default_scheme(p)


def apply_cpu_policy(plan: Plan, cfg: CompileConfig, target) -> tuple[Plan, dict | None]:
    """Resolve `cfg.cpu` into each int8 scheme's weight range and attention precision (`auto`:
    float where the component computes in bf16 on AMX targets only) and the manifest's record of
    what the bundle needs of a CPU (None for targets whose numerics do not depend on the x86 ISA)."""
    if not target.cpu_isa_aware:
        return plan, None
    from fewstep.quantize.cpu import plan_cpu

    cpu = plan_cpu(cfg.cpu)
    out, full_range = {}, []
    for name, (precision, scheme) in plan.items():
        if isinstance(scheme, Int8Config):
            arithmetic = cfg.component_inference_precision.get(name, cfg.inference_precision)
            update: dict[str, Any] = {"attention": cpu.attention(scheme.attention, arithmetic)}
            if scheme.reduce_range is None:
                update["reduce_range"] = not cpu.full_range
            scheme = scheme.model_copy(update=update)
            if not scheme.reduce_range and name in scheme.components:
                full_range.append(name)
        out[name] = (precision, scheme)
    return out, cpu.record(full_range)


def calibration_scheme(plan: Plan) -> Any | None:
    """The calibrated scheme that asks for the most prompts (one calibration set serves all)."""
    calibrated = [s for _, s in plan.values() if s is not None and s.needs_calibration]
    return max(calibrated, key=lambda s: s.calibration_prompts) if calibrated else None
