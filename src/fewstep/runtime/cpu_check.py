"""Whether this CPU runs a bundle's int8 exactly: a bundle built with full-range int8 weights
needs VNNI; where the runtime's int8 kernel saturates (asked of the runtime itself, by probe),
it is refused unless the user allows the mismatch."""

from __future__ import annotations

from pathlib import Path

from fewstep.runtime.errors import BundleError
from fewstep.runtime.manifest import BundleManifest

ALLOW_ISA_ENV = "FEWSTEP_ALLOW_ISA_MISMATCH"


def cpu_problem(manifest: BundleManifest, target) -> str | None:
    """Why this CPU cannot run the bundle's int8 exactly, or None."""
    cpu = manifest.cpu
    if cpu is None or "int8-vnni" not in cpu.requires:
        return None
    from fewstep.cpu.isa import effective
    from fewstep.runtime.probe import int8_saturates

    if not int8_saturates(target):
        return None
    here = effective()
    return (
        f"its full-range int8 weights ({', '.join(cpu.int8_full_range)}) were built with "
        f"`cpu: {cpu.mode}` on {cpu.built_on} and need VNNI; this CPU "
        f"({here.name if here else 'unknown ISA'}) has no VNNI for {target.name}, whose int8 kernel saturates "
        "here (wrong images). Rebuild with `cpu: portable` (or list this CPU's ISA in `cpu:`)"
    )


def check_cpu(root: Path, manifest: BundleManifest, target, allow: bool) -> None:
    import os
    import warnings

    problem = cpu_problem(manifest, target)
    if problem is None:
        return
    if allow or os.environ.get(ALLOW_ISA_ENV) == "1":
        warnings.warn(f"bundle {root}: {problem}; running anyway as asked", RuntimeWarning, stacklevel=3)
        return
    raise BundleError(
        f"bundle {root} cannot run exactly on this CPU: {problem}; or pass --allow-isa-mismatch "
        f"({ALLOW_ISA_ENV}=1) to run it anyway"
    )
