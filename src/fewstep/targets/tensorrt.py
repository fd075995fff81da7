"""TensorRT on NVIDIA GPUs: ModelOpt Q/DQ (or float) ONNX built into engines.

Quantization happens in torch before export (ModelOpt fake-quant, calibrated on the
student's trajectories); `build` parses the ONNX into a network (strongly typed for Q/DQ
graphs, FP16/BF16 flags otherwise), adds an optimisation profile per input and keeps a timing
cache beside the engine. The session runs the engine with the TensorRT API on CUDA buffers
(allocated through torch, which every TensorRT install here comes with).

TensorRT wheels come from NVIDIA's package index (`pip install tensorrt` there); install
`nvidia-modelopt` without its [onnx]/[hf] extras, which downgrade onnx and transformers.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from fewstep.targets.base import ComponentIO, Session, Target
from fewstep.targets.tensorrt_plan import engine_plan


class TensorRTSession:  # pragma: no cover - needs an NVIDIA GPU with TensorRT
    def __init__(self, engine_bytes: bytes):
        import tensorrt as trt
        import torch

        self.trt, self.torch = trt, torch
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(engine_bytes)
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == mode]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) != mode]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch, trt = self.torch, self.trt
        keep = []
        for name in self.inputs:
            t = torch.from_numpy(np.ascontiguousarray(feeds[name])).cuda()
            keep.append(t)
            self.context.set_input_shape(name, tuple(t.shape))
            self.context.set_tensor_address(name, t.data_ptr())
        outs = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = torch.from_numpy(np.empty(0, trt.nptype(self.engine.get_tensor_dtype(name)))).dtype
            outs[name] = torch.empty(shape, dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, outs[name].data_ptr())
        self.context.execute_async_v3(self.stream.cuda_stream)
        self.stream.synchronize()
        return {k: v.float().cpu().numpy() for k, v in outs.items()}


class TensorRT(Target):
    name: ClassVar[str] = "tensorrt"
    description: ClassVar[str] = "TensorRT engines (NVIDIA GPU); ModelOpt INT8 / INT8-SmoothQuant / FP8 / INT4-AWQ"
    extra: ClassVar[str] = "tensorrt"
    requires: ClassVar[tuple[str, ...]] = ("tensorrt", "modelopt")
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16", "int8", "int8-sq", "fp8", "int4-awq")
    export_format: ClassVar[str] = "onnx-qdq"
    device: ClassVar[str] = "cuda"
    quantizes_before_export: ClassVar[bool] = True
    quant_backend: ClassVar[str | None] = "modelopt"  # fake-quant of the torch module, exported as Q/DQ
    batch_profile: tuple[int, int, int] = (1, 1, 4)

    def unavailable_reason(self) -> str | None:
        if reason := super().unavailable_reason():
            return reason + " (TensorRT wheels come from NVIDIA's index: pypi.nvidia.com)"
        import torch

        return None if torch.cuda.is_available() else "no CUDA device"

    def build(self, model: Path, io: ComponentIO, precision: str, out_dir: Path) -> list[str]:  # pragma: no cover
        self.require()
        self.check_precision(precision)
        import tensorrt as trt

        plan = engine_plan(io, precision, self.batch_profile)
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if plan.strongly_typed else 0
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(model)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse {model}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mb << 20)
        for flag in plan.flags:
            config.set_flag(getattr(trt.BuilderFlag, flag))
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in plan.profiles.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
        cache_file = Path(out_dir).parent / "timing.cache"
        cache = config.create_timing_cache(cache_file.read_bytes() if cache_file.exists() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
        engine = builder.build_serialized_network(network, config)
        if engine is None:
            raise RuntimeError(f"TensorRT failed to build an engine for {io.name}")
        cache_file.write_bytes(memoryview(config.get_timing_cache().serialize()))
        dst = Path(out_dir) / f"{io.name}.engine"
        dst.write_bytes(memoryview(engine))
        return [dst.name]

    def load(self, folder: Path, files: list[str], io: ComponentIO, threads: int | None = None) -> Session:
        self.require()  # pragma: no cover
        return TensorRTSession((Path(folder) / files[0]).read_bytes())  # pragma: no cover
