"""torch on an NVIDIA GPU: the student's own modules in bfloat16 (or float16 / float32),
`torch.compile`d, behind the same bundle manifest, gates and `fewstep generate` as every target.
It is the GPU baseline a TensorRT engine has to beat, and the GPU path that can be verified
where TensorRT cannot be installed.

A bundle component is the library's own model folder (`save_pretrained`, safetensors) plus
`wrapper.json`, rebuilt by `fewstep.component_modules.rebuild`: nothing is unpickled.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fewstep.targets.base import ComponentIO, Session, Target

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


class TorchSession:
    """numpy in, numpy out around a torch module on the target's device."""

    def __init__(self, module: Any, io: ComponentIO, device: str, dtype: Any):
        self.module, self.io, self.device, self.dtype = module, io, device, dtype

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        args = []
        for spec in self.io.inputs:
            t = torch.from_numpy(np.ascontiguousarray(feeds[spec.name])).to(self.device)
            args.append(t.to(self.dtype) if t.is_floating_point() else t)
        with torch.inference_mode():
            out = self.module(*args)
        out = out if isinstance(out, tuple) else (out,)
        return {name: o.float().cpu().numpy() for name, o in zip(self.io.outputs, out)}


class TorchCUDA(Target):
    name: ClassVar[str] = "torch-cuda"
    description: ClassVar[str] = "torch on an NVIDIA GPU: bf16/fp16 modules, torch.compile (the TensorRT baseline)"
    extra: ClassVar[str] = "build"
    requires: ClassVar[tuple[str, ...]] = ("torch", "diffusers", "transformers", "safetensors")
    precisions: ClassVar[tuple[str, ...]] = ("bf16", "fp16", "fp32")
    export_format: ClassVar[str] = "torch"
    device: ClassVar[str] = "cuda"
    compile_modules: ClassVar[bool] = True  # torch.compile on load

    def unavailable_reason(self) -> str | None:
        if reason := super().unavailable_reason():
            return reason
        import torch

        if self.device == "cuda" and not torch.cuda.is_available():
            return "needs an NVIDIA GPU: torch.cuda.is_available() is False here"
        return None

    def build(self, model: Path, io: ComponentIO, precision: str, out_dir: Path) -> list[str]:
        """Copy the exported model folder and record the precision it runs at."""
        self.require()
        self.check_precision(precision)
        dst = Path(out_dir) / io.name
        shutil.copytree(model, dst)
        record = json.loads((dst / "wrapper.json").read_text())
        (dst / "wrapper.json").write_text(json.dumps({**record, "precision": precision}, indent=2))
        return sorted(p.relative_to(out_dir).as_posix() for p in dst.rglob("*") if p.is_file())

    def load(self, folder: Path, files: list[str], io: ComponentIO, threads: int | None = None) -> Session:
        self.require(runtime=True)
        reason = self.unavailable_reason()
        if reason:
            raise RuntimeError(f"target {self.name!r}: {reason}")
        import torch

        from fewstep.component_modules import rebuild

        root = Path(folder) / files[0].split("/")[0]
        record = json.loads((root / "wrapper.json").read_text())
        dtype = getattr(torch, DTYPES[record.get("precision", "fp32")])
        if threads:
            torch.set_num_threads(threads)
        module = rebuild(record, root / "model", dtype).to(self.device)
        if self.compile_modules and self.device == "cuda":
            module = torch.compile(module)
        return TorchSession(module, io, self.device, dtype)
