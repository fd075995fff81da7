"""Run a bundle's components as a CPU of a lower instruction set would, on this machine.

Two mechanisms, chosen per target (`Target.isa_restriction`):
- `onednn-cap`: ONEDNN_MAX_CPU_ISA caps oneDNN's dispatch (OpenVINO's CPU plugin honours it;
  native speed);
- `qemu`: qemu-user with a CPU model that lacks the higher ISAs (e.g. Haswell for avx2), so
  every library's CPUID check sees that CPU. Works for any runtime (ONNX Runtime's MLAS has no
  ISA cap); slower; TCG emulates up to AVX2 only.

The components run in a worker process (`python -m fewstep.runtime.worker`) under the
restriction; the caller's tokenizers, sampler and torch reference stay in this process. The
worker runs the int8 saturation probe first, and a restriction whose probe does not behave as
the ISA's kernels must (saturating without VNNI, exact with it) is refused: no gate result is
ever reported for an ISA that was not really in force.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from fewstep.runtime.isa import Isa, detect, get_isa, includes

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


# -- the worker protocol: length-prefixed npz messages (no pickle) ------------------------
def send(stream: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    stream.write(struct.pack("<Q", len(data)))
    stream.write(data)
    stream.flush()


def _read(stream: BinaryIO, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("stream closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv(stream: BinaryIO) -> dict[str, np.ndarray]:
    (n,) = struct.unpack("<Q", _read(stream, 8))
    with np.load(io.BytesIO(_read(stream, n)), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class RestrictedRuntime:
    """A worker process holding a bundle's sessions under a restriction."""

    def __init__(self, root: Path, restriction: Restriction, threads: int | None = None):
        self.restriction = restriction
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker; closed in close()
        cmd = [*restriction.prefix, sys.executable, "-m", "fewstep.runtime.worker", str(root)]
        if threads:
            cmd += ["--threads", str(threads)]
        env = {**os.environ, **restriction.env}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env)
        hello = self._recv()
        self.isa = str(hello["isa"])
        probe, faithful = int(hello["saturates"]), int(hello["faithful"])
        self.saturates = None if probe < 0 else bool(probe)
        self.faithful = None if faithful < 0 else bool(faithful)

    def _stderr(self) -> str:
        self.log.seek(0)
        lines = [x for x in self.log.read().decode(errors="replace").splitlines() if "TCG doesn't support" not in x]
        return "\n".join(lines[-15:])

    def _recv(self) -> dict[str, np.ndarray]:
        try:
            msg = recv(self.proc.stdout)
        except EOFError:
            self.proc.wait()
            hint = ""
            if self.restriction.how == "onednn-cap":
                hint = "\n(a oneDNN cap is partial; qemu-user emulates the whole CPU: apt-get install qemu-user)"
            raise IsaUnavailable(
                f"the {self.restriction.describe()} worker exited ({self.proc.returncode}):\n{self._stderr()}{hint}"
            ) from None
        if "__error__" in msg:
            raise RuntimeError(f"under {self.restriction.describe()}: {msg['__error__']}")
        return msg

    def run(self, component: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        send(self.proc.stdin, {"__component__": np.array(component), **feeds})
        return self._recv()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@dataclass
class RemoteSession:
    runtime: RestrictedRuntime
    component: str

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.runtime.run(self.component, feeds)


def check_in_force(runtime: RestrictedRuntime, target: str) -> None:
    """Refuse a restriction that did not change the int8 kernels the way its ISA would."""
    if runtime.restriction.how == "native":
        return
    if runtime.faithful is False:
        runtime.close()
        raise IsaUnavailable(
            f"{target} under {runtime.restriction.describe()}: float math is wrong there (tanh-GELU probe), "
            "so its gate numbers would be the emulator's, not the CPU's; qemu-user 7.x mis-emulates AVX2: "
            "install qemu-user >= 8 (Debian bookworm: bookworm-backports)"
        )
    if runtime.saturates is None:
        return
    expected = not get_isa(runtime.restriction.isa).vnni
    if runtime.saturates != expected:
        state = "saturates" if runtime.saturates else "is exact"
        runtime.close()
        raise IsaUnavailable(
            f"{target} under {runtime.restriction.describe()}: the int8 probe {state}, which a "
            f"{runtime.restriction.isa} CPU's kernels would not: the restriction is not in force"
        )
