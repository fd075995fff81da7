"""OpenVINO side of crop calibration (`quantize/spatial.py`): the statistics estimate of a
full-size export, and a crop-size quantized model carried to the full size.

A static export bakes its spatial size into integer constants (group norm's `Reshape` to
`[N, 32, H*W*C/32]`, the attention's `[N, C, H, W]`); everything else in the graph (weights,
NNCF's FakeQuantize ranges, the int8 weight constants) is size-agnostic. So the full-size model
is the quantized crop model with every integer constant that feeds an op replaced by the value
the same op (same friendly name: both are exports of one torch module) reads in the full-size
export, and its inputs given the full-size shapes.
"""

from __future__ import annotations

from pathlib import Path

from fewstep.quantize.openvino import _save, read_model

_SHAPE_TYPES = ("i32", "i64", "u32", "u64")


def statistics_bytes(model: Path) -> int | None:
    """What NNCF's statistics model of `model` holds for one input, estimated as every computed
    real-valued output in f32 (a conservative bound: 51.9 GB for SD3.5's VAE decoder at 1024 px,
    where the CPU plugin asked for 30.7 GB). A dynamic axis counts as 1 (a dynamic batch: the
    calibration feeds one row at a time); None where an output's rank is unknown."""
    total = 0
    for op in read_model(model).get_ops():
        if op.get_type_name() in ("Constant", "Parameter", "Result"):
            continue
        for out in op.outputs():
            if not out.get_element_type().is_real():
                continue
            shape = out.get_partial_shape()
            if shape.rank.is_dynamic:
                return None
            n = 1
            for d in shape:
                n *= d.get_length() if d.is_static else 1
            total += 4 * n
    return total


def _integer_inputs(model) -> dict[tuple[str, int], object]:
    """(consumer's friendly name, input port) -> the integer Constant node it reads."""
    out = {}
    for op in model.get_ops():
        for port in range(op.get_input_size()):
            src = op.input_value(port).get_node()
            if src.get_type_name() == "Constant" and src.get_output_element_type(0).get_type_name() in _SHAPE_TYPES:
                out[(op.get_friendly_name(), port)] = src
    return out


def to_full_size(quantized_crop: Path, full_export: Path, out: Path, name: str) -> Path:
    """`quantized_crop` (an IR or ONNX of the component at the crop size, quantized) at the size
    of `full_export` (the same component exported at full size, unquantized), saved as
    `out/<name>.xml`. Raises ValueError where the two graphs do not line up."""
    import numpy as np
    from openvino import opset13 as ops

    crop, full = read_model(quantized_crop), read_model(full_export)
    wanted = _integer_inputs(full)
    by_name = {op.get_friendly_name(): op for op in crop.get_ops()}
    for (op_name, port), const in _integer_inputs(crop).items():
        other = wanted.get((op_name, port))
        if other is None:  # an op the quantizer added (size-agnostic), or one the full export lacks
            continue
        a, b = const.get_data(), other.get_data()
        if a.shape == b.shape and np.array_equal(a, b):
            continue
        consumer = by_name[op_name]
        fresh = ops.constant(np.array(b, dtype=b.dtype))
        fresh.set_friendly_name(other.get_friendly_name())
        consumer.input(port).replace_source_output(fresh.output(0))
    inputs = {p.get_friendly_name(): p for p in full.get_parameters()}
    for param in crop.get_parameters():
        if param.get_friendly_name() not in inputs:
            raise ValueError(f"{name}: input {param.get_friendly_name()!r} is not an input of {full_export}")
        param.set_partial_shape(inputs[param.get_friendly_name()].get_partial_shape())
    try:
        # not `ov.Model.reshape`, which infers the old constants against the new shapes first
        crop.validate_nodes_and_infer_types()
    except RuntimeError as err:
        raise ValueError(f"{name}: the crop-calibrated model does not take the full size: {err}") from None
    got = [o.get_partial_shape() for o in crop.outputs]
    expected = [o.get_partial_shape() for o in full.outputs]
    if got != expected:
        raise ValueError(f"{name}: crop-calibrated outputs {got} at full size, the full export's are {expected}")
    return _save(crop, out, name)
