"""How to run a target's runtime as a CPU of a lower instruction set, on this machine:
oneDNN's cap (`ONEDNN_MAX_CPU_ISA`, OpenVINO, native speed) or qemu-user with a CPU model that
lacks the higher ISAs (any runtime; TCG emulates up to AVX2). Which one a target uses is its
`isa_restriction` hook; `fewstep.runtime.restrict` runs a bundle's components under it."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fewstep.cpu.isa import Isa, detect, get_isa, includes

NATIVE = "native"


class IsaUnavailable(RuntimeError):
    """This ISA cannot be put in force for this target here; the message says why and what to do."""


@dataclass(frozen=True)
class Restriction:
    isa: str
    how: str  # native | onednn-cap | qemu
    env: dict[str, str] = field(default_factory=dict)
    prefix: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.how == "native":
            return f"{self.isa} (this CPU, unrestricted)"
        if self.how == "onednn-cap":
            return f"{self.isa} (ONEDNN_MAX_CPU_ISA={self.env['ONEDNN_MAX_CPU_ISA']})"
        return f"{self.isa} (emulated: {' '.join(self.prefix)})"

    def to_json(self) -> dict[str, Any]:
        return {"isa": self.isa, "how": self.how, "env": self.env, "prefix": list(self.prefix)}


MIN_QEMU = 8  # qemu 7.x mis-emulates AVX2 (OpenVINO's tanh-GELU off by 2.4)


@lru_cache(maxsize=1)
def qemu_binary() -> str | None:
    """qemu-user for x86-64, version >= MIN_QEMU, or None."""
    for name in ("qemu-x86_64", "qemu-x86_64-static"):
        path = shutil.which(name)
        if path and (qemu_version(path) or 0) >= MIN_QEMU:
            return path
    return None


def qemu_version(path: str) -> int | None:
    try:
        text = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"version (\d+)\.", text)
    return int(match.group(1)) if match else None


def onednn_cap(isa: Isa) -> Restriction:
    return Restriction(isa.name, "onednn-cap", {"ONEDNN_MAX_CPU_ISA": isa.onednn})


def emulated(isa: Isa, target: str) -> Restriction:
    """qemu-user with a CPU model of exactly this ISA, or IsaUnavailable saying what is missing."""
    if isa.qemu_cpu is None:
        raise IsaUnavailable(
            f"{target}: cannot restrict to {isa.name}: this runtime has no ISA cap and qemu-user emulates "
            "at most avx2 (no AVX-512); gate on a machine of that kind"
        )
    qemu = qemu_binary()
    if qemu is None:
        raise IsaUnavailable(
            f"{target}: cannot restrict to {isa.name}: this runtime has no ISA cap; emulate the CPU with "
            f"qemu-user >= {MIN_QEMU} (tools/install_emulator.sh; apt-get install qemu-user) or gate on a "
            "machine of that kind"
        )
    return Restriction(isa.name, "qemu", {}, (qemu, "-cpu", isa.qemu_cpu))


def restriction_for(target, isa_name: str) -> Restriction:
    """How to run `target` as an `isa_name` CPU here (IsaUnavailable if it cannot be done)."""
    host = detect()
    if host is None:
        raise IsaUnavailable("not an x86 CPU (or /proc/cpuinfo is unreadable): ISA restriction is x86-only")
    if isa_name == NATIVE or isa_name == host.name:
        return Restriction(host.name, "native")
    isa = get_isa(isa_name)
    if not includes(host.name, isa.name):
        raise IsaUnavailable(f"this CPU ({host.name}) lacks {isa.name}: gate it on a machine that has it")
    return target.isa_restriction(isa)


def lowest_saturating_isa(target) -> str:
    """A level without VNNI that `target` can be restricted to here (avx2 first): the ISA under
    which a VNNI machine sees what a CPU without VNNI computes."""
    host = detect()
    if host is None:
        raise IsaUnavailable("not an x86 CPU: there is no x86 ISA to restrict to")
    # emulated avx2 is the real thing; under a oneDNN cap OpenVINO's own kernels (snippets, FCs with
    # compressed weights) may still pick AVX-512 paths, so a capped avx512_core is the next best
    order = ("avx2", "avx512_core", "sse41") if qemu_binary() else ("avx512_core", "avx2", "sse41")
    for name in order:
        if not includes(host.name, name):
            continue
        try:
            restriction_for(target, name)
        except IsaUnavailable:
            continue
        return name
    raise IsaUnavailable(
        f"{target.name}: no ISA without VNNI can be put in force on this {host.name} CPU "
        "(install qemu-user to emulate avx2)"
    )
