"""Calibration data and model sizes."""

import numpy as np
import onnx


def test_onnx_model_bytes_count_external_data(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from fewstep.onnx_io import model_bytes

    w = np.ones((128, 128), np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 128])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128])],
        [numpy_helper.from_array(w, "w")],
    )
    path = tmp_path / "m.onnx"
    onnx.save_model(helper.make_model(graph), str(path), save_as_external_data=True, location="m.data")
    assert model_bytes(path) == path.stat().st_size + (tmp_path / "m.data").stat().st_size
    assert (tmp_path / "m.data").stat().st_size >= w.nbytes


def test_calibration_prompts_are_disjoint_from_gate_prompts(tiny_student_dir):
    from fewstep.gates.check import gate_prompts
    from fewstep.quantize.calibration import calibration_prompts

    calib = set(calibration_prompts(tiny_student_dir, 64, 0))
    gates, _ = gate_prompts(tiny_student_dir, 64)
    assert calib and not calib & set(gates)
