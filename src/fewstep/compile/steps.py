"""Cached compile steps. Export and quantize each write a directory under the compile's work
directory, named by the hash of everything the step depends on, and a `step.json` when it is
complete. A later compile whose inputs to a step are unchanged reuses its directory: a changed
gate threshold re-gates without re-exporting or re-quantizing, and a changed scheme re-quantizes
without re-exporting. An interrupted step (no `step.json`) is redone from scratch."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fewstep import __version__
from fewstep.compile.export import export_onnx
from fewstep.targets.base import ComponentIO

RECORD = "step.json"


def step_key(step: str, **inputs: Any) -> str:
    blob = json.dumps({"step": step, "fewstep": __version__, **inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def lookup(work: Path, step: str, key: str) -> tuple[Path, dict[str, Any] | None]:
    """The step's directory and its record if complete; an incomplete one is cleared."""
    folder = Path(work) / step / key
    record = folder / RECORD
    if record.is_file():
        return folder, json.loads(record.read_text())
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder, None


def complete(folder: Path, record: dict[str, Any]) -> None:
    tmp = folder / f".{RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(folder / RECORD)


@dataclass(frozen=True)
class StepResult:
    key: str
    path: Path  # the step's output file
    status: str  # "ran" or "reused"


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


def export_step(
    work: Path,
    comp,
    target,
    *,
    model_digest: str,
    batch: int | None,
    exporter,
    restructure: dict[str, Any],
    torch_scheme: Any | None,
    calibration,
    items: list[dict],
    variant: str | None = None,
) -> tuple[StepResult, ComponentIO]:
    """One component's ONNX (fake-quantized in torch first for targets that quantize before export),
    or its torch model and wrapper record for targets that run torch (`export_format = "torch"`).
    `variant` names a second export of the component at other input shapes (`crop64`)."""
    as_torch = target.export_format == "torch"
    key = step_key(
        "export",
        **({"format": "torch"} if as_torch else {}),
        **({"variant": variant} if variant else {}),
        model=model_digest,
        component=comp.io.name,
        batch=batch,
        exporter=exporter.value,
        restructure=restructure,
        torch_quantization=torch_scheme.model_dump(mode="json") if torch_scheme else None,
        calibration=calibration.record() if torch_scheme and calibration else None,
    )
    folder, record = lookup(work, "export", key)
    status = "reused"
    if record is None:
        if torch_scheme is not None:  # e.g. ModelOpt: fake-quantize in torch, export Q/DQ
            comp = replace(comp, module=quantize_for(target, comp.module, comp.io, torch_scheme, items, work))
        if as_torch:
            from fewstep.compile.export_torch import export_torch

            io = export_torch(comp, folder / comp.io.name)
            record = {"io": io.to_json(), "file": comp.io.name}
        else:
            # each component in its own folder: over 2 GB the exporter writes one file per tensor,
            # named after the tensor, and the CLIP encoders share tensor names
            io = export_onnx(comp, folder / f"{comp.io.name}.onnx", batch, exporter)
            record = {"io": io.to_json(), "file": f"{comp.io.name}.onnx"}
        complete(folder, record)
        status = "ran"
    return StepResult(key, folder / record["file"], status), ComponentIO.from_json(record["io"])


def quantize_step(
    work: Path,
    exported: StepResult,
    io: ComponentIO,
    target,
    scheme: Any,
    *,
    sampling,
    calibration,
    items: list[dict],
    crop=None,
) -> StepResult:
    """The exported component quantized by the target's backend, keyed by export and scheme;
    with a `crop` (compile/spatial.py), calibrated on crops of `items` at the crop size and
    carried to the full size."""
    key = step_key(
        "quantize",
        export=exported.key,
        **({"crop": [crop.size, crop.exported.key]} if crop is not None else {}),
        target=target.name,
        scheme=scheme.model_dump(mode="json"),
        sampling=sampling.to_json(),
        calibration=calibration.record() if calibration else None,
    )
    folder, record = lookup(work, "quantize", key)
    if record is not None:
        return StepResult(key, folder / record["file"], "reused")
    if crop is None:
        built = Path(quantize_for(target, exported.path, io, scheme, items, folder))
    else:
        from fewstep.quantize.spatial import crop_items, resizer

        small = folder / "crop"
        small.mkdir()
        cropped = crop_items(items, crop.input, crop.size)
        quantized = Path(quantize_for(target, crop.exported.path, io, scheme, cropped, small))
        built = resizer(target.quant_backend).to_full_size(quantized, exported.path, folder, quantized.stem)
        shutil.rmtree(small)
    complete(folder, {"file": built.relative_to(folder).as_posix()})
    return StepResult(key, built, "ran")
