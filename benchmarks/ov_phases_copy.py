"""A copy of an OpenVINO bundle whose IRs are re-saved with their timestep phases marked f32: the
A-B twin of a bundle built before `targets/openvino_phases.py`, the same weights and quantization.

    python benchmarks/ov_phases_copy.py BUNDLE COPY [--components transformer ...]

The copy hard-links every file but the named components' IRs, which are read, passed through
`keep_phases_f32` (the step `OpenVINOCPU.build` now runs) and saved with `save_ir`; the manifest's
file table is re-hashed, so the copy opens and gates like a built bundle. Compare the two with
`ov_timestep_precision.py` (accuracy against f32), `ov_step_ab.py` (speed) and `fewstep gate`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("copy", type=Path)
    ap.add_argument("--components", nargs="+", default=["transformer"])
    a = ap.parse_args()
    import openvino as ov

    from fewstep.compile.assemble import write_manifest
    from fewstep.runtime.integrity import read_manifest
    from fewstep.targets.openvino_cpu import save_ir
    from fewstep.targets.openvino_phases import keep_phases_f32

    if a.copy.exists():
        raise SystemExit(f"{a.copy} exists; choose a new path")
    manifest = read_manifest(a.bundle)  # every file checked against its hash first
    if manifest.target != "openvino-cpu":
        raise SystemExit(f"{a.bundle}: an {manifest.target} bundle; this copies openvino-cpu ones")
    redo = {f"components/{manifest.components[c].files[0]}" for c in a.components}
    redo |= {str(Path(r).with_suffix(".bin")) for r in redo}
    for rel in manifest.files:
        dst = a.copy / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel not in redo:
            os.link(a.bundle / rel, dst)
    for name in a.components:
        rel = f"components/{manifest.components[name].files[0]}"
        model = ov.Core().read_model(str(a.bundle / rel))
        print(f"{name}: {keep_phases_f32(model)} ops marked")
        save_ir(model, a.copy / rel)
    write_manifest(a.copy, manifest)


if __name__ == "__main__":
    main()
