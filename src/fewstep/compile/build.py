"""`build_bundle(model, CompileConfig(...), out)`: one bundle for one plan, as typed steps:
restructure (the torch pipeline, gated) -> export (cached) -> calibrate (cached) -> quantize
(cached) -> build (the target's files) -> gate (the finished bundle, as `fewstep gate` does).

`fewstep.compile.api.compile_bundle` is the entry point: it runs a search scheme (`mixed`) as
trials of `build_bundle`, and anything else as one."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fewstep.compile.assemble import (
    make_manifest,
    pipeline_geometry,
    pipeline_record,
    save_tokenizers,
    write_manifest,
)
from fewstep.compile.config import CompileConfig, Shapes
from fewstep.compile.plan import Plan, apply_cpu_policy, calibration_scheme, component_plan
from fewstep.compile.restructure import apply_restructure
from fewstep.compile.spatial import crop_export
from fewstep.compile.steps import export_step, quantize_step
from fewstep.components import COMPONENT_ATTR, null_tokens, pipeline_components, t5_slot_length
from fewstep.families import family_for
from fewstep.fsutil import atomic_dir, check_replaceable, tree_digest
from fewstep.gates.check import GateReport
from fewstep.gates.isa import gate_isas
from fewstep.quantize.config import MixedConfig
from fewstep.runtime.manifest import MODULATION, BundleManifest, ComponentRecord, SourceRecord, write_manifest_file
from fewstep.sampling import sampling_for
from fewstep.sd3_pipeline import load_pipeline, resolve_model
from fewstep.targets.registry import get_target


class GateFailure(RuntimeError):
    def __init__(self, report: GateReport, where: Path):
        self.report = report
        lines = "\n".join("  " + r.describe() for r in report.failures())
        advice = "".join(f"\n  {line}" for line in report.advice())
        super().__init__(
            f"gates failed for {where}:\n{lines}{advice}\n(set require_gates: false to keep the bundle anyway)"
        )


def release_module(pipe, component: str) -> None:
    """Drop the pipeline's torch module behind `component` and give its memory back."""
    attr = COMPONENT_ATTR.get(component, component)
    if getattr(pipe, attr, None) is not None:  # the hoisted modulation has none: it shares the transformer's
        setattr(pipe, attr, None)
    gc.collect()


# layout -> (the targets whose files it holds, the module whose `write_layout` writes it)
LAYOUTS = {
    "openvino": (("openvino-cpu",), "fewstep.compile.openvino_layout"),
    "onnx": (("onnxruntime-cpu", "onnxruntime-cuda"), "fewstep.compile.onnx_layout"),
}


def _write_layout(root: Path, pipe, target, components: dict, tokenizers: dict, configs: dict, layout: str) -> None:
    """`openvino_layout` / `onnx_layout`: the ecosystem's diffusers-style layout, which then is the
    bundle's components (fewstep's runtime reads it too: runtime/layout.py), so no weight is
    stored twice."""
    import importlib
    import shutil

    key = f"{layout}_layout"
    targets, module = LAYOUTS[layout]
    if target.name not in targets:
        raise ValueError(f"{key}: only for the {' / '.join(targets)} target, not {target.name!r}")
    if "text_encoder_3" not in components:
        raise ValueError(
            f"{key}: needs T5 kept (the ecosystem's pipelines fill a T5-free slot with CLIP-length zeros, "
            "which differs from the pipeline's own)"
        )
    lengths = {k: v.max_length for k, v in tokenizers.items()}
    written = importlib.import_module(module).write_layout(root, pipe, components, configs, lengths)
    for name, files in written.items():
        for f in components[name].files:
            (root / "components" / f).unlink()
        components[name] = components[name].model_copy(update={"files": files, "layout": layout})
    if not any((root / "components").iterdir()):
        shutil.rmtree(root / "components")


def _check_isas(cfg: CompileConfig, target) -> None:
    """An ISA the gates cannot run here fails before the build, not after it."""
    if cfg.gates.enabled and target.cpu_isa_aware and cfg.gates.isa != ("native",):
        from fewstep.cpu.restriction import restriction_for

        for isa in cfg.gates.isa:
            restriction_for(target, isa)


def build_bundle(
    model: str | Path,
    cfg: CompileConfig,
    out: Path,
    work_dir: Path | None = None,
    plan_override: Plan | None = None,
    overwrite: bool = False,
) -> tuple[Path, GateReport]:
    """Build a gated bundle for `cfg.target` at `out` (written atomically).

    `plan_override` maps components to (precision label, scheme config): a search (the mixed
    precision one) gives each component its own scheme this way.
    """
    if isinstance(cfg.scheme(), MixedConfig) and plan_override is None:
        raise ValueError("a `mixed` scheme is a search over bundles: run it with fewstep.compile.api.compile_bundle")
    out = Path(out)
    check_replaceable(out, overwrite)  # before any work: a user's directory is never deleted
    model_dir = resolve_model(model)
    target = get_target(cfg.target)
    target.require()
    if cfg.gates.enabled and (reason := target.unavailable_reason()):
        raise ValueError(
            f"target {target.name!r} cannot run here ({reason}), and its gates run the bundle: build with "
            "gates.enabled: false here and gate it where it runs (`fewstep gate BUNDLE`)"
        )
    _check_isas(cfg, target)
    work = Path(work_dir or out.with_name(f".{out.name}.work"))
    work.mkdir(parents=True, exist_ok=True)

    # restructure: the torch pipeline itself, each change gated against the unchanged model
    pipe = load_pipeline(model_dir)
    sampling = sampling_for(pipe, model_dir, cfg.steps, cfg.guidance, cfg.guidance_interval)
    restructure = apply_restructure(pipe, model_dir, sampling, cfg.restructure)
    static = cfg.shapes is Shapes.static or (cfg.shapes is Shapes.auto and target.prefers_static)
    collapse, slots = cfg.restructure.collapse_null_tokens, cfg.restructure.null_slots
    hoist = cfg.restructure.hoist_modulation
    attention_layout = cfg.attention_layout_for(target)  # the exported graph's; the outputs are the same
    comps = pipeline_components(
        pipe, collapse_null=collapse, null_slots=slots, hoist_modulation=hoist, attention_layout=attention_layout
    )
    geometry = pipeline_geometry(pipe)
    slot = {"t5_length": t5_slot_length(pipe, collapse, slots), "t5_null_tokens": null_tokens(pipe, collapse)}
    plan = component_plan(cfg, list(comps))
    plan.update({k: v for k, v in (plan_override or {}).items() if k in plan})
    plan, cpu_record = apply_cpu_policy(plan, cfg, target)

    # calibrate: the torch student's own inputs to every component (cached by its inputs)
    calibration = None
    if (calib := calibration_scheme(plan)) is not None:
        from fewstep.quantize.calibration import collect

        calibration = collect(
            pipe, model_dir, sampling, calib.calibration_prompts, calib.calibration_seed,
            work / "calibration", collapse_null=collapse, null_slots=slots, hoist_modulation=hoist,
        )  # fmt: skip
    model_digest = tree_digest(model_dir)
    lean = not cfg.gates.enabled  # nothing needs the torch model after its export
    layout = cfg.layout
    layout_configs = None
    if layout:
        from fewstep.compile.openvino_layout import module_configs

        layout_configs = module_configs(pipe, list(comps))
    components: dict[str, ComponentRecord] = {}
    timings: dict[str, float] = {}
    steps: dict[str, dict[str, str | int]] = {}

    with atomic_dir(out) as tmp:
        (tmp / "components").mkdir()
        for name, comp in comps.items():
            precision, scheme = plan[name]
            target.check_precision(precision)
            # rows per call: the transformer runs cond and uncond together under CFG; the hoisted
            # modulation runs every step of one conditioning at once (Bundle.condition)
            rows = {"transformer": 2 if sampling.guidance > 1.0 else 1, MODULATION: sampling.steps}.get(name, 1)
            batch = cfg.batch * rows if static else None
            start = time.perf_counter()
            items = calibration.items(name, batch or 1) if calibration is not None else []
            torch_scheme = scheme if scheme is not None and target.quantizes_before_export else None
            export = dict(
                model_digest=model_digest, batch=batch, exporter=cfg.exporter,
                restructure=cfg.restructure.model_dump(mode="json"),
            )  # fmt: skip
            exported, io = export_step(
                work, comp, target, torch_scheme=torch_scheme, calibration=calibration, items=items, **export
            )
            steps[name] = {"export": exported.status}
            if torch_scheme is not None:
                scheme = None  # quantized in torch already
            layout_of = getattr(comp.module, "attention_layout", None)  # recorded; the module may be freed next
            crop = None
            if scheme is not None:  # a crop-size export for calibration, while the torch module is here
                crop = crop_export(work, comp, target, scheme, exported, **export)
            if lean:  # the torch module is not needed past its export: free it before quantize/build
                comps[name] = comp = None  # type: ignore[assignment]
                release_module(pipe, name)
            built = exported.path
            if scheme is not None:
                q = quantize_step(
                    work, exported, io, target, scheme,
                    sampling=sampling, calibration=calibration, items=items, crop=crop,
                )  # fmt: skip
                steps[name]["quantize"] = q.status
                if crop is not None:
                    steps[name]["calibration_crop"] = crop.size
                built = q.path
            # build: the target's own files for this component
            files = target.build(built, io, precision, tmp / "components")
            timings[name] = round(time.perf_counter() - start, 3)
            # the hoisted modulation runs at f32 whatever the bundle's arithmetic (ComponentRecord)
            own = cfg.component_inference_precision.get(name, "f32" if name == MODULATION else None)
            own = None if own == cfg.inference_precision else own  # recorded only where it differs
            components[name] = ComponentRecord(
                io=io.to_json(),
                files=files,
                precision=precision,
                inference_precision=own,
                attention_layout=layout_of,
            )
        pipe.scheduler.save_config(str(tmp / "scheduler"))
        tokenizers = save_tokenizers(pipe, tmp, components)
        if layout:
            _write_layout(tmp, pipe, target, components, tokenizers, layout_configs, layout)
        manifest = make_manifest(
            cfg=cfg,
            components=components,
            pipeline=pipeline_record(geometry, sampling, slot, components, tokenizers),
            static_batch=cfg.batch if static else None,
            plan=plan,
            calibration=calibration,
            restructure=restructure,
            cpu=cpu_record,
            source=SourceRecord(model=str(model), path=str(model_dir), digest=model_digest),
            family=family_for(model_dir).name,
            timings=timings,
            steps=steps,
        )
        manifest = write_manifest(tmp, manifest)
        if not cfg.gates.enabled:
            # nothing checked yet: `fewstep gate BUNDLE` checks it later
            return out, GateReport(extra={"skipped": "gates.enabled is false"})
        # gate: the written bundle, opened and hash-checked as a user's runtime would
        report = gate_isas(tmp, cfg.gates.isa, pipe, model_dir, sampling, cfg.gates)
        # the files are as hashed above: only the manifest changes
        write_manifest_file(tmp, manifest.model_copy(update={"gates": report.to_json()}))
        if cfg.require_gates and not report.passed:
            raise GateFailure(report, out)
    return out, report


def annotate(bundle: Path, fields: Callable[[BundleManifest], dict[str, Any]]) -> None:
    """Rewrite fields of a finished bundle's manifest from what it holds (the search records its
    trials this way); its files are checked once and, unchanged, not hashed again."""
    from fewstep.runtime.bundle import read_manifest

    manifest = read_manifest(bundle)
    write_manifest_file(bundle, manifest.model_copy(update=fields(manifest)))
