"""The target conformance suite: what every target must do, checked on a tiny model built in code.

For each precision the target declares (or those asked for): the bundle builds, its gates pass
at that precision's default thresholds, it reloads with every hash verified, a tampered file
is refused, generation is deterministic per seed and independent of the batch, and images
have the pipeline's shape and range. Vendors run it with `fewstep conformance MY-TARGET` or
call `run_conformance` from their own test suite.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TINY = dict(
    layers=1, heads=2, head_dim=16, vae_channels=(16, 16, 16), clip_dims=(16, 32), t5_dim=64, dual_attention_layers=(0,)
)


# loose on purpose: a random tiny model checks the plumbing; accuracy is the recipes' gates' job
GATES = {
    "num_prompts": 2,
    "distribution": {"enabled": False},
    "image": {"psnr_min": 15, "ssim_min": 0.5},
    "tensor": {"cosine_min": 0.9, "rel_l2_max": 0.5, "max_abs_max": None},
}


BATCH_TOLERANCE = {"bf16": 5e-2, "fp16": 1e-2}  # max |batched - single| per pixel in [0, 1]


@dataclass
class CheckResult:
    precision: str
    check: str
    passed: bool
    detail: str = ""


def tiny_student(root: Path) -> Path:
    """A randomly initialised tiny SD3-architecture pipeline marked as a 2-step student."""
    from fewstep.zoo.builder import ShapesFamilyConfig, build_pipeline

    path = root / "tiny-student"
    build_pipeline(ShapesFamilyConfig(**TINY)).save_pretrained(str(path))
    record = {"steps": 2, "timesteps": [1.0, 0.75, 0.0], "sigmas": [1.0, 0.5], "guidance": 1.0, "t5_free": False}
    (path / "fewstep_student.json").write_text(json.dumps(record))
    return path


def _check(results: list[CheckResult], precision: str, name: str, fn) -> bool:
    try:
        detail = fn() or ""
        results.append(CheckResult(precision, name, True, str(detail)))
        return True
    except Exception as err:  # a conformance report lists every failure
        results.append(CheckResult(precision, name, False, f"{type(err).__name__}: {err}"))
        return False


def run_conformance(target: str, precisions: list[str] | None = None, work: Path | None = None) -> list[CheckResult]:
    """Run every check for `target`; returns one result per (precision, check)."""
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig
    from fewstep.runtime.bundle import Bundle, BundleError
    from fewstep.targets.registry import get_target

    spec = get_target(target)
    if reason := spec.unavailable_reason():
        raise RuntimeError(f"target {target!r} cannot run here: {reason}")
    root = Path(work or tempfile.mkdtemp(prefix="fewstep-conformance-"))
    model = tiny_student(root)
    results: list[CheckResult] = []
    for precision in precisions or list(spec.precisions):
        out = root / precision
        extra = {"quantization": {"scheme": "mixed", "calibration_prompts": 2}} if precision == "mixed" else {}
        state: dict = {}

        def build(p=precision, o=out, x=extra, s=state):
            cfg = CompileConfig(target=target, precision=p, gates=GATES, measure=False, require_gates=False, **x)
            s["path"], s["report"] = compile_bundle(model, cfg, o)

        if not _check(results, precision, "build", build):
            continue
        _check(
            results,
            precision,
            "gates pass",
            lambda s=state: _assert(s["report"].passed, [r.describe() for r in s["report"].failures()]),
        )

        def reload_and_generate(s=state, precision=precision):
            bundle = Bundle.open(s["path"])
            prompts = ["a red circle", "two blue squares", "a green triangle"]
            a = bundle.generate(prompts, seed=5)
            _assert(a.shape == (3, 32, 32, 3) and a.dtype == np.float32, f"shape/dtype {a.shape} {a.dtype}")
            _assert(np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1, "images must be finite, in [0, 1]")
            b = bundle.generate(prompts[1:2], seed=6)
            # 16-bit float kernels pick other blockings per batch size: their last bits differ; a
            # seeding bug differs by O(1)
            tol = BATCH_TOLERANCE.get(precision, 1e-4)
            diff = np.abs(a[1] - b[0]).max()
            _assert(diff < tol, f"image i must depend only on seed + i, not on the batch ({diff:.2e} >= {tol:g})")
            return f"max |batch - single| = {np.abs(a[1] - b[0]).max():.2e}"

        _check(results, precision, "reload, deterministic generation", reload_and_generate)

        def tamper(s=state, o=out):
            bad = o.with_name(o.name + "-tampered")
            shutil.copytree(s["path"], bad)
            victim = next(p for p in sorted((bad / "components").rglob("*")) if p.is_file())
            victim.write_bytes(victim.read_bytes() + b"\0")
            try:
                Bundle.open(bad)
            except BundleError:
                return "refused"
            raise AssertionError("a tampered bundle was loaded")

        _check(results, precision, "tampered bundle refused", tamper)
    return results


def _assert(ok: bool, message) -> None:
    if not ok:
        raise AssertionError(message)
