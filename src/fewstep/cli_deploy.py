"""CLI commands of the deployment side: targets, compile, gate, generate.

`generate` runs on the bundle runtime alone: nothing here may import torch at module level.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def _fail(message: str, code: int = 2):
    err.print(f"[bold red]error:[/] {escape(str(message))}", highlight=False, markup=True)
    raise typer.Exit(code)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def targets(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    check: Annotated[bool, typer.Option("--check", help="also probe devices (imports the SDKs)")] = False,
) -> None:
    """List deployment targets (built-in and plugins) without importing their SDKs."""
    from fewstep.targets.registry import discover

    rows = [e.to_json(check=check) for e in discover().values()]
    if as_json:
        _print_json(rows)
        return
    table = Table("target", "precisions", "extra", "device", "status")
    for r in rows:
        table.add_row(
            r["name"],
            ", ".join(r.get("precisions", [])),
            r.get("extra", ""),
            r.get("device", ""),
            r["status"] if r["status"] != "broken" else f"broken: {r['error']}",
        )
    out.print(table)


def doctor_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """This CPU's ISA, installed runtimes, and per CPU target which precisions are exact and fast here."""
    from fewstep.doctor import doctor

    report = doctor()
    if as_json:
        _print_json(report)
        return
    cpu = report["cpu"]
    out.print(f"CPU: {cpu['model']}", highlight=False)
    out.print(f"ISA: {cpu['isa']} (flags: {' '.join(cpu['flags'])})", highlight=False)
    if cpu["onednn_cap"]:
        out.print(f"oneDNN capped at {cpu['onednn_cap']} (ONEDNN_MAX_CPU_ISA)", highlight=False)
    vnni = "yes: full-range int8 is exact" if cpu["int8_vnni"] else "no: full-range int8 saturates; use cpu: portable"
    out.print(f"int8 VNNI: {vnni}", highlight=False)
    out.print("runtimes: " + ", ".join(f"{k} {v}" for k, v in report["runtimes"].items() if v), highlight=False)
    for name, t in report["targets"].items():
        note = f" ({t['note']})" if "note" in t else ""
        out.print(f"{name}: {t['status']}{note}", highlight=False, markup=False)
        if "exact" not in t:
            continue
        native = "exact" if not t["int8_saturates"] else "SATURATES (no VNNI): build with cpu: portable"
        speed = f"{t['int8_matmul_speedup']}x" if t["int8_matmul_speedup"] else "not measured"
        out.print(
            f"  fp32, fp16-weights, int8-weights, int4-weights: exact; int8 portable: exact; int8 native: {native}",
            highlight=False,
            markup=False,
        )
        out.print(f"  static int8 MatMul (256x1024x1024) here: {speed} the fp32 speed", highlight=False, markup=False)
        ok = [
            f"{isa} ({how.split('(', 1)[1].rstrip(')')})"
            for isa, how in t["gate_isa"].items()
            if not how.startswith("unavailable")
        ]
        out.print(f"  gates can run as: {', '.join(ok) or 'this CPU only'}", highlight=False, markup=False)


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
        _fail(str(e))
    fields.update(target=target, precision=precision)
    try:
        cfg = CompileConfig(**fields)
    except ValidationError as e:
        _fail("; ".join(f"{'.'.join(map(str, x['loc'])) or 'config'}: {x['msg']}" for x in e.errors()))
    try:
        path, report = compile_bundle(model, cfg, output, overwrite=overwrite)
    except GateFailure as e:
        _fail(str(e), code=1)
    except (FileNotFoundError, FileExistsError, KeyError, ImportError) as e:
        _fail(str(e).strip("'\""))
    if as_json:
        _print_json({"bundle": str(path), **report.to_json()})
        return
    out.print(f"bundle: {path}  gates {'passed' if report.passed else 'FAILED'} ({len(report.results)} checks)")
    if report.passed:
        out.print(f'try: fewstep generate {path} "a red circle left of a blue square" -o image.png')


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
) -> None:
    """Re-check a bundle's gates against its torch model; exit 1 naming each failed gate."""
    from pydantic import ValidationError

    from fewstep.cpu.restriction import IsaUnavailable
    from fewstep.gates.config import GateConfig
    from fewstep.gates.isa import gate_isas
    from fewstep.pipelines import load_pipeline, resolve_model
    from fewstep.runtime.bundle import BundleError, read_manifest
    from fewstep.yamlio import YamlInputError, load_mapping

    try:
        manifest = read_manifest(bundle, check=False)  # the gates open (and hash-check) the bundle
    except (BundleError, FileNotFoundError, ValueError) as e:
        _fail(str(e))
    gates_cfg = GateConfig(**manifest.config.get("gates", {}))
    try:
        if config:
            gates_cfg = GateConfig(**load_mapping(config, "gate config"))
    except (FileNotFoundError, YamlInputError) as e:
        _fail(str(e))
    except ValidationError as e:
        _fail("; ".join(f"{config}: {'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()))
    try:
        if isa:
            gates_cfg = GateConfig(
                **{**gates_cfg.model_dump(), "isa": [x.strip() for x in isa.split(",") if x.strip()]}
            )
    except ValidationError as e:
        _fail("; ".join(f"--isa: {x['msg'].removeprefix('Value error, ')}" for x in e.errors()))
    gates_cfg = gates_cfg.model_copy(update={"enabled": True})  # a build-only bundle is gated here
    try:
        model_dir = resolve_model(model or manifest.source.path)
    except FileNotFoundError as e:
        _fail(f"torch reference not found ({e}); pass --reference DIR")
    if model is None:  # the bundle names its own reference: only trust it if it is what built the bundle
        from fewstep.fsutil import tree_digest

        if tree_digest(model_dir) != manifest.source.digest:
            _fail(
                f"the bundle's recorded torch reference {model_dir} does not match the digest recorded at build time; "
                "pass --reference DIR to gate against a model you trust"
            )
    sampling = manifest.pipeline.sampling
    try:
        report = gate_isas(bundle, gates_cfg.isa, load_pipeline(model_dir), model_dir, sampling, gates_cfg)
    except (IsaUnavailable, BundleError) as e:
        _fail(str(e))
    if junit:
        junit.write_text(junit_xml(str(bundle), report))
    if as_json:
        _print_json(report.to_json())
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
        raise typer.Exit(1)


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
) -> None:
    """Generate images from a bundle with the target's runtime only (no torch)."""
    from fewstep.runtime.bundle import Bundle, BundleError, save_png

    try:
        b = Bundle.open(bundle, threads=threads, allow_isa_mismatch=allow_isa_mismatch)
        gates = b.manifest.gates
        if gates is not None and not gates.get("passed", True):
            failed = [r["gate"] for r in gates.get("results", []) if not r.get("passed", True)]
            err.print(
                f"warning: this bundle failed its gates at build time ({', '.join(failed[:3]) or 'see manifest'}); "
                "its images may be wrong",
                highlight=False,
                markup=False,
            )
        images = b.generate([prompt], seed=seed, num_images=num_images)
    except (BundleError, FileNotFoundError, ValueError, ImportError) as e:
        _fail(str(e))
    for path in save_png(images, output):
        out.print(str(path))


def conformance(
    target: Annotated[str, typer.Argument(help="target name (see `fewstep targets`)")],
    precision: Annotated[list[str] | None, typer.Option("--precision", "-p", help="repeatable; default: all")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run the target conformance suite on a tiny model; exit 1 if any check fails."""
    from fewstep.testing import run_conformance

    try:
        results = run_conformance(target, precision or None)
    except (ValueError, ImportError, RuntimeError) as e:
        _fail(str(e))
    if as_json:
        _print_json([r.__dict__ for r in results])
    else:
        table = Table("precision", "check", "result", "detail")
        for r in results:
            table.add_row(r.precision, r.check, "ok" if r.passed else "FAILED", r.detail[:120])
        out.print(table)
    if not all(r.passed for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("conformance")(conformance)
    app.command("targets")(targets)
    app.command("doctor")(doctor_cmd)
    app.command("compile")(compile_cmd)
    app.command("gate")(gate)
    app.command("generate")(generate)
