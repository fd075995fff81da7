"""OpenVINO quantizers through NNCF: PTQ (full or hybrid) and weight compression."""

from __future__ import annotations

from pathlib import Path

from fewstep.quantize.config import Int8Config, Int8Mode, WeightOnlyConfig
from fewstep.quantize.cpu import needs_reduce_range
from fewstep.quantize.registry import register_quantizer


def quiet_nncf() -> None:
    """NNCF logs one INFO line per op it leaves unquantized (300 of the demo's 374 lines): keep
    its warnings and errors only."""
    import logging

    import nncf

    from fewstep.logs import progress_disabled, silence_nncf_bars

    nncf.set_log_level(logging.WARNING)
    if progress_disabled():
        silence_nncf_bars()


def read_model(path: Path):
    import openvino as ov

    path = Path(path)
    return ov.Core().read_model(str(path)) if path.suffix == ".xml" else ov.convert_model(str(path))


def _save(model, out: Path, name: str) -> Path:
    from fewstep.targets.openvino_cpu import save_ir

    return save_ir(model, Path(out) / f"{name}.xml")


def weighted_ops(model) -> list[str]:
    """Names of MatMul / Convolution ops whose weights are constants (possibly behind a Convert)."""
    names = []
    for op in model.get_ops():
        if op.get_type_name() not in ("MatMul", "Convolution"):
            continue
        src = op.input_value(1).get_node()
        while src.get_type_name() in ("Convert", "Multiply", "Subtract", "Reshape") and src.get_input_size():
            src = src.input_value(0).get_node()
        if src.get_type_name() == "Constant":
            names.append(op.get_friendly_name())
    return names


def attention_ops(model) -> list[str]:
    """Names of attention's activation x activation ops: fused ScaledDotProductAttention, and the
    MatMuls (QK^T, PV) of exported attention, whose inputs are both computed (no constant weight)."""
    weighted = set(weighted_ops(model))
    names = []
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind == "ScaledDotProductAttention" or (kind == "MatMul" and op.get_friendly_name() not in weighted):
            names.append(op.get_friendly_name())
    return names


# Peak RSS of NNCF's `full` PTQ per byte of fp32 model: 2.90x for 4 real-width SD3.5-Medium
# blocks, against 1.47x for `weights-first` (benchmarks/ov_ptq_memory.py)
FULL_PTQ_MEMORY = 2.9


def model_bytes(model: Path) -> int:
    model = Path(model)
    if model.suffix == ".xml":
        return model.with_suffix(".bin").stat().st_size
    from fewstep.onnx_io import model_bytes as onnx_bytes

    return onnx_bytes(model)


def check_full_ptq_fits(model: Path, component: str) -> None:
    """Refuse a `full` PTQ that cannot fit in memory before it starts, rather than be killed
    by the kernel minutes into it (possibly with the machine's other work)."""
    from fewstep.runtime.memory import available_memory_bytes

    available = available_memory_bytes()
    size = model_bytes(model)
    need = FULL_PTQ_MEMORY * size
    if available is not None and need > available:
        raise MemoryError(
            f"{component}: int8 `mode: full` needs about {need / 1e9:.1f} GB ({FULL_PTQ_MEMORY}x the "
            f"{size / 1e9:.1f} GB fp32 model) and {available / 1e9:.1f} GB is available; "
            "set the int8 scheme's `mode: weights-first` (static W8A8 in about half the memory) or free memory"
        )


def int8_weights_to_7bit(model) -> int:
    """Halve NNCF's symmetric int8 weight constants (i8 -> Convert -> Multiply by scale) into
    [-64, 63] and double their scales: the 7-bit weights of NNCF's overflow fix, for weights
    compressed before PTQ (weights-first), where `overflow_fix` does not reach them. Returns
    how many constants were changed."""
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops

    changed = 0
    for const in model.get_ordered_ops():
        if const.get_type_name() != "Constant" or const.get_output_element_type(0) != ov.Type.i8:
            continue
        users = [t.get_node() for t in const.output(0).get_target_inputs()]
        if len(users) != 1 or users[0].get_type_name() != "Convert":
            continue
        mults = [t.get_node() for t in users[0].output(0).get_target_inputs()]
        if len(mults) != 1 or mults[0].get_type_name() != "Multiply":
            continue
        scale = mults[0].input_value(1).get_node()
        if scale.get_type_name() != "Constant":
            continue
        q = const.data.astype(np.int16)
        halved = ops.constant(np.clip(np.round(q / 2.0), -64, 63).astype(np.int8))
        doubled = ops.constant((scale.data * 2).astype(scale.data.dtype))
        for t in const.output(0).get_target_inputs():
            t.replace_source_output(halved.output(0))
        mults[0].input(1).replace_source_output(doubled.output(0))
        changed += 1
    return changed


@register_quantizer("openvino", Int8Config)
def int8(model: Path, io, cfg: Int8Config, items: list[dict], out: Path) -> Path:
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    quiet_nncf()

    # 7-bit weights where some target CPU lacks VNNI (compile resolves `cpu:` into reduce_range)
    seven_bit = needs_reduce_range() if cfg.reduce_range is None else cfg.reduce_range
    mode = cfg.mode
    if mode is Int8Mode.auto:
        mode = Int8Mode.hybrid if io.name == "transformer" else Int8Mode.full
    if mode is Int8Mode.full:
        check_full_ptq_fits(model, io.name)
    ov_model = read_model(model)
    overflow = OverflowFix.ENABLE if seven_bit else OverflowFix.DISABLE
    kwargs: dict = dict(
        subset_size=len(items), advanced_parameters=AdvancedQuantizationParameters(overflow_fix=overflow)
    )
    if io.name == "vae_decoder":  # a CNN: mixed preset (asymmetric activations), no transformer patterns
        kwargs["preset"] = nncf.QuantizationPreset.MIXED
    else:
        kwargs["model_type"] = nncf.ModelType.TRANSFORMER
    ignored = []
    if mode is Int8Mode.hybrid:
        # optimum-intel's hybrid scheme: int8 weights for weighted ops, PTQ for the other activations
        ignored += weighted_ops(ov_model)
    if cfg.attention == "float":  # the runtime's fused float attention (bf16 where the bundle asks for it)
        ignored += attention_ops(ov_model)
    if ignored:
        kwargs["ignored_scope"] = nncf.IgnoredScope(names=ignored, validate=False)
    if mode is not Int8Mode.full:
        # hybrid, weights-first: int8 weights first, so the fp32 model is never compiled for statistics
        # (benchmarks/ov_ptq_memory.py: peak RSS and speed of weights-first against `full`)
        ov_model = nncf.compress_weights(ov_model, mode=nncf.CompressWeightsMode.INT8_SYM)
        if seven_bit and mode is Int8Mode.weights_first:
            # static W8A8 on these weights: u8 activations x full-range s8 weights would saturate
            # without VNNI. Hybrid keeps them: its weighted ops see float activations.
            int8_weights_to_7bit(ov_model)
    try:
        ov_model = nncf.quantize(ov_model, nncf.Dataset(items), **kwargs)
    except RuntimeError as err:  # the statistics model keeps every calibrated activation alive at once
        raise statistics_memory_error(err, io.name) from None
    return _save(ov_model, out, f"{io.name}.int8")


def statistics_memory_error(err: RuntimeError, component: str) -> Exception:
    """The CPU plugin's allocation failure while NNCF compiles a component for its activation
    statistics (SD3.5's VAE decoder at 1024 px asks for 30.7 GB) as a MemoryError that says what
    to do; any other error unchanged."""
    import re

    found = re.search(r"Failed to allocate (\d+) bytes", str(err))
    if not found:
        return err
    need = int(found.group(1)) / 1e9
    return MemoryError(
        f"{component}: static int8 calibration needs {need:.1f} GB for the activation statistics at this "
        "resolution (every calibrated activation is held at once); quantize it with a weight-only scheme "
        f"(component_quantization.{component}: {{scheme: int8-weights}}), leave it out of `components`, or "
        "calibrate on a machine with that much memory"
    )


@register_quantizer("openvino", WeightOnlyConfig)
def weights(model: Path, io, cfg: WeightOnlyConfig, items: list[dict], out: Path) -> Path:
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedCompressionParameters

    quiet_nncf()

    modes = {
        (8, True): nncf.CompressWeightsMode.INT8_SYM,
        (8, False): nncf.CompressWeightsMode.INT8_ASYM,
        (4, True): nncf.CompressWeightsMode.INT4_SYM,
        (4, False): nncf.CompressWeightsMode.INT4_ASYM,
    }
    kwargs: dict = {"mode": modes[(cfg.bits, cfg.symmetric)]}
    if cfg.bits == 4:
        # narrow layers (toy models, some encoder projections) cannot take the group size: adjust it
        kwargs.update(
            group_size=cfg.group_size,
            ratio=cfg.ratio,
            advanced_parameters=AdvancedCompressionParameters(
                group_size_fallback_mode=nncf.GroupSizeFallbackMode.ADJUST, min_adjusted_group_size=16
            ),
        )
        if cfg.awq or cfg.scale_estimation or cfg.ratio < 1.0:
            kwargs.update(dataset=nncf.Dataset(items), subset_size=len(items))
            if cfg.ratio < 1.0:  # which layers stay int8 is NNCF's data-aware sensitivity choice
                kwargs["sensitivity_metric"] = nncf.SensitivityMetric.HESSIAN_INPUT_ACTIVATION
        if cfg.awq:
            kwargs["awq"] = True
        if cfg.scale_estimation:
            kwargs["scale_estimation"] = True
    compressed = nncf.compress_weights(read_model(model), **kwargs)
    return _save(compressed, out, f"{io.name}.{cfg.scheme}")
