"""CPU features that decide quantization settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    info = Path("/proc/cpuinfo")
    if not info.exists():
        return frozenset()
    for line in info.read_text().splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def needs_reduce_range(flags: frozenset[str] | None = None) -> bool:
    """True on x86 CPUs without VNNI: their u8 x s8 kernel (vpmaddubsw) adds pairs of
    products into int16 with saturation, so full-range int8 weights can overflow."""
    flags = cpu_flags() if flags is None else flags
    is_x86 = "avx2" in flags or "sse4_2" in flags
    return is_x86 and not any(f in flags for f in VNNI_FLAGS)
