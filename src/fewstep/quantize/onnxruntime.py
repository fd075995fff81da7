"""ONNX Runtime quantizers through `onnxruntime.quantization`: static QDQ and MatMulNBits."""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
from pathlib import Path

import numpy as np

from fewstep.quantize.config import Int8Config, WeightOnlyConfig
from fewstep.quantize.cpu import needs_reduce_range
from fewstep.quantize.registry import register_quantizer


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of feed dicts."""

    def __init__(self, items: list[dict[str, np.ndarray]]):
        self.items = iter(items)

    def get_next(self):
        return next(self.items, None)

    def rewind(self):  # pragma: no cover - not used by MinMax
        pass


@contextlib.contextmanager
def _in_temp_cwd():
    """quant_pre_process leaves temporary files in the working directory: keep them out of the user's."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(old)


def _calibrate(model: Path, op_types: list[str], items: list[dict], cache: Path, large: bool) -> None:
    """ONNX Runtime's MinMax calibration (quantize_static's defaults), run on its own and saved as
    a calibration cache that quantize_static then reads. Run inside quantize_static, the
    calibration session and the calibrator's copy of the model sit beside quantize_static's own
    copy: three times the weights, which for the 9 GB SD3.5-Medium transformer exceeds 24 GiB."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization.calibrate import MinMaxCalibrater, save_tensors_data

    with tempfile.TemporaryDirectory(prefix="fewstep.calibrate.", dir=model.parent) as tmp:
        calibrator = MinMaxCalibrater(
            str(model), op_types, str(Path(tmp) / "augmented.onnx"), use_external_data_format=large
        )
        calibrator.augment_graph()
        # saving the augmented model moved its weights to its data file, but the loaded model's
        # memory stays allocated until the message is dropped: keep a weightless copy instead
        weightless = onnx.ModelProto()
        weightless.CopyFrom(calibrator.model)
        calibrator.model = weightless
        gc.collect()
        # calibrator.create_inference_session's settings, plus: no pre-packed weight copies (the
        # session reads the weights memory-mapped from the data file) and no memory arena
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.enable_cpu_mem_arena = False
        options.add_session_config_entry("session.disable_prepacking", "1")
        calibrator.infer_session = ort.InferenceSession(
            calibrator.augmented_model_path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        calibrator.collect_data(_Reader(items))
        ranges = calibrator.compute_data()
        del calibrator
    save_tensors_data(ranges, cache)


def attention_matmuls(model: Path) -> list[str]:
    """Names of the MatMuls whose inputs are both computed (attention's QK^T and PV): no
    initializer, no Constant node on either side. Reads the graph only, not the weights."""
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    constant = {i.name for i in proto.graph.initializer}
    constant |= {o for n in proto.graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in proto.graph.node if n.op_type == "MatMul" and not any(i in constant for i in n.input[:2])]


@register_quantizer("onnxruntime", Int8Config)
def int8(model: Path, io, cfg: Int8Config, items: list[dict], out: Path) -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from fewstep.onnx_io import has_external_data

    out = Path(out)
    src = Path(model).resolve()  # before the working directory changes
    pre = (out / f"{io.name}.pre.onnx").resolve()
    dst = (out / f"{io.name}.int8.onnx").resolve()
    reduce_range = needs_reduce_range() if cfg.reduce_range is None else cfg.reduce_range
    large = has_external_data(src)  # over 2 GB: weights live beside the model, and must stay there
    with _in_temp_cwd():
        # symbolic shape inference fails on SD3 exports; ONNX shape inference is enough
        quant_pre_process(
            str(src),
            str(pre),
            skip_symbolic_shape=True,
            save_as_external_data=large,
            all_tensors_to_one_file=True,
            external_data_location=pre.name + ".data",
        )
        cache = Path("calibration.json").resolve()
        _calibrate(pre, list(cfg.op_types), items, cache, large)
        quantize_static(
            str(pre),
            str(dst),
            None,
            calibration_cache_path=str(cache),
            quant_format=QuantFormat.QDQ,
            per_channel=cfg.per_channel,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            # the linear/conv layers only: index arithmetic (T5's relative-position buckets) and
            # normalisations must stay float
            op_types_to_quantize=list(cfg.op_types),
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
            use_external_data_format=large,
            nodes_to_exclude=attention_matmuls(pre) if cfg.attention == "float" else None,
        )
    return dst


def gemm_to_matmul(model):
    """Rewrite Gemm (alpha = beta = 1, constant B) as MatMul + Add so MatMulNBits can take it
    (SD3's AdaLN and embedding linears export as Gemm, which MatMulNBits leaves alone)."""
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ok = node.op_type == "Gemm" and node.input[1] in inits and not attrs.get("transA", 0)
        ok = ok and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0
        if not ok:
            nodes.append(node)
            continue
        weight = inits[node.input[1]]
        if attrs.get("transB", 0):
            array = numpy_helper.to_array(weight).T.copy()
            weight.CopyFrom(numpy_helper.from_array(array, weight.name))
        mm_out = node.output[0] + "__mm" if len(node.input) > 2 else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], node.input[1]], [mm_out], name=node.name + "__mm"))
        if len(node.input) > 2:
            nodes.append(helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]], name=node.name + "__add"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def matmul_sensitivity(model, bits: int, group_size: int) -> dict[str, float]:
    """Per MatMul with constant weights: relative weight-quantisation error at `bits`, the
    proxy used to keep the most sensitive layers at higher precision (mixed schemes)."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    scores = {}
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        if w.ndim != 2:
            continue
        k = w.shape[0]
        g = k if group_size <= 0 or group_size > k else group_size
        pad = (-k) % g
        wp = np.pad(w, ((0, pad), (0, 0))).reshape(-1, g, w.shape[1])
        scale = np.abs(wp).max(1, keepdims=True) / (2 ** (bits - 1) - 1)
        q = np.round(wp / np.maximum(scale, 1e-12)) * scale
        err = np.linalg.norm((q - wp).reshape(-1, w.shape[1])[:k]) / max(np.linalg.norm(w), 1e-12)
        scores[node.name] = float(err) * np.sqrt(w.size)  # bigger layers weigh more
    return scores


@register_quantizer("onnxruntime", WeightOnlyConfig)
def weights(model: Path, io, cfg: WeightOnlyConfig, items: list[dict], out: Path) -> Path:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    from fewstep.onnx_io import save_onnx

    proto = gemm_to_matmul(onnx.load(str(model)))
    block = 128 if cfg.group_size <= 0 else max(16, cfg.group_size)
    keep: list[str] = []
    if cfg.bits == 4 and cfg.ratio < 1.0:
        scores = matmul_sensitivity(proto, 4, block)
        ranked = sorted(scores, key=scores.get, reverse=True)
        keep = ranked[: round(len(ranked) * (1.0 - cfg.ratio))]

    def nbits(proto, bits: int, **select):
        quant = MatMulNBitsQuantizer(
            proto,
            bits=bits,
            block_size=block,
            is_symmetric=cfg.symmetric,
            accuracy_level=cfg.accuracy_level or None,
            op_types_to_quantize=("MatMul",),
            **select,
        )
        quant.process()
        return quant.model.model

    proto = nbits(proto, cfg.bits, nodes_to_exclude=keep)
    if keep:  # the most sensitive layers at 8 bits
        proto = nbits(proto, 8, nodes_to_include=keep)
    dst = Path(out) / f"{io.name}.{cfg.scheme}.onnx"
    save_onnx(proto, dst)
    return dst
