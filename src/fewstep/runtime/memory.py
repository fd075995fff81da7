"""Peak resident memory of this process.

`ru_maxrss` is carried over from the parent across fork + exec on Linux, so a child started
by a large process would report the parent's peak; VmHWM in /proc/self/status belongs to
this process image alone.
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # macOS: bytes / 1024 differs; best effort


def available_memory_bytes() -> int | None:
    """MemAvailable (what can be allocated without swapping); None where /proc/meminfo is absent."""
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None
