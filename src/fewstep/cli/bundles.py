"""Bundle commands: `compile`, `gate`, `generate`.

`generate` runs on the bundle runtime alone: nothing here may import torch at module level."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Annotated, Any

import typer

from fewstep.cli.app import TRUSTED_KEY_HELP, app, err, example_prompt, fail, out, print_json, require_trusted_keys


@app.command("compile")
def compile_cmd(
    model: Annotated[str, typer.Argument(help="zoo:<name> or a diffusers SD3-family pipeline directory")],
    output: Annotated[Path, typer.Option("-o", "--output", help="bundle directory to write")],
    target: Annotated[str, typer.Option("--target", "-t", help="see `fewstep targets`")] = "openvino-cpu",
    precision: Annotated[str, typer.Option("--precision", "-p")] = "fp32",
    config: Annotated[Path | None, typer.Option("--config", help="YAML with more CompileConfig fields")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing output that fewstep did not write")
    ] = False,
) -> None:
    """Export, build and gate a bundle for one target (the recipe's `compile` stage)."""
    from pydantic import ValidationError

    from fewstep.compile.api import GateFailure, compile_bundle
    from fewstep.compile.config import CompileConfig
    from fewstep.yamlio import YamlInputError, load_mapping

    try:
        fields: dict[str, Any] = load_mapping(config, "compile config") if config else {}
    except (FileNotFoundError, YamlInputError) as e:
        fail(str(e))
    fields.update(target=target, precision=precision)
    try:
        cfg = CompileConfig(**fields)
    except ValidationError as e:
        fail("; ".join(f"{'.'.join(map(str, x['loc'])) or 'config'}: {x['msg']}" for x in e.errors()))
    try:
        path, report = compile_bundle(model, cfg, output, overwrite=overwrite)
    except GateFailure as e:
        fail(str(e), code=1)
    except (FileNotFoundError, FileExistsError, KeyError, ImportError) as e:
        fail(str(e).strip("'\""))
    if as_json:
        print_json({"bundle": str(path), **report.to_json()})
        return
    out.print(f"bundle: {path}  gates {'passed' if report.passed else 'FAILED'} ({len(report.results)} checks)")
    if report.passed:
        out.print(f"try: fewstep generate {path} {example_prompt(path)} -o image.png")


def _kind(gate: str) -> str:
    """tensor, image, distribution or cpu, also for ISA-prefixed names (`avx2:tensor/...`)."""
    return gate.split(":", 1)[-1].split("/", 1)[0]


def junit_xml(bundle: str, report) -> str:
    suite = ET.Element(
        "testsuite",
        name=f"fewstep-gates:{bundle}",
        tests=str(len(report.results)),
        failures=str(len(report.failures())),
    )
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=r.gate.split("/")[0], name=r.gate)
        if not r.passed:
            ET.SubElement(case, "failure", message=r.describe())
        ET.SubElement(case, "system-out").text = r.describe()
    return ET.tostring(suite, encoding="unicode")


@app.command("gate")
def gate(
    bundle: Annotated[Path, typer.Argument(help="bundle directory")],
    model: Annotated[
        str | None,
        typer.Option(
            "--reference",
            "--model",
            help="torch reference to gate against, explicitly (default: the bundle's source, accepted only if its "
            "digest matches the one recorded at build time)",
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML GateConfig overriding the bundle's")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="write a JUnit XML report here")] = None,
    isa: Annotated[
        str | None,
        typer.Option(
            "--isa",
            help="comma-separated CPUs to gate on, e.g. avx2,avx512_core_vnni,native: the runtime restricted to "
            "each (default: the bundle's gates.isa, else native)",
        ),
    ] = None,
    trusted_key: Annotated[list[Path] | None, typer.Option("--trusted-key", help=TRUSTED_KEY_HELP)] = None,
) -> None:
    """Re-check a bundle's gates against its torch model; exit 1 naming each failed gate."""
    require_trusted_keys(trusted_key)
    from pydantic import ValidationError

    from fewstep.cpu.restriction import IsaUnavailable
    from fewstep.gates.config import GateConfig
    from fewstep.gates.isa import gate_isas
    from fewstep.runtime.bundle import BundleError, read_manifest
    from fewstep.sd3_pipeline import load_pipeline, resolve_model
    from fewstep.yamlio import YamlInputError, load_mapping

    try:
        manifest = read_manifest(bundle, check=False)  # the gates open (and hash-check) the bundle
    except (BundleError, FileNotFoundError, ValueError) as e:
        fail(str(e))
    gates_cfg = GateConfig(**manifest.config.get("gates", {}))
    try:
        if config:
            gates_cfg = GateConfig(**load_mapping(config, "gate config"))
    except (FileNotFoundError, YamlInputError) as e:
        fail(str(e))
    except ValidationError as e:
        fail("; ".join(f"{config}: {'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()))
    try:
        if isa:
            gates_cfg = GateConfig(
                **{**gates_cfg.model_dump(), "isa": [x.strip() for x in isa.split(",") if x.strip()]}
            )
    except ValidationError as e:
        fail("; ".join(f"--isa: {x['msg'].removeprefix('Value error, ')}" for x in e.errors()))
    gates_cfg = gates_cfg.model_copy(update={"enabled": True})  # a build-only bundle is gated here
    try:
        model_dir = resolve_model(model or manifest.source.path)
    except FileNotFoundError as e:
        fail(f"torch reference not found ({e}); pass --reference DIR")
    if model is None:  # the bundle names its own reference: only trust it if it is what built the bundle
        from fewstep.fsutil import tree_digest

        if tree_digest(model_dir) != manifest.source.digest:
            fail(
                f"the bundle's recorded torch reference {model_dir} does not match the digest recorded at build time; "
                "pass --reference DIR to gate against a model you trust"
            )
    sampling = manifest.pipeline.sampling
    try:
        report = gate_isas(bundle, gates_cfg.isa, load_pipeline(model_dir), model_dir, sampling, gates_cfg)
    except (IsaUnavailable, BundleError) as e:
        fail(str(e))
    if junit:
        junit.write_text(junit_xml(str(bundle), report))
    if as_json:
        print_json(report.to_json())
    else:
        for r in report.results:
            if not r.passed or _kind(r.gate) != "tensor":
                out.print(r.describe(), highlight=False)
        for name, isa_report in report.extra.get("isa", {}).items():
            how = isa_report["restriction"]
            out.print(f"{name} ({how['how']}): gates {'passed' if isa_report['passed'] else 'FAILED'}", highlight=False)
        n_tensor = sum(_kind(r.gate) == "tensor" and r.passed for r in report.results)
        out.print(f"{n_tensor} tensor checks passed; gates {'passed' if report.passed else 'FAILED'}")
    if not report.passed:
        for r in report.failures():
            err.print(f"gate failed: {r.describe()}", highlight=False)
        for line in report.advice():
            err.print(line, highlight=False)
        raise typer.Exit(1)


@app.command("generate")
def generate(
    bundle: Annotated[Path, typer.Argument(help="bundle directory")],
    prompt: Annotated[str, typer.Argument(help="text prompt")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG path (several images get -0, -1, ...)")] = Path(
        "image.png"
    ),
    seed: Annotated[int, typer.Option(min=0)] = 0,
    num_images: Annotated[int, typer.Option("--num-images", "-n", min=1)] = 1,
    threads: Annotated[int | None, typer.Option(min=1, help="runtime threads")] = None,
    allow_isa_mismatch: Annotated[
        bool,
        typer.Option(
            "--allow-isa-mismatch", help="run a bundle whose int8 needs a CPU feature this CPU lacks (with a warning)"
        ),
    ] = False,
    allow_failed_gates: Annotated[
        bool,
        typer.Option("--allow-failed-gates", help="run a bundle whose gates failed at build time (with a warning)"),
    ] = False,
    trusted_key: Annotated[list[Path] | None, typer.Option("--trusted-key", help=TRUSTED_KEY_HELP)] = None,
) -> None:
    """Generate images from a bundle with the target's runtime only (no torch)."""
    from fewstep.runtime.bundle import Bundle, BundleError, save_png

    require_trusted_keys(trusted_key)
    if output.is_dir():
        fail(f"-o {output} is a directory; give a file name such as {output / 'image.png'}")
    try:
        b = Bundle.open(bundle, threads=threads, allow_isa_mismatch=allow_isa_mismatch)
        gates = b.manifest.gates
        if gates is not None and not gates.get("passed", True):
            failed = [r["gate"] for r in gates.get("results", []) if not r.get("passed", True)]
            what = f"this bundle failed its gates at build time ({', '.join(failed[:3]) or 'see its manifest'})"
            if not allow_failed_gates:
                fail(f"{what}; its images may be wrong. Pass --allow-failed-gates to run it anyway", code=1)
            err.print(f"warning: {what}; its images may be wrong", highlight=False, markup=False)
        images = b.generate([prompt], seed=seed, num_images=num_images)
    except (BundleError, FileNotFoundError, ValueError, ImportError) as e:
        fail(str(e))
    for path in save_png(images, output):
        out.print(str(path))
