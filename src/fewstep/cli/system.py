"""What this machine has: `version`, `targets`, `doctor`, `conformance`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from fewstep import __version__
from fewstep.cli.app import app, fail, out, print_json


@app.command()
def version() -> None:
    """Print the fewstep version."""
    out.print(__version__)


@app.command("targets")
def targets(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    check: Annotated[bool, typer.Option("--check", help="also probe devices (imports the SDKs)")] = False,
) -> None:
    """List deployment targets (built-in and plugins) without importing their SDKs."""
    from fewstep.targets.registry import discover

    rows = [e.to_json(check=check) for e in discover().values()]
    if as_json:
        print_json(rows)
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


@app.command("doctor")
def doctor_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """This CPU's ISA, installed runtimes, and per CPU target which precisions are exact and fast here."""
    from fewstep.doctor import doctor

    report = doctor()
    if as_json:
        print_json(report)
        return
    cpu = report["cpu"]
    out.print(f"CPU: {cpu['model']}", highlight=False)
    out.print(f"ISA: {cpu['isa']} (flags: {' '.join(cpu['flags'])})", highlight=False)
    if cpu["onednn_cap"]:
        out.print(f"oneDNN capped at {cpu['onednn_cap']} (ONEDNN_MAX_CPU_ISA)", highlight=False)
    vnni = "yes: full-range int8 is exact" if cpu["int8_vnni"] else "no: full-range int8 saturates; use cpu: portable"
    out.print(f"int8 VNNI: {vnni}", highlight=False)
    why = "AMX: fused bf16 float attention" if cpu["int8_attention_bf16"] == "float" else "no AMX: int8 attention"
    out.print(f"attention: auto, bf16, cpu: native -> {cpu['int8_attention_bf16']} ({why})", highlight=False)
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


@app.command("conformance")
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
        fail(str(e))
    if as_json:
        print_json([r.__dict__ for r in results])
    else:
        table = Table("precision", "check", "result", "detail")
        for r in results:
            table.add_row(r.precision, r.check, "ok" if r.passed else "FAILED", r.detail[:120])
        out.print(table)
    if not all(r.passed for r in results):
        raise typer.Exit(1)
