"""`compile_bundle(model, CompileConfig(...), out)`:
restructure -> export -> calibrate -> quantize -> build -> gates -> bundle."""

from __future__ import annotations

import gc
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from fewstep import __version__
from fewstep.compile.config import CompileConfig, Shapes
from fewstep.compile.export import export_onnx
from fewstep.compile.restructure import apply_restructure
from fewstep.compile.steps import complete, lookup, step_key
from fewstep.components import (
    COMPONENT_ATTR,
    TOKENIZER_OF,
    null_tokens,
    pipeline_components,
    t5_slot_length,
)
from fewstep.families import family_for
from fewstep.fsutil import atomic_dir, check_replaceable, tree_digest
from fewstep.gates.check import GateReport
from fewstep.gates.isa import gate_isas
from fewstep.pipelines import encoder_length, load_pipeline, resolve_model
from fewstep.quantize.config import Int8Config, MixedConfig, ModelOptConfig, WeightOnlyConfig, default_scheme
from fewstep.runtime.bundle import FORMAT, FORMAT_VERSION, MANIFEST, bundle_files
from fewstep.sampling import sampling_for
from fewstep.targets.base import ComponentIO
from fewstep.targets.registry import get_target


class GateFailure(RuntimeError):
    def __init__(self, report: GateReport, where: Path):
        self.report = report
        lines = "\n".join("  " + r.describe() for r in report.failures())
        super().__init__(f"gates failed for {where}:\n{lines}\n(set require_gates: false to keep the bundle anyway)")


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    manifest["files"] = bundle_files(root)
    tmp = root / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(root / MANIFEST)


def _needs_calibration(scheme: Any) -> bool:
    if isinstance(scheme, (Int8Config, ModelOptConfig)):
        return True
    return isinstance(scheme, WeightOnlyConfig) and (scheme.awq or scheme.scale_estimation or scheme.ratio < 1.0)


def component_plan(cfg: CompileConfig, names: list[str]) -> dict[str, tuple[str, Any]]:
    """(precision, scheme config or None) for every component."""
    scheme = cfg.scheme()
    plan = {}
    for name in names:
        if name in cfg.component_quantization:
            own = cfg.component_quantization[name]
            plan[name] = (own.scheme, own)
            continue
        if name in cfg.component_precision:
            p = cfg.component_precision[name]
        elif scheme is not None:
            p = scheme.scheme if name in scheme.components else "fp32"
        else:
            p = cfg.precision
        s = scheme if scheme is not None and p == scheme.scheme else default_scheme(p)
        plan[name] = (p, s)
    return plan


def apply_cpu_policy(plan: dict[str, tuple[str, Any]], cfg: CompileConfig, target) -> tuple[dict, dict | None]:
    """Resolve `cfg.cpu` into each int8 scheme's weight range (7-bit unless every CPU the bundle
    targets has VNNI) and the manifest's record of what the bundle needs of a CPU."""
    if not target.cpu_isa_aware:
        return plan, None
    from fewstep.quantize.cpu import plan_cpu

    cpu = plan_cpu(cfg.cpu)
    out, full_range = {}, []
    for name, (precision, scheme) in plan.items():
        if isinstance(scheme, Int8Config):
            if scheme.reduce_range is None:
                scheme = scheme.model_copy(update={"reduce_range": not cpu.full_range})
            if not scheme.reduce_range and name in scheme.components:
                full_range.append(name)
        out[name] = (precision, scheme)
    return out, cpu.record(full_range)


def quantize_for(target, model: Any, io, scheme: Any, items: list[dict], out: Path) -> Any:
    """The target's own quantizer if it has one, else fewstep's handler for its backend."""
    if scheme is None:
        return model
    own = target.quantize(model, io, scheme, items, out)
    if own is not None:
        return own
    if target.quant_backend is None:
        raise ValueError(f"target {target.name!r} has no quantizer for scheme {scheme.scheme!r}")
    from fewstep.quantize.registry import quantize_model

    return quantize_model(target.quant_backend, model, io, scheme, items, out)


def release_module(pipe, component: str) -> None:
    """Drop the pipeline's torch module behind `component` and give its memory back."""
    setattr(pipe, COMPONENT_ATTR.get(component, component), None)
    gc.collect()


def compile_bundle(
    model: str | Path,
    cfg: CompileConfig,
    out: Path,
    work_dir: Path | None = None,
    plan_override: dict[str, tuple[str, Any]] | None = None,
    overwrite: bool = False,
) -> tuple[Path, GateReport]:
    """Build a gated bundle for `cfg.target` at `out` (written atomically).

    `plan_override` maps components to (precision label, scheme config): the mixed-precision
    search uses it to give each component its own scheme.
    """
    if isinstance(cfg.scheme(), MixedConfig) and plan_override is None:
        from fewstep.compile.mixed import compile_mixed

        return compile_mixed(model, cfg, out, work_dir)
    out = Path(out)
    check_replaceable(out, overwrite)  # before any work: a user's directory is never deleted
    model_dir = resolve_model(model)
    target = get_target(cfg.target)
    target.require()
    if cfg.gates.enabled and target.cpu_isa_aware and cfg.gates.isa != ("native",):
        from fewstep.cpu.restriction import restriction_for

        for isa in cfg.gates.isa:  # before the build: an ISA that cannot be gated here fails now
            restriction_for(target, isa)
    work = Path(work_dir or out.with_name(f".{out.name}.work"))
    work.mkdir(parents=True, exist_ok=True)
    pipe = load_pipeline(model_dir)
    sampling = sampling_for(pipe, model_dir, cfg.steps, cfg.guidance, cfg.guidance_interval)
    restructure = apply_restructure(pipe, model_dir, sampling, cfg.restructure)
    static = cfg.shapes is Shapes.static or (cfg.shapes is Shapes.auto and target.prefers_static)
    collapse = cfg.restructure.collapse_null_tokens
    comps = pipeline_components(pipe, collapse_null=collapse)
    slot = {"t5_length": t5_slot_length(pipe, collapse), "t5_null_tokens": null_tokens(pipe, collapse)}
    plan = component_plan(cfg, list(comps))
    plan.update({k: v for k, v in (plan_override or {}).items() if k in plan})
    plan, cpu_record = apply_cpu_policy(plan, cfg, target)
    calibration = None
    if any(_needs_calibration(s) for _, s in plan.values()):
        from fewstep.quantize.calibration import collect

        scheme = max((s for _, s in plan.values() if _needs_calibration(s)), key=lambda s: s.calibration_prompts)
        calibration = collect(
            pipe,
            model_dir,
            sampling,
            scheme.calibration_prompts,
            scheme.calibration_seed,
            work / "calibration",
            collapse_null=collapse,
        )
    components: dict[str, Any] = {}
    timings: dict[str, float] = {}
    steps: dict[str, dict[str, str]] = {}
    model_digest = tree_digest(model_dir)
    tcfg = pipe.transformer.config
    lean = not cfg.gates.enabled  # nothing needs the torch model after its export

    with atomic_dir(out) as tmp:
        (tmp / "components").mkdir()
        for name, comp in comps.items():
            precision, scheme = plan[name]
            target.check_precision(precision)
            cfg_batch = 2 if name == "transformer" and sampling.guidance > 1.0 else 1
            batch = cfg.batch * cfg_batch if static else None
            start = time.perf_counter()
            items = calibration.items(name, batch or 1) if calibration is not None else []
            torch_scheme = scheme if scheme is not None and target.quantizes_before_export else None
            export_key = step_key(
                "export",
                model=model_digest,
                component=name,
                batch=batch,
                exporter=cfg.exporter.value,
                restructure=cfg.restructure.model_dump(mode="json"),
                torch_quantization=torch_scheme.model_dump(mode="json") if torch_scheme else None,
                calibration=calibration.record() if torch_scheme and calibration else None,
            )
            folder, record = lookup(work, "export", export_key)
            if record is None:
                if torch_scheme is not None:  # e.g. ModelOpt: fake-quantize in torch, export Q/DQ
                    comp = replace(comp, module=quantize_for(target, comp.module, comp.io, torch_scheme, items, work))
                # each component in its own folder: over 2 GB the exporter writes one file per tensor,
                # named after the tensor, and the CLIP encoders share tensor names
                io = export_onnx(comp, folder / f"{name}.onnx", batch, cfg.exporter)
                record = {"io": io.to_json(), "file": f"{name}.onnx"}
                complete(folder, record)
                steps[name] = {"export": "ran"}
            else:
                steps[name] = {"export": "reused"}
            io = ComponentIO.from_json(record["io"])
            exported = folder / record["file"]
            if torch_scheme is not None:
                scheme = None
            if lean:  # the torch module is not needed past its export: free it before quantize/build
                comps[name] = comp = None  # type: ignore[assignment]
                release_module(pipe, name)
            built = exported
            if scheme is not None:
                quantize_key = step_key(
                    "quantize",
                    export=export_key,
                    target=target.name,
                    scheme=scheme.model_dump(mode="json"),
                    sampling=sampling.to_json(),
                    calibration=calibration.record() if calibration else None,
                )
                qfolder, qrecord = lookup(work, "quantize", quantize_key)
                if qrecord is None:
                    built = Path(quantize_for(target, exported, io, scheme, items, qfolder))
                    complete(qfolder, {"file": built.relative_to(qfolder).as_posix()})
                    steps[name]["quantize"] = "ran"
                else:
                    built = qfolder / qrecord["file"]
                    steps[name]["quantize"] = "reused"
            files = target.build(built, io, precision, tmp / "components")
            timings[name] = round(time.perf_counter() - start, 3)
            components[name] = {"io": io.to_json(), "files": files, "precision": precision}
        tokenizers = {}
        for enc, attr in TOKENIZER_OF.items():
            tok = getattr(pipe, attr, None)
            if enc in components and tok is not None:
                tok.save_pretrained(str(tmp / "tokenizers" / enc))
                tokenizers[enc] = {
                    "path": f"tokenizers/{enc}",
                    "max_length": encoder_length(pipe, enc),
                    "pad_token": str(tok.pad_token),
                }
        pipe.scheduler.save_config(str(tmp / "scheduler"))
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "fewstep_version": __version__,
            "target": cfg.target,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "static_batch": cfg.batch if static else None,
            "precision": {k: v["precision"] for k, v in components.items()},
            "components": components,
            "pipeline": {
                "latent_shape": [tcfg.in_channels, tcfg.sample_size, tcfg.sample_size],
                "image_size": int(pipe.vae_scale_factor * tcfg.sample_size),
                "joint_attention_dim": tcfg.joint_attention_dim,
                **slot,  # the zero T5 slot the runtime feeds without T5 (one null token when collapsed)
                "t5": "text_encoder_3" in components,
                "negative_prompt": "",
                "tokenizers": tokenizers,
                **sampling.to_json(),
            },
            "quantization": {
                "scheme": cfg.scheme().model_dump(mode="json") if cfg.scheme() is not None else None,
                "components": {k: s.model_dump(mode="json") for k, (_, s) in plan.items() if s is not None},
                "calibration": calibration.record() if calibration is not None else None,
            },
            "restructure": restructure,
            "cpu": cpu_record,
            "source": {"model": str(model), "path": str(model_dir), "digest": model_digest},
            "family": family_for(model_dir).name,
            "config": cfg.model_dump(mode="json"),
            "build_seconds": timings,
            "steps": steps,  # per component: export / quantize ran, or reused from the work directory
        }
        write_manifest(tmp, manifest)
        if not cfg.gates.enabled:
            # nothing checked yet: `fewstep gate BUNDLE` checks it later
            return out, GateReport(extra={"skipped": "gates.enabled is false"})
        report = gate_isas(tmp, cfg.gates.isa, pipe, model_dir, sampling, cfg.gates)
        manifest["gates"] = report.to_json()
        write_manifest(tmp, manifest)
        if cfg.require_gates and not report.passed:
            raise GateFailure(report, out)
    return out, report
