"""OpenVINO on the CPU: ONNX converted to IR, reshaped to static shapes before compiling."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from fewstep.fsutil import require_free_space
from fewstep.targets.base import ComponentIO, Session, Target
from fewstep.targets.openvino_phases import keep_phases_f32, needs_reread, reread

# For weight-compressed MatMuls (int8/int4 weights) the CPU plugin quantizes activations on
# the fly in groups of DYNAMIC_QUANTIZATION_GROUP_SIZE input channels and runs int8 GEMMs. Its
# default, 32, is slow for per-channel int8 weights (benchmarks/ov_dynamic_quant.py); groups
# larger than an int4 weight group fall back to a slow path. The build writes the group into
# the IR's runtime options, which compile_model applies.
INT8_WEIGHTS_DQ_GROUP = 128


def dynamic_quant_group(ir) -> int | None:
    """The activation group for a weight-compressed model: its int4 weight group, else the
    int8 one; None when no weights are compressed."""
    import openvino as ov

    int4 = (ov.Type.u4, ov.Type.i4)
    int8 = (ov.Type.u8, ov.Type.i8)
    groups, has_int8 = [], False
    for op in ir.get_ordered_ops():
        if op.get_type_name() != "Constant" or not any(
            t.get_node().get_type_name() == "Convert" for t in op.output(0).get_target_inputs()
        ):
            continue
        kind, shape = op.get_element_type(), op.get_output_partial_shape(0)
        if kind in int4 and shape.rank.get_length() == 3:
            groups.append(shape[2].get_length())
        has_int8 |= kind in int8 and shape.rank.get_length() == 2
    if groups:
        return min(groups)
    return INT8_WEIGHTS_DQ_GROUP if has_int8 else None


def bf16_available(core) -> bool:
    """Whether the CPU plugin computes bf16 here: the CPU has it as OpenVINO reads it (under qemu,
    the emulated CPU's), and no oneDNN cap below avx512_core_bf16 is in force (under one, a bf16
    request fails to compile instead of falling back)."""
    from fewstep.cpu.isa import includes, onednn_cap

    cap = onednn_cap()
    if cap is not None and not includes(cap.name, "avx512_core_bf16"):
        return False
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def compiled_precision(core, wanted: str) -> str:
    """The inference precision hint to compile with for a bundle that asks for `wanted`: bf16
    only where the plugin computes it, f32 (the exact arithmetic) otherwise."""
    return "f32" if wanted == "bf16" and not bf16_available(core) else wanted


def ir_bytes(model, compress_to_fp16: bool = False) -> int:
    """Bytes an OpenVINO model's constants take in its .bin (f32 ones halved when saved as fp16)."""
    total = 0
    for op in model.get_ops():
        if op.get_type_name() == "Constant":
            size = op.get_byte_size()
            total += size // 2 if compress_to_fp16 and op.get_element_type().get_type_name() == "f32" else size
    return total


def save_ir(model, xml: Path, compress_to_fp16: bool = False) -> Path:
    """Save an OpenVINO IR (`.xml` + `.bin`) after checking the disk has room for its weights.
    save_model compresses weights to fp16 by default; fewstep opts in only for fp16-weights. A
    model with phases marked f32 (`openvino_phases`) is read back from an f32 IR before fp16
    compression, which then leaves their constants at f32."""
    import openvino as ov

    xml = Path(xml)
    if compress_to_fp16 and needs_reread(model):
        require_free_space(xml.parent, ir_bytes(model), "a scratch f32 IR")
        model = reread(model, xml.parent)
    require_free_space(xml.parent, ir_bytes(model, compress_to_fp16), xml.with_suffix(".bin").name)
    ov.save_model(model, str(xml), compress_to_fp16=compress_to_fp16)
    return xml


class OVSession:
    """A compiled model; outputs by the component's names (`wanted`: an output may carry several
    names, e.g. fewstep's and the OpenVINO ecosystem's on a layout IR)."""

    def __init__(self, compiled, wanted: tuple[str, ...] = ()):
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        ports = list(compiled.outputs)
        named = [next((o for o in ports if w in o.get_names()), None) for w in wanted]
        if wanted and all(o is not None for o in named):
            self.outputs = list(zip(named, wanted))
        else:
            self.outputs = [(o, o.get_any_name()) for o in ports]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.request.infer(feeds)
        return {name: np.array(result[port]) for port, name in self.outputs}


class OpenVINOCPU(Target):
    name: ClassVar[str] = "openvino-cpu"
    description: ClassVar[str] = "OpenVINO runtime, CPU plugin (IR built from ONNX)"
    extra: ClassVar[str] = "openvino"
    requires: ClassVar[tuple[str, ...]] = ("openvino",)
    runtime_requires: ClassVar[tuple[str, ...] | None] = ("openvino",)
    runtime_extra: ClassVar[str | None] = "runtime-openvino"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16-weights", "int8", "int8-weights", "int4-weights", "mixed")
    cpu_isa_aware: ClassVar[bool] = True
    quant_backend: ClassVar[str | None] = "openvino"
    # bf16: OpenVINO's own default on CPUs with AVX512-BF16 or AMX (optimum-intel and GenAI run it);
    # on other CPUs the plugin computes f32 (benchmarks/ov_attention_precision.py: speed and cosine)
    inference_precisions: ClassVar[tuple[str, ...]] = ("f32", "bf16")
    prefers_static: ClassVar[bool] = True

    def isa_restriction(self, isa):
        """oneDNN's cap (native speed), except where qemu can emulate the level: with OpenVINO
        2026.4 under ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 CPU, MatMuls with compressed weights
        fail to compile ("could not create a primitive descriptor for the inner product")."""
        from fewstep.cpu.restriction import emulated, onednn_cap, qemu_binary

        if isa.qemu_cpu is not None and qemu_binary() is not None:
            return emulated(isa, self.name)
        return onednn_cap(isa)

    def build(self, model: Path, io: ComponentIO, precision: str, out_dir: Path) -> list[str]:
        self.require()
        self.check_precision(precision)
        import openvino as ov

        model = Path(model)
        ir = ov.Core().read_model(str(model)) if model.suffix == ".xml" else ov.convert_model(str(model))
        if io.static_sizes:  # reshape before compile: the CPU plugin specialises kernels
            ir.reshape({t.name: ov.PartialShape(list(t.static(io.static_sizes))) for t in io.inputs})
        if (group := dynamic_quant_group(ir)) is not None:
            ir.set_rt_info(str(group), ["runtime_options", "DYNAMIC_QUANTIZATION_GROUP_SIZE"])
        keep_phases_f32(ir)  # timestep embeddings: exact under bf16 compiles and fp16 weights
        xml = save_ir(ir, Path(out_dir) / f"{io.name}.xml", compress_to_fp16=precision == "fp16-weights")
        return [xml.name, xml.with_suffix(".bin").name]

    def load(
        self,
        folder: Path,
        files: list[str],
        io: ComponentIO,
        threads: int | None = None,
        inference_precision: str = "f32",
    ) -> Session:
        self.check_inference_precision(inference_precision)
        self.require(runtime=True)
        import openvino as ov

        core = ov.Core()
        hint = compiled_precision(core, inference_precision)
        config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = core.compile_model(str(Path(folder) / files[0]), "CPU", config)
        return OVSession(compiled, tuple(io.outputs))
