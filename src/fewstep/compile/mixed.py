"""Mixed precision by search: the smallest bundle whose gates pass.

Each quantized component climbs its own ladder, from all-int4 weights through a decreasing
share `ratio` of int4 layers (the backend's sensitivity ranking keeps the most sensitive
layers at int8: NNCF's data-aware HESSIAN_INPUT_ACTIVATION for OpenVINO, weight-quantisation
error for ONNX Runtime) to all-int8 weights. Every trial is a complete, fully gated bundle;
the components named by failing tensor gates move one rung up (the transformer when only
image or distribution gates fail), until a trial passes. All trials are recorded in the
bundle's manifest.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from fewstep.compile.build import GateFailure, annotate, build_bundle
from fewstep.compile.config import CompileConfig
from fewstep.compile.measure import dir_size
from fewstep.fsutil import check_replaceable
from fewstep.quantize.config import MixedConfig, WeightOnlyConfig

RATIOS = (1.0, 0.8, 0.6, 0.4, 0.2)


def ladder(m: MixedConfig) -> list[WeightOnlyConfig]:
    common = dict(
        calibration_prompts=m.calibration_prompts, calibration_seed=m.calibration_seed, group_size=m.group_size
    )
    rungs = [WeightOnlyConfig(scheme="int4-weights", ratio=r, **common) for r in RATIOS]
    return [*rungs, WeightOnlyConfig(scheme="int8-weights", **common)]


def failing_components(gates: list[str], components: set[str]) -> set[str]:
    found = set()
    for gate in gates:
        match = re.match(r"tensor/([a-z0-9_]+)", gate)
        if match and match.group(1) in components:
            found.add(match.group(1))
    return found


def _rung(w: WeightOnlyConfig) -> dict[str, Any]:
    return {"scheme": w.scheme, "ratio": w.ratio if w.bits == 4 else 0.0}


def search_mixed(model, cfg: CompileConfig, out: Path, work_dir: Path | None = None, overwrite: bool = False):
    """Run the search: gated trial bundles in the work directory; the first that passes becomes `out`."""
    mixed = cfg.scheme()
    rungs = ladder(mixed)
    out = Path(out)
    check_replaceable(out, overwrite)
    work = Path(work_dir or out.with_name(f".{out.name}.work"))
    level = {c: 0 for c in mixed.components}
    trials: list[dict[str, Any]] = []
    report = None
    base = cfg.model_copy(update={"quantization": None, "precision": "fp32", "require_gates": False})
    for i in range(mixed.max_trials):
        plan = {c: ("mixed", rungs[lvl]) for c, lvl in level.items()}
        trial_out = work / f"trial-{i}"
        shutil.rmtree(trial_out, ignore_errors=True)
        path, report = build_bundle(model, base, trial_out, work / "trial-work", plan_override=plan)
        failed = [r.gate for r in report.failures()]
        trials.append(
            {
                "assignment": {c: _rung(rungs[lvl]) for c, lvl in level.items()},
                "passed": report.passed,
                "bundle_bytes": dir_size(path),
                "failed_gates": failed[:12],
            }
        )
        if report.passed:
            annotate(
                path,
                lambda m: {
                    "quantization": {
                        **(m.quantization or {}),
                        "scheme": mixed.model_dump(mode="json"),
                        "search": trials,
                    },
                    "config": cfg.model_dump(mode="json"),
                },
            )
            if out.exists():  # checked replaceable above: fewstep's own earlier output
                shutil.rmtree(out)
            shutil.move(str(path), str(out))
            return out, report
        top = len(rungs) - 1
        before = dict(level)
        bump = failing_components(failed, set(level))
        if not bump and level.get("transformer", top) < top:  # only image/distribution gates failed
            bump = {"transformer"}
        elif not bump:  # the transformer is at int8 already: the rest go to int8 at once
            bump = set(level)
            level.update({c: top - 1 for c in level if level[c] < top})
        for c in bump:
            level[c] = min(level[c] + 1, top)
        if level == before:  # nothing left to raise
            break
    # the search is defined by its gates: with no passing candidate there is no bundle to keep
    err = GateFailure(report, out)
    tried = "\n".join(f"  trial {i}: {t['assignment']} failed {t['failed_gates'][:4]}" for i, t in enumerate(trials))
    raise RuntimeError(f"mixed precision search found no passing bundle:\n{tried}\n{err}")
