"""Model commands (torch): `distill` a student, `eval` a pipeline or bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fewstep.cli.app import TRUSTED_KEY_HELP, app, fail, out, print_json, require_trusted_keys


def _student_steps(model: str) -> int | None:
    """A distilled student's K (None for a plain pipeline, a bundle or an unknown path)."""
    from fewstep.runtime.bundle import is_bundle
    from fewstep.sd3_pipeline import resolve_model
    from fewstep.student import student_info

    if not model.startswith("zoo:") and is_bundle(model):
        return None
    try:
        info = student_info(resolve_model(model))
    except (FileNotFoundError, KeyError):
        return None
    return int(info["steps"]) if info else None


@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Argument(help="zoo:<name> or a diffusers pipeline directory")],
    steps: Annotated[
        int | None, typer.Option(min=1, help="sampling steps (default: a student's own K, else 28)")
    ] = None,
    num_images: Annotated[int, typer.Option("--num-images", min=8, help="images (held-out prompts)")] = 1000,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    guidance: Annotated[
        float, typer.Option(min=0.0, help="CFG scale; <= 1 disables CFG (a student at its own K runs without CFG)")
    ] = 2.0,
    batch: Annotated[int, typer.Option(min=1)] = 200,
    drop_t5: Annotated[bool, typer.Option("--drop-t5", help="zero-fill the T5 slot")] = False,
    guidance_interval: Annotated[
        str | None, typer.Option("--guidance-interval", help="LO,HI: CFG only where LO <= sigma <= HI")
    ] = None,
    grid: Annotated[Path | None, typer.Option("--grid", help="image grid PNG path")] = None,
    metrics: Annotated[
        Path | None,
        typer.Option(
            "--metrics",
            help="YAML of standard metrics with local networks (reference, fid_network, clip): FID and CLIP score "
            "for models without a shipped evaluator",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    trusted_key: Annotated[list[Path] | None, typer.Option("--trusted-key", help=TRUSTED_KEY_HELP)] = None,
) -> None:
    """Score a model or a compiled bundle on the held-out prompts: domain FID and alignment.

    MODEL is zoo:<name>, a diffusers pipeline directory, or a bundle directory (run through
    the torch-free runtime with the bundle's own steps and guidance).
    """
    require_trusted_keys(trusted_key)
    from fewstep.evaluation import evaluate
    from fewstep.runtime.bundle import BundleError
    from fewstep.sampling import GenerationConfig

    interval = None
    if guidance_interval:
        try:
            lo, hi = (float(v) for v in guidance_interval.split(","))
        except ValueError:
            fail(f"--guidance-interval: expected LO,HI (two numbers in [0, 1]), got {guidance_interval!r}")
        interval = (lo, hi)
    if steps is None:
        steps = _student_steps(model) or 28
    name = model.replace("zoo:", "").replace("/", "_").strip("_.") or "model"
    grid = grid or Path("runs") / "eval" / f"{name}-{steps}steps.png"
    cfg = GenerationConfig(
        steps, num_images, seed, guidance, batch, drop_t5, progress=not as_json, guidance_interval=interval
    )
    standard = _standard_metrics(metrics) if metrics is not None else None
    try:
        result = evaluate(model, cfg, grid=grid, metrics=standard)
    except (FileNotFoundError, KeyError, BundleError, ValueError) as e:
        fail(str(e).strip("'\""))
    if as_json:
        print_json(result)
        return
    out.print(f"{model} @ {result['steps']} steps, {result['images']} images, guidance {result['guidance']}")
    align = "n/a (no clip network)" if result["alignment"] != result["alignment"] else f"{result['alignment']:.3f}"
    out.print(f"  fid {result['fid']:.3f} (real-vs-real {result['fid_real']:.3f})  alignment {align}")
    if "clip_score" in result:
        out.print(f"  CLIP score {result['clip_score']:.2f}")
    if "concept_recall" in result:
        real = result.get("alignment_real")
        ceiling = f" (real held-out images: alignment {real:.3f})" if real is not None else ""
        out.print(f"  caption concepts found {result['concept_recall']:.3f}{ceiling}")
    if result.get("per_category"):
        out.print("  per category: " + ", ".join(f"{k} {v:.3f}" for k, v in result["per_category"].items()))
    if result.get("per_kind"):
        out.print("  per prompt kind: " + ", ".join(f"{k} {v:.3f}" for k, v in result["per_kind"].items()))
    out.print(f"  grid: {result['grid']}")


def _standard_metrics(path: Path):
    """The `--metrics` file as typed standard metrics (errors name the field)."""
    from pydantic import ValidationError

    from fewstep.families import StandardMetrics
    from fewstep.yamlio import YamlInputError, load_mapping

    try:
        return StandardMetrics(**load_mapping(path, "metrics config"))
    except (FileNotFoundError, YamlInputError) as e:
        fail(str(e))
    except ValidationError as e:
        fail(
            f"invalid metrics config {path}\n"
            + "\n".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        )


@app.command("distill")
def distill_cmd(
    model: Annotated[str, typer.Argument(help="teacher: zoo:<name> or a diffusers pipeline directory")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="student directory to write")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML/JSON FlashConfig fields")] = None,
    steps: Annotated[int | None, typer.Option(help="student steps (1, 2, 4 or 8)")] = None,
    t5_free: Annotated[bool | None, typer.Option("--t5-free/--with-t5", help="zero-fill the student's T5")] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing output that fewstep did not write")
    ] = False,
    plan: Annotated[
        bool, typer.Option("--plan", help="print the peak memory per device for this run and exit (nothing trains)")
    ] = False,
    resolution: Annotated[int | None, typer.Option(min=64, help="--plan: image size (default: the model's)")] = None,
    devices: Annotated[int, typer.Option(min=1, help="--plan: devices (processes)")] = 1,
    strategy: Annotated[str, typer.Option(help="--plan: ddp or fsdp")] = "ddp",
    text_tokens: Annotated[int, typer.Option("--text-tokens", min=1, help="--plan: 77 CLIP + T5 tokens")] = 333,
    device_memory: Annotated[
        float | None, typer.Option("--device-memory", min=0.1, help="--plan: GiB per device (default: CUDA's)")
    ] = None,
) -> None:
    """Distil a teacher into a K-step student (SD3.5-Flash). Works under `accelerate launch`."""
    from pydantic import ValidationError

    from fewstep.distill.config import FlashConfig
    from fewstep.distill.run import distill
    from fewstep.yamlio import YamlInputError, load_mapping

    fields: dict[str, Any] = {}
    if config is not None:
        try:
            fields = load_mapping(config, "distill config")
        except (FileNotFoundError, YamlInputError) as e:
            fail(str(e))
    fields.update({k: v for k, v in {"steps": steps, "t5_free": t5_free}.items() if v is not None})
    try:
        cfg = FlashConfig(**fields)
    except ValidationError as e:
        fail(
            "invalid distill config\n"
            + "\n".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']} (got {x['input']!r})" for x in e.errors())
        )
    if plan:
        _print_plan(model, cfg, resolution, devices, strategy, text_tokens, device_memory)
        return
    if output is None:
        fail("distill needs -o/--output STUDENT (or --plan to only estimate memory)")
    try:
        path = distill(model, cfg, output, progress=progress, overwrite=overwrite)
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as e:
        fail(str(e).strip("'\""))
    out.print(f"student: {path}")


def _print_plan(model: str, cfg, resolution, devices: int, strategy: str, text_tokens: int, memory) -> None:
    """`distill --plan`: the memory estimate per device; exit 1 naming the switches when it does not fit."""
    import json

    from fewstep.distill.plan import GIB, PlanError, check_fits, plan_inputs, plan_memory
    from fewstep.sd3_pipeline import resolve_model

    if strategy not in ("ddp", "fsdp"):
        fail(f"--strategy: {strategy!r}; allowed: ddp, fsdp")
    try:
        config = json.loads((resolve_model(model) / "transformer" / "config.json").read_text())
    except (FileNotFoundError, KeyError, ValueError) as e:
        fail(f"{model}: no readable transformer/config.json ({e})")
    res = resolution or int(config.get("sample_size", 128)) * 8
    hw, dm = cfg.hardware, cfg.distribution_matching
    inputs = plan_inputs(
        config,
        res,
        text_tokens,
        max(dm.batch, cfg.trajectory_guidance.batch),
        devices=devices,
        strategy=strategy,
        mixed_precision=hw.mixed_precision or "no",
        teacher_dtype=hw.teacher_dtype,
        activation_checkpointing=hw.activation_checkpointing,
        gan=dm.enabled and dm.gan.enabled,
        ema=cfg.split_timestep.enabled,
    )
    result = plan_memory(inputs)
    out.print(f"plan: {inputs.params / 1e6:.0f} M parameters, {res} px ({inputs.image_tokens} image + "
              f"{inputs.text_tokens} text tokens), "
              f"batch {inputs.batch} per device, {devices} device(s), {strategy}")  # fmt: skip
    for part, gib in result.rows():
        out.print(f"  {part:<15} {gib:8.2f} GiB")
    if memory is None:
        import torch

        if not torch.cuda.is_available():
            return
        memory = torch.cuda.get_device_properties(0).total_memory / GIB
    try:
        check_fits(result, int(memory * GIB))
    except PlanError as e:
        fail(str(e), code=1)
    out.print(f"  fits in {memory:.1f} GiB")
