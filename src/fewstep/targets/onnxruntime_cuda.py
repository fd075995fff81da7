"""ONNX Runtime with the CUDA execution provider (needs onnxruntime-gpu and an NVIDIA GPU)."""

from __future__ import annotations

from typing import ClassVar

from fewstep.targets.onnxruntime_cpu import OnnxRuntimeCPU


class OnnxRuntimeCUDA(OnnxRuntimeCPU):
    name: ClassVar[str] = "onnxruntime-cuda"
    description: ClassVar[str] = "ONNX Runtime, CUDA execution provider (NVIDIA GPU)"
    extra: ClassVar[str] = "onnxruntime-gpu"
    device: ClassVar[str] = "cuda"
    cpu_isa_aware: ClassVar[bool] = False  # int8 runs on the GPU
    providers: ClassVar[tuple[str, ...]] = ("CUDAExecutionProvider",)

    def unavailable_reason(self) -> str | None:
        if reason := super().unavailable_reason():
            return reason
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return "onnxruntime has no CUDAExecutionProvider: pip install 'fewstep[onnxruntime-gpu]' on a CUDA machine"
        return None
