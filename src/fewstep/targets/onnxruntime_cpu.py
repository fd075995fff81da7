"""ONNX Runtime on the CPU: runs the exported ONNX graph with full graph optimisation."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from fewstep.targets.base import ComponentIO, Session, Target


class OrtSession:
    def __init__(self, session):
        self.session = session
        self.outputs = [o.name for o in session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.session.run(self.outputs, feeds)))


class OnnxRuntimeCPU(Target):
    name: ClassVar[str] = "onnxruntime-cpu"
    description: ClassVar[str] = "ONNX Runtime, CPU execution provider"
    extra: ClassVar[str] = "onnxruntime"
    requires: ClassVar[tuple[str, ...]] = ("onnxruntime", "onnx")
    runtime_requires: ClassVar[tuple[str, ...] | None] = ("onnxruntime",)
    runtime_extra: ClassVar[str | None] = "runtime-onnxruntime"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16-weights", "int8", "int8-weights", "int4-weights", "mixed")
    cpu_isa_aware: ClassVar[bool] = True
    quant_backend: ClassVar[str | None] = "onnxruntime"
    providers: ClassVar[tuple[str, ...]] = ("CPUExecutionProvider",)

    def build(self, model: Path, io: ComponentIO, precision: str, out_dir: Path) -> list[str]:
        self.require()
        self.check_precision(precision)

        from fewstep.onnx_io import copy_onnx

        dst = Path(out_dir) / f"{io.name}.onnx"
        # fp16 storage while copying, one tensor at a time for exports over 2 GB
        return copy_onnx(model, dst, fp16=precision == "fp16-weights")

    def session_options(self, threads: int | None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        return opts

    def load(self, folder: Path, files: list[str], io: ComponentIO, threads: int | None = None) -> Session:
        self.require(runtime=True)
        import onnxruntime as ort

        path = Path(folder) / files[0]
        providers = [p for p in self.providers if p in ort.get_available_providers()]
        if not providers:
            raise RuntimeError(f"target {self.name!r}: none of {self.providers} is available in this onnxruntime")
        return OrtSession(ort.InferenceSession(str(path), self.session_options(threads), providers=providers))
