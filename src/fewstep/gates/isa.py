"""Gates per instruction set: the same gates with the bundle's runtime restricted to each ISA
of the fleet (`gates.isa`, `fewstep gate --isa`), so one machine checks what CPUs of a lower
ISA will compute. Result names get the ISA as a prefix (`avx2:tensor/...`; the native CPU by its
ISA name, e.g. `avx512_core_vnni:`) when more than the native CPU is gated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fewstep.cpu.isa import detect
from fewstep.cpu.restriction import NATIVE
from fewstep.gates.check import GateReport, run_gates
from fewstep.gates.config import GateConfig, GateResult
from fewstep.runtime.bundle import Bundle, cpu_problem
from fewstep.sampling import Sampling


def requirement_gate(bundle: Bundle, saturates: bool | None) -> GateResult:
    """1 when the CPU (as restricted) meets what the bundle's manifest says it needs."""
    needs_vnni = bundle.manifest.cpu is not None and "int8-vnni" in bundle.manifest.cpu.requires
    met = not (needs_vnni and saturates)
    return GateResult.check("cpu/int8_requirements_met", 1.0 if met else 0.0, 1.0, ">=")


def f32_twin(root: Path, bundle: Bundle, cfg: GateConfig) -> Callable[[str], Bundle] | None:
    """Opens one component of the bundle again at f32, when the bundle runs at another precision
    (bf16) and `gates.tensor.vs_f32_cosine_min` is set; else None. One component at a time, so the
    gates hold at most one component twice. Only for the native CPU: under a restriction int8
    numerics differ too, and bf16 falls back to f32."""
    if cfg.tensor.vs_f32_cosine_min is None or bundle.manifest.inference_precision == "f32":
        return None

    def component(name: str) -> Bundle:
        return Bundle.open(root, check=False, allow_isa_mismatch=True, inference_precision="f32", components=[name])

    return component


def gate_isa(root: Path, isa: str, pipe, model_dir: Path, sampling: Sampling, cfg: GateConfig) -> GateReport:
    """All gates with the runtime restricted to `isa` (IsaUnavailable when that cannot be done here)."""
    from fewstep.runtime.probe import int8_saturates
    from fewstep.targets.registry import get_target

    bundle, runtime = Bundle.open_restricted(root, isa)
    try:
        if runtime is None:
            here = detect()
            restriction = {"isa": here.name if here else NATIVE, "how": "native"}
            saturates = int8_saturates(get_target(bundle.manifest.target))
        else:
            restriction, saturates = runtime.restriction.to_json(), runtime.saturates
        twin = f32_twin(root, bundle, cfg) if runtime is None else None
        report = run_gates(bundle, pipe, model_dir, sampling, cfg, twin)
        report.results.insert(0, requirement_gate(bundle, saturates))
        report.extra["restriction"] = {**restriction, "int8_saturates": saturates}
        if runtime is None and (problem := cpu_problem(bundle.manifest, get_target(bundle.manifest.target))):
            report.extra["cpu_problem"] = problem
    finally:
        if runtime is not None:
            runtime.close()
    return report


def gate_isas(root: Path, isas: tuple[str, ...], pipe, model_dir: Path, sampling: Sampling, cfg: GateConfig):
    """One report over every ISA in `isas`: results prefixed `<isa>:` unless only native is gated."""
    if tuple(isas) == (NATIVE,):
        return gate_isa(root, NATIVE, pipe, model_dir, sampling, cfg)
    merged = GateReport(extra={"isa": {}})
    here = detect()
    # `native` and this CPU's own ISA name are one run
    isas = tuple(dict.fromkeys(here.name if (isa == NATIVE and here) else isa for isa in isas))
    for isa in isas:
        report = gate_isa(root, isa, pipe, model_dir, sampling, cfg)
        name = report.extra["restriction"]["isa"]  # native: this CPU's ISA name
        for r in report.results:
            r.gate = f"{name}:{r.gate}"
        merged.results += report.results
        merged.extra["isa"][name] = {
            "passed": report.passed,
            **{k: v for k, v in report.extra.items() if k != "images"},
        }
        merged.extra.setdefault("images", report.extra.get("images"))
    return merged
