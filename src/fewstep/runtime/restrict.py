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
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fewstep.cpu.isa import get_isa
from fewstep.cpu.restriction import IsaUnavailable, Restriction


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

    def __init__(
        self, root: Path, restriction: Restriction, threads: int | None = None, env: dict[str, str] | None = None
    ):
        self.restriction = restriction
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker; closed in close()
        cmd = [*restriction.prefix, sys.executable, "-m", "fewstep.runtime.worker", str(root)]
        if threads:
            cmd += ["--threads", str(threads)]
        env = {**os.environ, **(env or {}), **restriction.env}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env)
        hello = self._recv()
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
