import numpy as np
import pytest

ov = pytest.importorskip("openvino")
nncf = pytest.importorskip("nncf")

from fewstep.targets.openvino_cpu import INT8_WEIGHTS_DQ_GROUP, dynamic_quant_group  # noqa: E402


def _model(layers: int = 3):
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([4, 256], np.float32, name="x")
    h = x
    for _ in range(layers):
        h = ops.matmul(h, ops.constant((rng.standard_normal((256, 256)) * 0.05).astype(np.float32)), False, True)
    return ov.Model([h], [x])


def test_dynamic_quant_group_follows_the_weight_format():
    assert dynamic_quant_group(_model()) is None  # fp32 weights: nothing to set
    int8 = nncf.compress_weights(_model(), mode=nncf.CompressWeightsMode.INT8_SYM)
    assert dynamic_quant_group(int8) == INT8_WEIGHTS_DQ_GROUP
    int4 = nncf.compress_weights(
        _model(), mode=nncf.CompressWeightsMode.INT4_SYM, group_size=32, ratio=1.0, all_layers=True
    )
    assert dynamic_quant_group(int4) == 32


def test_built_ir_carries_the_group_and_compile_applies_it(tmp_path):
    from fewstep.targets.base import ComponentIO, TensorSpec
    from fewstep.targets.openvino_cpu import OpenVINOCPU

    src = tmp_path / "src.xml"
    ov.save_model(nncf.compress_weights(_model(), mode=nncf.CompressWeightsMode.INT8_SYM), str(src))
    io = ComponentIO("transformer", (TensorSpec("x", ("batch", 256)),), ("y",))
    target = OpenVINOCPU()
    files = target.build(src, io, "int8-weights", tmp_path)
    compiled = ov.Core().compile_model(str(tmp_path / files[0]), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert int(compiled.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE")) == INT8_WEIGHTS_DQ_GROUP
    x = np.random.default_rng(1).standard_normal((4, 256)).astype(np.float32)
    ref = ov.Core().compile_model(str(src), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = target.load(tmp_path, files, io).run({"x": x})
    want = ref.create_infer_request().infer({0: x})
    a, b = next(iter(got.values())).ravel(), np.asarray(next(iter(want.values()))).ravel()
    assert np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b) >= 0.999
