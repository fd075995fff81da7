"""x86 instruction-set levels, as the int8 kernels of OpenVINO (oneDNN) and ONNX Runtime (MLAS)
see them, and the one property of them that decides int8 numerics.

Without VNNI, x86 int8 GEMMs multiply u8 x s8 pairs with `vpmaddubsw`, whose int16 pair sums
saturate (255 * 127 * 2 > 32767): full-range int8 weights then give wrong results. VNNI
(`vpdpbusd`) and AMX accumulate in int32 and are exact. 7-bit weights are exact on both.

Torch-free: the runtime uses this to check a bundle against the CPU it is opened on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class Isa:
    name: str  # fewstep's name, used in recipes, manifests and `--isa`
    onednn: str  # the value of ONEDNN_MAX_CPU_ISA that caps oneDNN at this level
    flags: frozenset[str]  # /proc/cpuinfo flags it needs (on top of the previous levels it includes)
    vnni: bool  # int8 dot products accumulate in int32 (exact for full-range int8 weights)
    qemu_cpu: str | None = None  # a qemu-user CPU model that exposes exactly this level (TCG has no AVX-512)


_AVX512 = frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"})
LEVELS: tuple[Isa, ...] = (
    Isa("sse41", "SSE41", frozenset({"sse4_1"}), vnni=False, qemu_cpu="Nehalem"),
    Isa("avx2", "AVX2", frozenset({"sse4_1", "avx", "avx2", "fma"}), vnni=False, qemu_cpu="Haswell"),
    Isa("avx2_vnni", "AVX2_VNNI", frozenset({"sse4_1", "avx", "avx2", "fma", "avx_vnni"}), vnni=True),
    Isa("avx512_core", "AVX512_CORE", frozenset({"sse4_1", "avx2", "fma"}) | _AVX512, vnni=False),
    Isa("avx512_core_vnni", "AVX512_CORE_VNNI", frozenset({"sse4_1", "avx2", "fma", "avx512_vnni"}) | _AVX512, True),
    Isa(
        "avx512_core_bf16",
        "AVX512_CORE_BF16",
        frozenset({"sse4_1", "avx2", "fma", "avx512_vnni", "avx512_bf16"}) | _AVX512,
        vnni=True,
    ),
    Isa(
        "avx512_core_amx",
        "AVX512_CORE_AMX",
        frozenset({"sse4_1", "avx2", "fma", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_tile"}) | _AVX512,
        vnni=True,
    ),
)
BY_NAME = {i.name: i for i in LEVELS}
ISA_NAMES = tuple(BY_NAME)
# ISA name -> the levels it includes (avx2_vnni is not part of avx512_core: oneDNN's order)
_INCLUDES = {
    "sse41": {"sse41"},
    "avx2": {"sse41", "avx2"},
    "avx2_vnni": {"sse41", "avx2", "avx2_vnni"},
    "avx512_core": {"sse41", "avx2", "avx512_core"},
    "avx512_core_vnni": {"sse41", "avx2", "avx2_vnni", "avx512_core", "avx512_core_vnni"},
    "avx512_core_bf16": {"sse41", "avx2", "avx2_vnni", "avx512_core", "avx512_core_vnni", "avx512_core_bf16"},
    "avx512_core_amx": set(ISA_NAMES),
}


def get_isa(name: str) -> Isa:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown ISA {name!r}; allowed: {', '.join(ISA_NAMES)} (or native)") from None


def includes(higher: str, lower: str) -> bool:
    """True when a CPU at level `higher` can run what `lower` needs."""
    return lower in _INCLUDES[higher]


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    info = Path("/proc/cpuinfo")
    if not info.exists():
        return frozenset()
    for line in info.read_text().splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def detect(flags: frozenset[str] | None = None) -> Isa | None:
    """The highest level whose flags the CPU has (None: not x86, or no SSE4.1)."""
    flags = cpu_flags() if flags is None else flags
    best = None
    for isa in LEVELS:
        if isa.flags <= flags and (best is None or includes(isa.name, best.name)):
            best = isa
    return best


def onednn_cap() -> Isa | None:
    """The level ONEDNN_MAX_CPU_ISA (or DNNL_MAX_CPU_ISA) caps oneDNN at, if set and known."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    if not value:
        return None
    return next((i for i in LEVELS if i.onednn == value.upper()), None)


def effective(flags: frozenset[str] | None = None) -> Isa | None:
    """The level oneDNN-based runtimes dispatch to here: the CPU's, lowered by a oneDNN cap."""
    host, cap = detect(flags), onednn_cap()
    if host is None or cap is None or not includes(host.name, cap.name):
        return host
    return cap


def int8_full_range_exact(isa: Isa | None) -> bool:
    """Full-range int8 weights are exact on this level (and on any non-x86 CPU)."""
    return True if isa is None else isa.vnni
