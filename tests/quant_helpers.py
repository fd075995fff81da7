"""Helpers shared by the quantization tests: building a gated bundle, reading its ops and types."""

import json

import numpy as np
import onnx

from fewstep.compile.api import compile_bundle
from fewstep.compile.config import CompileConfig

LOOSE = {
    "num_prompts": 2,
    "tensor": {"cosine_min": 0.9, "rel_l2_max": 0.5, "max_abs_max": None},
    "image": {"psnr_min": 15, "ssim_min": 0.5},
    "distribution": {"enabled": False},
}


def build(tiny_student_dir, tmp_path, target, quantization, **extra):
    cfg = CompileConfig(target=target, quantization=quantization, gates=LOOSE, measure=False, **extra)
    path, report = compile_bundle(tiny_student_dir, cfg, tmp_path / f"{target}-{quantization['scheme']}")
    return path, report, json.loads((path / "manifest.json").read_text())


def transformer_cosines(report):
    return [r.value for r in report.results if r.gate.startswith("tensor/transformer") and r.gate.endswith("cosine")]


def onnx_ops(path):
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def two_matmul_onnx(w1: np.ndarray, w2: np.ndarray, rows: int, activation: tuple[str, str]):
    """x @ w1 -> activation (op type, domain) -> @ w2, as an opset-17 ONNX model."""
    from onnx import TensorProto, helper, numpy_helper

    op, domain = activation
    n = w1.shape[0]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node(op, ["h"], ["r"], domain=domain),
         helper.make_node("MatMul", ["r", "w2"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, n])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def ov_element_types(xml):
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    return {op.get_output_element_type(0).get_type_name() for op in model.get_ops() if op.get_type_name() == "Constant"}


def fake_quantize_inputs(xml) -> list[str]:
    """For each FakeQuantize, what it quantizes: 'weight' when its input is a constant (possibly
    behind a decompression Convert/Subtract/Multiply chain), else 'activation'."""
    import openvino as ov

    kinds = []
    for op in ov.Core().read_model(str(xml)).get_ops():
        if op.get_type_name() != "FakeQuantize":
            continue
        src = op.input_value(0).get_node()
        while src.get_type_name() in ("Convert", "Subtract", "Multiply") and all(
            src.input_value(i).get_node().get_type_name() in ("Constant", "Convert", "Subtract")
            for i in range(src.get_input_size())
        ):
            src = src.input_value(0).get_node()
        kinds.append("weight" if src.get_type_name() == "Constant" else "activation")
    return kinds
