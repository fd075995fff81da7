"""Which CPUs a bundle's int8 must be exact on, and what that means for its weights.

The compile config's `cpu:` is `portable` (every x86-64 CPU: 7-bit int8 weights, which no
u8 x s8 kernel can saturate), `native` (the build machine's ISA: full-range weights where it
has VNNI) or a list of ISA names (the fleet's CPUs: full range only if every one has VNNI).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fewstep.cpu.isa import Isa, cpu_flags, detect, effective, get_isa, includes, int8_full_range_exact

PORTABLE, NATIVE = "portable", "native"
AMX = "avx512_core_amx"


def needs_reduce_range(flags: frozenset[str] | None = None) -> bool:
    """True on x86 CPUs without VNNI: their u8 x s8 kernel (vpmaddubsw) adds pairs of
    products into int16 with saturation, so full-range int8 weights can overflow."""
    if flags is None:  # this process: the CPU, lowered by a oneDNN cap if one is set
        return not int8_full_range_exact(effective())
    return not int8_full_range_exact(detect(flags))


def check_policy(value: Any) -> str | tuple[str, ...]:
    """Validate a `cpu:` value; errors name the allowed values."""
    if isinstance(value, str) and value in (PORTABLE, NATIVE):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return tuple(get_isa(v).name for v in value)
    from fewstep.cpu.isa import ISA_NAMES

    raise ValueError(f"cpu: {value!r}; allowed: portable, native, or a non-empty list of {', '.join(ISA_NAMES)}")


@dataclass(frozen=True)
class CpuPlan:
    """The resolved `cpu:` policy of one build."""

    mode: str  # portable | native | fleet
    isas: tuple[str, ...]  # the ISAs the int8 must be exact on (empty: every x86-64 level)
    full_range: bool  # full-range int8 weights allowed (every target ISA has VNNI)
    built_on: str | None

    @property
    def amx(self) -> bool:
        """Every CPU the bundle targets has AMX (False for `portable`: most x86-64 CPUs do not)."""
        return bool(self.isas) and all(includes(i, AMX) for i in self.isas)

    def attention(self, asked: str, inference_precision: str) -> str:
        """Resolve an int8 scheme's `attention` for one component.

        `auto` is float only where that buys speed on every targeted CPU: the component computes
        in bf16 and every target has AMX, whose bf16 tiles run the fused float attention 1.8x
        faster than the shipped f32 W8A8 at 1024 px (1.09x over int8 attention with bf16
        elsewhere, two real-width blocks). Without AMX, int8 attention with bf16 elsewhere is
        the faster setting (real size: 1.05x at 256 and 512 px, 1.11x at 1024 px), and at f32
        float attention is slower (0.80x). docs/benchmarks.md, issue 20."""
        if asked in ("int8", "float"):
            return asked
        return "float" if inference_precision == "bf16" and self.amx else "int8"

    def record(self, full_range_components: list[str]) -> dict[str, Any]:
        """The manifest's `cpu` block: what the bundle needs of the CPU that opens it."""
        return {
            "mode": self.mode,
            "isa": list(self.isas),
            "built_on": self.built_on,
            "int8_full_range": sorted(full_range_components),
            "requires": ["int8-vnni"] if full_range_components else [],
        }


def native_plan(here: Isa | None) -> CpuPlan:
    """`cpu: native` on a machine at level `here` (None: not x86, or unknown)."""
    built_on = here.name if here else None
    return CpuPlan(NATIVE, (built_on,) if built_on else (), int8_full_range_exact(here), built_on)


def plan_cpu(policy: str | tuple[str, ...], flags: frozenset[str] | None = None) -> CpuPlan:
    here: Isa | None = effective() if flags is None else detect(flags)
    built_on = here.name if here else None
    if policy == PORTABLE:
        return CpuPlan(PORTABLE, (), False, built_on)
    if policy == NATIVE:
        return native_plan(here)
    isas = tuple(get_isa(n) for n in policy)
    return CpuPlan("fleet", tuple(i.name for i in isas), all(i.vnni for i in isas), built_on)


__all__ = ["AMX", "CpuPlan", "check_policy", "cpu_flags", "native_plan", "needs_reduce_range", "plan_cpu"]
